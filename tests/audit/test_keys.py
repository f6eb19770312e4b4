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
        ck.pop("signature", None)
        ck.pop("key_id", None)
        stripped.append(jsonio.canonical(ck))
    write_lines(repo, stripped, CKPTS)
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and "line 5 (checkpoint #4): the latest checkpoint is not signed but checkpoint-key.pub" in err


def test_keygen_refuses_to_replace_a_key(signed, capsys):
    rc, _, err = cli(signed, "keygen", capsys=capsys)
    assert rc == 2 and "checkpoint-key.pub: already exists; pass --force" in err
