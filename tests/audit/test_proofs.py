"""Inclusion proofs (mlops/audit/proofs.py): round trip, tampering, bad inputs as one line with exit 2."""

from __future__ import annotations

import json

from mlops import audit
from tests.audit.support import cli, logged
from tests.support.cli import run as run_cli
from tests.support.repo import tree_snapshot


def test_prove_and_check_proof_round_trip_and_tampering(signed, capsys, tmp_path):
    repo = signed
    logged(repo, 7)
    rc, out, _ = cli(repo, "prove", "--seq", "3", "--format", "json", capsys=capsys)
    assert rc == 0
    doc = json.loads(out)
    assert doc["tree_size"] == 7 and len(doc["proof"]) == 3  # ceil(log2 7)
    path = tmp_path / "proof.json"
    path.write_text(out)
    rc, out, _ = cli(repo, "check-proof", str(path), capsys=capsys)
    assert rc == 0 and "proof ok: entry seq 3 is in the tree of size 7" in out and "signature: valid" in out
    for mutate, message in [
        (lambda d: d.update(entry=d["entry"].replace('"m3"', '"m4"')), "entry seq 3 is not included"),
        (lambda d: d.update(seq=4), "has seq 3 where seq 4 belongs"),
        (lambda d: d["proof"].pop(), "proof is shorter"),
        (lambda d: d["proof"].__setitem__(0, "f" * 64), "computed root does not match"),
        (
            lambda d: d["checkpoint"].update(root="0" * 64),
            "not size 7 root 0000000000000000…; the checkpoint was edited",
        ),
        (lambda d: d["checkpoint"].update(note=d["checkpoint"]["note"].replace("\n7\n", "\n8\n")), "its note is for"),
        (lambda d: d["checkpoint"].update(note=_flip_signature(d["checkpoint"]["note"])), "does not verify"),
        (lambda d: d.update(tree_size=8), "tree_size 8 is not the checkpoint's size 7"),
    ]:
        bad = json.loads(path.read_text())
        mutate(bad)
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        rc, _, err = cli(repo, "check-proof", str(tmp_path / "bad.json"), capsys=capsys)
        assert rc == 1 and message in err, (message, err)
    (tmp_path / "junk.json").write_text('{"format": "x"}')
    rc, _, err = cli(repo, "check-proof", str(tmp_path / "junk.json"), capsys=capsys)
    assert rc == 2 and "is not an mlops-audit-inclusion-proof/v1 document" in err
    rc, _, err = cli(repo, "prove", "--seq", "7", capsys=capsys)
    assert rc == 2 and "--seq: 7 is not covered by the latest checkpoint (size 7); use 0..6" in err


def _flip_signature(note: str) -> str:
    """The note with the last bytes of its (last) signature changed."""
    tail = note[-5:-1]
    return note[:-5] + ("AAA=" if tail != "AAA=" else "BBB=") + "\n"


def test_prove_on_an_empty_log_and_repair_without_a_flag_are_bad_usage(repo, capsys):
    before = tree_snapshot(repo)
    rc, _, err = cli(repo, "prove", "--seq", "0", capsys=capsys)
    assert rc == 2 and err == (
        "error: --seq: 0 is not covered: metadata/audit/checkpoints.jsonl holds no checkpoint yet; "
        "record an event first\n"
    )
    rc, _, err = cli(repo, "repair", capsys=capsys)
    assert rc == 2 and err == "error: mlops audit repair: no repair chosen; pass --truncate-torn-tail\n"
    assert tree_snapshot(repo) == before


def test_check_proof_of_a_directory_is_one_line_and_exit_2(repo, tmp_path):
    logged(repo, 2)
    folder = tmp_path / "proof.json"
    folder.mkdir()
    before = tree_snapshot(repo)
    r = run_cli(repo, "audit", "check-proof", str(folder))
    assert (r.code, r.out) == (2, "")
    assert r.err == f"error: {folder}: is a directory, not a proof file; name the file itself\n"
    assert tree_snapshot(repo) == before


def test_prove_to_an_existing_directory_is_one_line_and_exit_2_and_writes_nothing(repo):
    logged(repo, 2)
    folder = repo / "metadata" / "proofs"
    folder.mkdir()
    (folder / "kept.json").write_text("{}\n")
    before = tree_snapshot(repo)
    r = run_cli(repo, "audit", "prove", "--seq", "1", "-o", str(folder))
    assert (r.code, r.out) == (2, "")
    assert r.err == f"error: --output: {folder} is a directory; name the file to write the proof to\n"
    assert tree_snapshot(repo) == before and sorted(p.name for p in folder.iterdir()) == ["kept.json"]
    r = run_cli(repo, "audit", "prove", "--seq", "1", "-o", str(folder / "kept.json" / "proof.json"))
    assert r.code == 2 and r.err.count("\n") == 1 and "kept.json is a file, so" in r.err
    assert tree_snapshot(repo) == before


def test_every_inclusion_proof_of_a_log_verifies(repo):
    r = logged(repo, 11)
    for seq in range(11):
        res = audit.check_proof(audit.prove(r, seq))
        assert res["seq"] == seq and res["signature"] == "unsigned"


def test_a_genuine_proof_checks_after_keygen_re_signed_its_tree_head(repo, monkeypatch, capsys, tmp_path):
    logged(repo, 3)
    rc, key, _ = cli(repo, "keygen", capsys=capsys)  # a second, signed checkpoint of size 3
    monkeypatch.setenv(audit.SIGNING_KEY_ENV, key.strip())
    rc, out, _ = cli(repo, "prove", "--seq", "1", "--format", "json", capsys=capsys)
    assert rc == 0 and "\n\n\u2014 " in json.loads(out)["checkpoint"]["note"]
    path = tmp_path / "proof.json"
    path.write_text(out)
    rc, out, err = cli(repo, "check-proof", str(path), capsys=capsys)
    assert rc == 0 and "proof ok" in out and "matches checkpoint #3" in out, err
