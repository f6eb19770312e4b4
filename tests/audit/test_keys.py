"""`mlops audit keygen` (mlops/audit/keys.py): signs the current head, refuses to replace a key."""

from __future__ import annotations

import json

from mlops import audit, jsonio
from mlops.repo import Repo
from tests.audit.support import CKPTS, cli, lines, logged, write_lines


def test_keygen_on_an_existing_log_signs_its_head_and_stripped_signatures_fail(repo, monkeypatch, capsys):
    logged(repo, 3)
    rc, out, _ = cli(repo, "keygen", capsys=capsys)
    assert rc == 0
    rc, verified, _ = cli(repo, "verify", capsys=capsys)
    assert rc == 0 and "3 entries in 1 segments, 4 checkpoints (1 signed)" in verified
    monkeypatch.setenv(audit.SIGNING_KEY_ENV, out.strip())
    audit.record(Repo.at(repo), "promotion", {})
    stripped = []
    for line in lines(repo, CKPTS):
        ck = json.loads(line)
        ck["note"] = ck["note"].split("\n\n")[0].rstrip("\n") + "\n"  # the body without the signature lines
        stripped.append(jsonio.canonical(ck))
    write_lines(repo, stripped, CKPTS)
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and "line 5 (checkpoint #4): the latest checkpoint is not signed but checkpoint-key.pub" in err


def test_keygen_prints_a_signed_note_signer_key_and_commits_its_vkey(repo, capsys):
    from mlops.audit import note as notes

    rc, out, _ = cli(repo, "keygen", capsys=capsys)
    signer = notes.parse_skey(out.strip())
    vkey = (repo / "metadata/audit/checkpoint.vkey").read_text()
    assert rc == 0 and out.startswith("PRIVATE+KEY+localhost/repo/audit+") and vkey == signer.verifier.vkey() + "\n"
    assert notes.parse_vkey(vkey).name == "localhost/repo/audit" and signer.alg == notes.ALG_ED25519
    rc, out, err = cli(repo, "keygen", "--witness", "witness.example/w1", capsys=capsys)
    witness = notes.parse_skey(out.strip())
    assert rc == 0 and witness.alg == notes.ALG_COSIGNATURE and witness.verifier.vkey() in err


def test_keygen_refuses_to_replace_a_key(signed, capsys):
    rc, _, err = cli(signed, "keygen", capsys=capsys)
    assert rc == 2 and "checkpoint.vkey: already exists; pass --force" in err
