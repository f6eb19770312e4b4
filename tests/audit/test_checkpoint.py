"""Checkpoint signatures (mlops/audit/checkpoint.py): forgeries, downgrades, a committed key needs the secret."""

from __future__ import annotations

import json
import re

import pytest

from mlops import audit, jsonio
from mlops.audit import note as notes
from mlops.errors import BadInput
from mlops.merkle import MerkleTree
from mlops.repo import Repo
from tests.audit.support import CKPTS, cli, git, lines, logged, write_lines
from tests.support.repo import make_repo, tree_snapshot


def test_signed_checkpoints_verify_and_forgeries_do_not(signed, monkeypatch, capsys):
    repo = signed
    logged(repo, 3)
    rc, out, _ = cli(repo, "verify", capsys=capsys)
    assert rc == 0 and "3 checkpoints (3 signed)" in out
    # A forger who rewrites an entry and recomputes the checkpoints, signing with another key, is caught.
    other, _ = audit.keygen(Repo.at(make_repo(repo.parent / "other")))
    items = lines(repo)
    items[1] = items[1].replace(b'"m1"', b'"mX"')
    tree = MerkleTree()
    tree.extend(items)
    cks, prev = [], (0, tree.root(0).hex())
    for size in (1, 2, 3):
        ck = {"prev_root": prev[1], "prev_size": prev[0], "root": tree.root(size).hex(), "size": size}
        ck = audit.sign_checkpoint({**ck, "time": "2026-11-22T06:00:00Z"}, audit.load_private_key(other))
        cks.append(jsonio.canonical(ck))
        prev = (size, ck["root"])
    write_lines(repo, items)
    write_lines(repo, cks, CKPTS)
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and "(checkpoint #0): is signed by key" in err and "not by the committed checkpoint-key.pub" in err


def test_unsigned_checkpoint_after_a_signed_one_and_bad_signature_fail(signed, monkeypatch, capsys):
    repo = signed
    logged(repo, 2)
    cks = lines(repo, CKPTS)
    unsigned = json.loads(cks[1])
    unsigned["note"] = unsigned["note"].split("\n\n")[0] + "\n"  # the checkpoint body without its signature
    write_lines(repo, [cks[0], jsonio.canonical(unsigned)], CKPTS)
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and "(checkpoint #1): is not signed; a signed checkpoint precedes it" in err
    bad = json.loads(cks[1])
    sig = bad["note"].rstrip("\n").rsplit(" ", 1)[1]
    bad["note"] = bad["note"].replace(sig, sig[:-4] + ("AAA=" if not sig.endswith("AAA=") else "BBB="))
    write_lines(repo, [cks[0], jsonio.canonical(bad)], CKPTS)
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and "(checkpoint #1): its note: the signature of " in err and "does not verify" in err


def test_committed_key_requires_a_signing_key(signed, monkeypatch):
    repo = signed
    monkeypatch.delenv(audit.SIGNING_KEY_ENV)
    before = tree_snapshot(repo)
    with pytest.raises(BadInput, match=r"MLOPS_AUDIT_SIGNING_KEY: is not set, but checkpoint-key.pub is committed"):
        audit.record(Repo.at(repo), "promotion", {})
    monkeypatch.setenv(audit.SIGNING_KEY_ENV, "not-a-key")
    with pytest.raises(BadInput, match=r"MLOPS_AUDIT_SIGNING_KEY: is not an ed25519 private key"):
        audit.record(Repo.at(repo), "promotion", {})
    other, _ = audit.keygen(Repo.at(make_repo(repo.parent / "other")))
    monkeypatch.setenv(audit.SIGNING_KEY_ENV, other)  # another log's key: named after that log
    with pytest.raises(BadInput, match=r"is named 'localhost/other/audit', not the log's origin"):
        audit.record(Repo.at(repo), "promotion", {})
    origin = (repo / "metadata/audit/checkpoint.vkey").read_text().split("+")[0]
    monkeypatch.setenv(audit.SIGNING_KEY_ENV, notes.generate(origin).skey())  # right name, wrong key
    with pytest.raises(BadInput, match=r"does not match the committed checkpoint.vkey"):
        audit.record(Repo.at(repo), "promotion", {})
    monkeypatch.setenv(audit.SIGNING_KEY_ENV, notes.generate(origin, notes.ALG_COSIGNATURE).skey())
    with pytest.raises(BadInput, match=r"is a witness key \(type 0x04\), not the log's key"):
        audit.record(Repo.at(repo), "promotion", {})
    assert tree_snapshot(repo) == before


