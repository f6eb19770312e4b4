"""The prediction log: validated appends, JSONL and Parquet, local globs and pyarrow URIs, the window."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from mlops import jsonio, predlog
from mlops.errors import BadInput
from mlops.repo import Repo
from tests.support.repo import make_repo


def record(i: int, time: str, role: str = "production") -> dict:
    return {"request_id": f"r{i}", "time": time, "model_version": "v1", "role": role,
            "features": {"x": float(i), "plan": "basic"}, "score": 0.25, "prediction": 0}  # fmt: skip


@pytest.fixture
def repo(tmp_path):
    return Repo.at(make_repo(tmp_path / "repo"))


def test_append_validates_every_record_before_writing_anything(repo):
    good, bad = record(1, "2026-11-22T10:00:00Z"), {**record(2, "2026-11-22T10:00:00Z"), "score": 1.5}
    with pytest.raises(BadInput, match=r"predictions record 1: 'score' is not a probability in \[0, 1\]"):
        predlog.append_predictions(repo, [good, bad])
    assert not repo.production_logs.exists() or not any(repo.production_logs.iterdir())
    written = predlog.append_predictions(repo, [good, record(3, "2026-11-23T01:00:00Z")])
    assert [p.name for p in written] == ["predictions-20261122.jsonl", "predictions-20261123.jsonl"]


def test_window_is_half_open_and_a_line_in_progress_is_ignored(repo):
    predlog.append_predictions(repo, [record(i, f"2026-11-22T{h:02d}:00:00Z") for i, h in enumerate((5, 6, 11, 12))])
    path = repo.production_logs / "predictions-20261122.jsonl"
    with open(path, "a") as fh:
        fh.write('{"request_id": "half", "ti')  # a write still in progress
    since, until = (jsonio.parse_utc(t) for t in ("2026-11-22T06:00:00Z", "2026-11-22T12:00:00Z"))
    got = predlog.read(repo, "datasets/production/predictions-*", "predictions", since, until)
    assert [r["request_id"] for r in got.records] == ["r1", "r2"] and got.outside_window == 2
    assert got.skipped == []


def test_parquet_and_a_pyarrow_uri_are_read_like_jsonl(repo, tmp_path):
    elsewhere = tmp_path / "bucket" / "logs"
    records = [record(i, "2026-11-22T10:00:00Z", role="canary") for i in range(3)]
    predlog.write_parquet(elsewhere / "predictions-20261122.parquet", records)
    (elsewhere / "predictions-20261122.jsonl").write_text(json.dumps(record(9, "2026-11-22T10:30:00Z")) + "\n")
    got = predlog.read(repo, f"file://{elsewhere.as_posix()}/predictions-*", "predictions")
    assert sorted(r["request_id"] for r in got.records) == ["r0", "r1", "r2", "r9"]
    assert all(f.startswith("file://") for f in got.files)
    parquet_rec = next(r for r in got.records if r["request_id"] == "r1")
    assert parquet_rec["features"] == {"x": 1.0, "plan": "basic"} and parquet_rec["role"] == "canary"
    frame = predlog.frame(got.records, ["x", "plan"], "log", numeric=["x"])
    assert frame["x"].dtype == float and list(frame.columns[-2:]) == ["x", "plan"]


def test_an_unreadable_log_file_is_bad_input_naming_it(repo, monkeypatch):
    predlog.append_predictions(repo, [record(1, "2026-11-22T10:00:00Z")])

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(predlog.Path, "read_bytes", denied)
    with pytest.raises(BadInput) as info:
        predlog.read(repo, "datasets/production/predictions-*", "predictions", None, dt.datetime.now(dt.UTC))
    assert str(info.value) == (
        "datasets/production/predictions-20261122.jsonl: cannot be read (permission denied); "
        "fix the log file's permissions"
    )


# ---------------------------------------------------------------------------- torn tails (a writer killed mid-append)


def test_an_append_moves_a_torn_last_line_to_the_sidecar_and_the_log_stays_whole_lines(repo):
    day = "2026-11-22T10:00:00Z"
    predlog.append_predictions(repo, [record(1, day), record(2, day)])
    path = repo.production_logs / "predictions-20261122.jsonl"
    whole = path.read_bytes()
    half = jsonio.dumps_line(record(3, day))[:40]
    with open(path, "a") as fh:
        fh.write(half)  # what a writer killed mid-append leaves
    predlog.append_predictions(repo, [record(4, day)])
    # The whole lines keep their bytes; the fragment is gone from the log, the new record follows.
    assert path.read_bytes() == whole + (jsonio.dumps_line(record(4, day)) + "\n").encode()
    got = predlog.read(repo, "datasets/production/predictions-*", "predictions", on_malformed="refuse")
    assert [r["request_id"] for r in got.records] == ["r1", "r2", "r4"] and got.skipped == []
    assert got.files == [str(path)]  # the sidecar matches the glob but is not read
    (note,) = [json.loads(line) for line in path.with_name(path.name + ".torn").read_text().splitlines()]
    assert note["fragment"] == half and note["offset"] == len(whole) and note["log"] == path.name
    jsonio.parse_utc(note["found"])


def test_a_log_that_is_only_a_fragment_and_a_fragment_cut_inside_a_character_are_kept_exactly(repo):
    path = repo.production_logs / "feedback-20261122.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"label": "caf\xc3')  # no newline at all, cut inside a UTF-8 character
    predlog.append_feedback(repo, [{"request_id": "r1", "label": 1, "time": "2026-11-22T10:00:00Z"}])
    assert path.read_bytes() == b'{"label": 1, "request_id": "r1", "time": "2026-11-22T10:00:00Z"}\n'
    (note,) = [json.loads(line) for line in path.with_name(path.name + ".torn").read_text().splitlines()]
    assert bytes.fromhex(note["fragment_hex"]) == b'{"label": "caf\xc3' and note["offset"] == 0


def test_whole_lines_are_never_touched_and_nothing_is_written_to_a_sidecar(repo):
    day = "2026-11-22T10:00:00Z"
    for i in range(3):
        predlog.append_predictions(repo, [record(i, day)])
    path = repo.production_logs / "predictions-20261122.jsonl"
    assert path.read_text() == "".join(jsonio.dumps_line(record(i, day)) + "\n" for i in range(3))
    assert not path.with_name(path.name + ".torn").exists()


# A writer that appends batches through the real function and prints each request id once the append returned
# (acknowledged). With a cut fraction it kills itself (SIGKILL) in its third batch after writing only that share of
# it: a kill from outside lands inside a write() only now and then (encoding and fsync take most of the time).
WRITER = """
import os, signal, sys, time
from mlops import jsonio, predlog
folder, start, cut, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
if cut:
    write_all, calls = jsonio.write_all, []
    def torn_write(fd, payload):
        calls.append(1)
        if len(calls) == 3:
            n = int(len(payload) * cut)
            while payload[n - 1 : n] == b"\\n":
                n -= 1
            os.write(fd, payload[:n])
            os.kill(os.getpid(), signal.SIGKILL)
        write_all(fd, payload)
    jsonio.write_all = torn_write
