"""The prediction log: validated appends, JSONL and Parquet, local globs and pyarrow URIs, the window."""

from __future__ import annotations

import datetime as dt
import json

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
