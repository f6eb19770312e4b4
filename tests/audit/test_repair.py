"""Crashes and `mlops audit repair --truncate-torn-tail` (mlops/audit/repair.py)."""

from __future__ import annotations

import re

import pytest

from mlops import audit
from mlops.errors import CheckFailed
from tests.audit.support import CKPTS, SEG0, cli, logged
from tests.support.repo import tree_snapshot


def test_torn_tail_is_named_and_repaired(repo, capsys):
    r = logged(repo, 3)
    good = (repo / SEG0).read_bytes()
    (repo / SEG0).write_bytes(good + b'{"actor":"ro')
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1
    assert f"{SEG0} line 4: the final entry (seq 3) is incomplete (12 bytes without a newline" in err
    assert "run `mlops audit repair --truncate-torn-tail` to remove only that incomplete line" in err
    with pytest.raises(
        CheckFailed, match=r"line 4: the final entry is incomplete .*mlops audit repair --truncate-torn-tail"
    ):
        audit.record(r, "promotion", {})
    rc, out, _ = cli(repo, "repair", "--truncate-torn-tail", capsys=capsys)
    assert rc == 0 and f"{SEG0}: removed an incomplete final line of 12 bytes" in out
    assert (repo / SEG0).read_bytes() == good
    assert cli(repo, "verify", capsys=capsys)[0] == 0
    rc, out, _ = cli(repo, "repair", "--truncate-torn-tail", capsys=capsys)
    assert "nothing to repair" in out


def test_repair_refuses_to_cut_a_checkpointed_entry_whose_newline_was_removed(repo, capsys):
    logged(repo, 3)
    (repo / SEG0).write_bytes((repo / SEG0).read_bytes()[:-1])  # not a crash: the entry is covered by checkpoint #2
    before = tree_snapshot(repo)
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and "(checkpoint #2): covers 3 entries but the log holds only 2" in err
    assert "repair" not in err  # the torn-tail advice is only for an append that was interrupted
    rc, out, err = cli(repo, "repair", "--truncate-torn-tail", capsys=capsys)
    assert rc == 1 and out == ""
    assert err == (
        f"error: {SEG0} line 3: entry seq 2 has no newline but checkpoint #2 covers it (size 3), so it was committed "
        "and then cut, not torn by a crash; nothing removed; "
        "restore the file from git (`git checkout -- metadata/audit`)\n"
    )
    assert tree_snapshot(repo) == before


def test_torn_checkpoint_is_named_and_repaired(repo, capsys):
    logged(repo, 2)
    with open(repo / CKPTS, "ab") as fh:
        fh.write(b'{"prev_root":"ab')
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and f"{CKPTS} line 3: the final checkpoint is incomplete (16 bytes" in err
    assert cli(repo, "repair", "--truncate-torn-tail", capsys=capsys)[0] == 0
    assert cli(repo, "verify", capsys=capsys)[0] == 0


def test_a_crash_at_every_byte_of_an_append_leaves_a_verifiable_or_repairable_log(repo, monkeypatch):
    """Emulate a kill after each possible number of bytes of one record() reached the disk."""
    monkeypatch.setenv("GITHUB_SHA", "c" * 40)
    r = logged(repo, 3)
    seg, ck = repo / SEG0, repo / CKPTS
    seg0, ck0 = seg.read_bytes(), ck.read_bytes()
    audit.record(r, "promotion", {"x": "y" * 40})
    seg1, ck1 = seg.read_bytes(), ck.read_bytes()
    states = [(seg1[:n], ck0) for n in range(len(seg0), len(seg1) + 1)]
    states += [(seg1, ck1[:n]) for n in range(len(ck0) + 1, len(ck1) + 1)]
    for i, (seg_bytes, ck_bytes) in enumerate(states):
        seg.write_bytes(seg_bytes)
        ck.write_bytes(ck_bytes)
        try:
            audit.verify(r)
        except CheckFailed as exc:
            assert re.search(
                r"the final (entry|checkpoint) .*is incomplete.*`mlops audit repair --truncate-torn-tail`", str(exc)
            )
            audit.repair_torn_tail(r)
        res = audit.verify(r)
        stored = audit.read_dir(r.audit_dir).lines
        assert stored[:3] == seg0.split(b"\n")[:3]  # committed entries survive every crash point
        assert res.entries == (4 if seg_bytes == seg1 else 3)
        if i % 25 == 0:  # and the log stays appendable
            audit.record(r, "rollback", {})
            assert audit.verify(r).entries == res.entries + 1