def test_removing_the_public_key_does_not_turn_signing_off(tmp_path, monkeypatch, capsys):
    root = make_repo(tmp_path / "g", git=True)
    r = logged(root, 3)
    rc, key, _ = cli(root, "keygen", capsys=capsys)
    assert rc == 0
    git(root, "add", "metadata")
    git(root, "commit", "-qm", "log and key")
    (root / "metadata/audit/checkpoint-key.pub").unlink()  # then append unsigned, as an attacker without the key
    (root / "metadata/audit/checkpoint.vkey").unlink()
    monkeypatch.delenv(audit.SIGNING_KEY_ENV, raising=False)
    audit.record(r, "promotion", {"model_version": "evil"})
    rc, _, err = cli(root, "verify", capsys=capsys)
    assert rc == 1 and "is not signed but a signed checkpoint precedes it (a signing downgrade" in err
    rc, _, err = cli(root, "verify", "--against", "HEAD", capsys=capsys)
    assert rc == 1 and "signing downgrade" in err
    # the key file alone removed (no new entry) still breaks the append-only check against the commit
    git(root, "checkout", "--", "metadata")
    (root / "metadata/audit/checkpoint-key.pub").unlink()
    rc, _, err = cli(root, "verify", "--against", "HEAD", capsys=capsys)
    assert rc == 1 and "checkpoint-key.pub is missing committed at HEAD" in err
    git(root, "checkout", "--", "metadata")
    (root / "metadata/audit/checkpoint.vkey").unlink()
    rc, _, err = cli(root, "verify", "--against", "HEAD", capsys=capsys)
    assert rc == 1 and "checkpoint.vkey is missing committed at HEAD" in err


def _mutate_note(note: str, what: str) -> str:
    body, sigs = note.split("\n\n")
    origin, size, root = body.split("\n")
    name, sig = sigs.rstrip("\n").split(" ")[1:]
    stranger = notes.generate(origin)
    if what == "origin":
        return note.replace(origin + "\n", origin + "x\n", 1)
    if what == "key name":
        return note.replace(f"— {name} ", "— example.com/other ", 1)
    if what == "signature byte":
        raw = bytearray(notes.b64decode(sig))
        raw[10] ^= 1
        return note.replace(sig, notes.b64(bytes(raw)))
    if what == "unknown key":  # the log's signature replaced by another key's (same name)
        return body + "\n\n" + notes.sign_note(body + "\n", stranger).line()
    if what == "extra unknown line":  # added beside the log's: ignored
        return note + notes.sign_note(body + "\n", stranger).line()
    raise AssertionError(what)


@pytest.mark.parametrize(
    ("what", "message"),
    [
        (
            "origin",
            r"its note has origin 'localhost/repo/auditx', but the log's notes so far have 'localhost/repo/audit'",
        ),
        ("key name", r"no signature by a trusted key verifies \(signed by: example.com/other\+"),
        ("signature byte", r"its note: the signature of localhost/repo/audit\+[0-9a-f]{8} does not verify"),
        ("unknown key", r"no signature by a trusted key verifies"),
        ("extra unknown line", None),
    ],
)
def test_every_mutation_of_a_committed_note_fails_verify_and_unknown_lines_are_ignored(signed, capsys, what, message):
    logged(signed, 2)
    cks = lines(signed, CKPTS)
    ck = json.loads(cks[-1])
    ck["note"] = _mutate_note(ck["note"], what)
    write_lines(signed, cks[:-1] + [jsonio.canonical(ck)], CKPTS)
    rc, out, err = cli(signed, "verify", capsys=capsys)
    if message is None:
        assert rc == 0 and "2 checkpoints (2 signed)" in out
    else:
        assert rc == 1 and "(checkpoint #1)" in err and re.search(message, err), err