pad = "x" * 400
for b in range(start, start + 10_000):
    recs = [{"request_id": f"b{b}-{i}", "time": "2026-11-22T10:00:00Z", "model_version": "v1", "role": "production",
             "features": {"x": float(i), "pad": pad}, "score": 0.5, "prediction": 1} for i in range(500)]
    predlog.append_predictions(folder, recs)
    print(f"b{b}", flush=True)
    time.sleep(pause)
"""


def test_kill_9_mid_append_then_append_again_leaves_every_acknowledged_record_and_no_malformed_line(repo):
    import random
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    rng = random.Random(15)
    folder = repo.production_logs
    rounds = 8
    # A second writer appends the whole time (as `mlops serve` beside `mlops predict`): the repair happens under
    # the same lock, so it never cuts a line this writer is writing.
    beside = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(folder), "900000", "0", "0.05"],
        stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert beside.stdout is not None
    beside.stdout.readline()
    acked: set[str] = {"b900000"}
    for round_no in range(rounds):
        cut = rng.uniform(0.05, 0.95) if round_no % 2 else 0.0  # odd rounds: killed inside a write
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(folder), str(round_no * 10_000), str(cut), "0"],
            stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1],
        )  # fmt: skip
        assert proc.stdout is not None
        if not cut:
            proc.stdout.readline()  # it is writing: the first batch was acknowledged
            time.sleep(rng.uniform(0.0, 0.3))
            os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        acked.update(line for line in out.decode().splitlines())
    os.kill(beside.pid, signal.SIGKILL)
    out, _ = beside.communicate(timeout=30)
    acked.update(line for line in out.decode().splitlines())
    predlog.append_predictions(folder, [record(1, "2026-11-22T11:00:00Z")])
    path = folder / "predictions-20261122.jsonl"
    data = path.read_bytes()
    assert data.endswith(b"\n")
    for line in data.split(b"\n")[:-1]:
        json.loads(line)  # every line is whole
    got = predlog.read(repo, "datasets/production/predictions-*", "predictions", on_malformed="refuse")
    assert got.skipped == [] and len(acked) >= rounds
    for b in acked:  # an acknowledged batch is all there
        assert sum(r["request_id"].startswith(b + "-") for r in got.records) == 500
    torn = path.with_name(path.name + ".torn").read_text().splitlines()
    assert len(torn) >= rounds // 2  # each write cut by a kill left one fragment, moved by the next append
