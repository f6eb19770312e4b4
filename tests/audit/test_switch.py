"""A log written before the C2SP checkpoints (tests/audit/data/legacy-log, written by the old code) verifies
after the change, across the one recorded checkpoint_format event; downgrades and a missing switch event fail;
`git revert` of a state commit still fails `verify --against`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlops import audit, jsonio
from mlops.audit import append
from mlops.repo import Repo
from tests.audit import spec_verifier as spec
from tests.audit.support import CKPTS, SEG0, cli, git, lines, write_lines
from tests.support.repo import make_repo

LEGACY = Path(__file__).parent / "data" / "legacy-log"


@pytest.fixture
def legacy(tmp_path, monkeypatch):
    """A git repository holding the legacy log, committed, with its (old-format) signing key set."""
    root = make_repo(tmp_path / "legacy", git=True)
    audit_dir = root / "metadata/audit"
    audit_dir.mkdir(parents=True, exist_ok=True)
    for name in ("checkpoint-key.pub", "checkpoints.jsonl", "entries-000000000000.jsonl"):
        shutil.copy(LEGACY / name, audit_dir / name)
    git(root, "add", "metadata")
    git(root, "commit", "-qm", "legacy log")
    monkeypatch.setenv(audit.SIGNING_KEY_ENV, (LEGACY / "signing-key.txt").read_text().strip())
    return root


def test_the_legacy_log_verifies_and_switches_with_one_recorded_event(legacy, capsys, tmp_path):
    rc, out, _ = cli(legacy, "verify", capsys=capsys)
    assert rc == 0 and "7 entries in 1 segments, 7 checkpoints (3 signed), root 3bb8a8b4" in out
    rc, legacy_proof, _ = cli(legacy, "prove", "--seq", "5", "--format", "json", capsys=capsys)  # the old format
    assert rc == 0
    audit.record(Repo.at(legacy), "promotion", {"after": "the switch"})
    rc, out, _ = cli(legacy, "verify", "--against", "HEAD", capsys=capsys)
    assert rc == 0 and "9 entries in 1 segments, 8 checkpoints (4 signed)" in out and "append-only since HEAD" in out
    switch = json.loads(lines(legacy)[8])
    assert switch["type"] == "checkpoint_format" and switch["payload"] == {
        "checkpoint_format": "c2sp.org/tlog-checkpoint",
        "origin": "localhost/legacy/audit",
        "previous_format": "mlops-audit-checkpoint/v1",
        "previous_root": "3bb8a8b4d2f476b57e2bbf117b41d10e4f4107259a348f5472c1ff3c8496aaa6",
        "previous_size": 7,
    }
    assert lines(legacy, CKPTS)[:7] == lines(Path(LEGACY), "checkpoints.jsonl")  # the old chain is kept as is
    # The same (legacy) key now signs notes; its vkey is committed beside the PEM, and outside tools verify it.
    vkey = (legacy / "metadata/audit/checkpoint.vkey").read_text()
    newest = json.loads(lines(legacy, CKPTS)[-1])
    assert spec.parse_checkpoint(spec.verify_note(newest["note"].encode(), [vkey])[0])[1] == 9
    # The proof written before the switch still checks, in its old format, against the committed log.
    (tmp_path / "old.json").write_text(legacy_proof)
    rc, out, _ = cli(legacy, "check-proof", str(tmp_path / "old.json"), capsys=capsys)
    assert rc == 0 and "proof ok: entry seq 5 is in the tree of size 7" in out and "signature: valid" in out
    rc, bundle, _ = cli(legacy, "prove", "--seq", "5", capsys=capsys)  # and a tlog-proof of the same entry
    assert rc == 0 and spec.verify_tlog_proof(bundle.encode(), vkey)[:2] == ("localhost/legacy/audit", 5)


def test_a_note_without_the_switch_event_or_a_legacy_line_after_notes_fails(legacy, capsys, monkeypatch):
    monkeypatch.setattr(append, "switch_event", lambda prev, origin: ("deployment_change", {"origin": origin}))
    audit.record(Repo.at(legacy), "promotion", {})
    rc, _, err = cli(legacy, "verify", capsys=capsys)
    assert rc == 1 and "line 8 (checkpoint #7): is the first C2SP note after legacy checkpoints, but entries" in err
    assert "hold no checkpoint_format event recording the switch" in err
    git(legacy, "checkout", "--", "metadata")
    monkeypatch.undo()
    monkeypatch.setenv(audit.SIGNING_KEY_ENV, (LEGACY / "signing-key.txt").read_text().strip())
    audit.record(Repo.at(legacy), "promotion", {})
    # Downgrade: a legacy line (validly signed with the legacy method) after the notes.
    cks = lines(legacy, CKPTS)
    last = json.loads(cks[-1])
    downgraded = {k: v for k, v in last.items() if k != "note"}
    signed = audit.sign_checkpoint(downgraded, audit.load_private_key((LEGACY / "signing-key.txt").read_text()))
    write_lines(
        legacy, cks + [jsonio.canonical({**signed, "prev_size": last["size"], "prev_root": last["root"]})], CKPTS
    )
    rc, _, err = cli(legacy, "verify", capsys=capsys)
    assert rc == 1 and "(checkpoint #8): is a legacy JSON checkpoint after C2SP note checkpoints" in err


def test_git_revert_of_a_state_commit_still_fails_verify_against(legacy, capsys):
    audit.record(Repo.at(legacy), "deployment_change", {"note": "a state change"})
    git(legacy, "add", "metadata")
    git(legacy, "commit", "-qm", "state: deploy")
    git(legacy, "revert", "--no-edit", "HEAD")
    rc, out, _ = cli(legacy, "verify", capsys=capsys)
    assert rc == 0  # the reverted log is the legacy one: valid on its own
    rc, _, err = cli(legacy, "verify", "--against", "HEAD~1", capsys=capsys)
    assert rc == 1 and "the log at HEAD~1 holds 9 entries but the work tree only 7" in err
    assert "entries seq 7..8 were removed" in err
    assert len(lines(legacy)) == 7 and (legacy / SEG0).exists()
