"""The writer (mlops/audit/append.py): segments, batches, the peaks cache, kill -9, two writers at once."""

from __future__ import annotations

import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from mlops import audit, jsonio
from mlops.audit import append as audit_append
from mlops.errors import CheckFailed
from mlops.repo import Repo
from tests.audit.support import SEG0, cli, lines, logged
from tests.support.repo import ROOT, make_repo


def test_segments_roll_at_the_size_bound_and_verify(repo, monkeypatch, capsys):
    monkeypatch.setattr(audit_append, "SEGMENT_BYTES", 600)  # the writer reads its own module's setting
    r = logged(repo, 12)
    with audit.writer(r) as w:
        w.append_batch([("monitoring_run", {"n": i}) for i in range(30)])
    segs = sorted(p.name for p in r.audit_dir.glob("entries-*.jsonl"))
    assert len(segs) > 4
    assert all((r.audit_dir / s).stat().st_size <= 600 for s in segs)
    rc, out, _ = cli(repo, "verify", capsys=capsys)
    assert rc == 0 and f"audit log ok: 42 entries in {len(segs)} segments, 13 checkpoints" in out
    # A whole segment removed is named.
    (r.audit_dir / segs[2]).unlink()
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and re.search(rf"{segs[3]}: segment starts at seq \d+ but the segments before it hold", err)


def test_bulk_and_single_appends_build_the_same_log(tmp_path):
    a, b = Repo.at(make_repo(tmp_path / "a")), Repo.at(make_repo(tmp_path / "b"))
    os.environ["MLOPS_NOW"] = "2026-11-22T06:00:00Z"
    try:
        for i in range(9):
            audit.record(a, "monitoring_run", {"i": i}, actor="x")
        with audit.writer(b, actor="x") as w:
            w.append_batch([("monitoring_run", {"i": i}) for i in range(9)])
    finally:
        del os.environ["MLOPS_NOW"]
    assert (a.audit_dir / "entries-000000000000.jsonl").read_bytes() == (
        b.audit_dir / "entries-000000000000.jsonl"
    ).read_bytes()
    assert audit.verify(a).root == audit.verify(b).root
    for line in lines(b.root, SEG0):
        assert line == jsonio.canonical(json.loads(line))


def test_entry_without_checkpoint_verifies_and_is_checkpointed_next(repo, capsys):
    r = logged(repo, 2)
    with audit.writer(r) as w:
        w.append_lines(w.encode([("alert_opened", {"x": 1})]))  # then "crash" before the checkpoint
    rc, out, err = cli(repo, "verify", capsys=capsys)
    assert rc == 0 and "1 entries after the latest checkpoint" in err
    audit.record(r, "alert_closed", {})
    res = audit.verify(r)
    assert (res.entries, res.checkpoints, res.unchecked_tail) == (4, 3, 0)


def test_stale_state_cache_is_not_trusted(repo):
    r = logged(repo, 3)
    cache = r.audit_dir / audit.STATE_CACHE
    cache.write_text(json.dumps({"size": 3, "peaks": ["00" * 32, "11" * 32]}))
    audit.record(r, "promotion", {})
    cache.write_text("garbage")
    audit.record(r, "promotion", {})
    assert audit.verify(r).entries == 5


def _child_appends(root: str, ack_fd: int, seed: int) -> None:
    try:
        rng = random.Random(seed)
        audit_append.SEGMENT_BYTES = 50_000  # roll segments often so kills land mid-roll too
        os.environ["GITHUB_SHA"] = "c" * 40  # as in Actions: no git subprocess, so kills land in the writes
        repo = Repo.at(root)
        i = 0
        while True:
            pad = "x" * rng.choice([0, 40, 300, 8_000])
            entry = audit.record(repo, "monitoring_run", {"k": f"{seed}-{i}", "pad": pad})
            os.write(ack_fd, f"{entry['seq']} {seed}-{i}\n".encode())
            i += 1
    finally:
        os._exit(0)


def test_kill_9_at_random_points_never_loses_a_committed_entry(repo):
    """Fork a writer, SIGKILL it at a random instant, verify (repairing only a torn tail), 120 times."""
    import filelock  # noqa: F401 - imported before forking so the child starts appending at once

    rng = random.Random(1234)
    acked: dict[int, str] = {}
    torn_seen = 0
    for round_no in range(120):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            os.close(read_fd)
            _child_appends(str(repo), write_fd, round_no)
        os.close(write_fd)
        # Wait for 0-3 acknowledged appends (so a loaded machine still kills mid-stream), then a random instant.
        buf, target, deadline = b"", rng.randrange(4), time.monotonic() + 60
        while buf.count(b"\n") < target and time.monotonic() < deadline:
            if select.select([read_fd], [], [], 1.0)[0]:
                chunk = os.read(read_fd, 65536)
                if not chunk:
                    break
                buf += chunk
        time.sleep(rng.uniform(0.0, 0.006))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        with os.fdopen(read_fd, "rb") as fh:
            buf += fh.read()
        for line in buf.decode().splitlines():
            seq, key = line.split()
            acked[int(seq)] = key
        try:
            audit.verify(Repo.at(repo))
        except CheckFailed as exc:
            # The only acceptable failure: an incomplete final line, named with the repair command.
            assert re.search(
                r"the final (entry|checkpoint) .*is incomplete.*mlops audit repair --truncate-torn-tail", str(exc)
            )
            torn_seen += 1
            audit.repair_torn_tail(Repo.at(repo))
        res = audit.verify(Repo.at(repo))
        stored = [json.loads(x) for x in audit.read_dir(repo / "metadata/audit").lines]
        assert res.entries == len(stored)
        for seq, key in acked.items():
            assert stored[seq]["payload"]["k"] == key, f"committed entry {seq} lost in round {round_no}"
    assert len(acked) >= 120  # enough appends really happened for the kills to land mid-append
    print(f"{len(acked)} acknowledged entries, {torn_seen} torn tails repaired")


def test_two_processes_appending_at_once_do_not_corrupt_the_log(repo, tmp_path):
    go = tmp_path / "go"
    code = (
        "import os, sys, time; from mlops import audit; from mlops.repo import Repo\n"
        "r = Repo.at(sys.argv[1]); open(sys.argv[3] + sys.argv[2], 'w').close()\n"
        "while not os.path.exists(sys.argv[3]): time.sleep(0.001)\n"  # both start appending together
        "for i in range(60): audit.record(r, 'monitoring_run', {'w': sys.argv[2], 'i': i})\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GITHUB_SHA": "d" * 40}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(repo), w, str(go)], env=env) for w in ("a", "b")]
    deadline = time.monotonic() + 60
    while not all(Path(f"{go}{w}").exists() for w in "ab") and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    res = audit.verify(Repo.at(repo))
    assert (res.entries, res.checkpoints, res.unchecked_tail) == (120, 120, 0)
    stored = [json.loads(x) for x in audit.read_dir(repo / "metadata/audit").lines]
    assert [e["seq"] for e in stored] == list(range(120))
    for w in ("a", "b"):
        assert [e["payload"]["i"] for e in stored if e["payload"]["w"] == w] == list(range(60))
    # The appends really interleaved (lock handover is not fair, so typically a handful of turns, not 120).
    owners = [e["payload"]["w"] for e in stored]
    assert sum(a != b for a, b in zip(owners, owners[1:], strict=False)) >= 2
