"""The log store on the local-folder backend: write, list, read, window, dedupe, malformed parts."""

import datetime as dt

import pytest

from mlops.errors import BadInput
from mlops.logstore import Part, open_uri
from tests.logstore.support import feedback, prediction

UTC = dt.UTC


def at(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, 1, hour, minute, tzinfo=UTC)


def test_write_groups_by_hour_and_reads_back_the_records(tmp_path):
    store = open_uri("store", tmp_path)
    records = [prediction(i, f"2026-03-01T0{i % 2}:15:00Z", latency_ms=1.5, batch_size=1) for i in range(4)]
    parts = store.write("predictions", records)
    assert [(p.date, p.hour, p.rows) for p in parts] == [("2026-03-01", 0, 2), ("2026-03-01", 1, 2)]
    assert all(isinstance(p, Part) and p.path.startswith(f"kind=predictions/date=2026-03-01/hour=0{p.hour}/part-")
               for p in parts)  # fmt: skip
    assert (tmp_path / "store" / parts[0].path).is_file()
    got = sorted(store.read("predictions"), key=lambda r: r["request_id"])
    assert got[0] == {**records[0], "features": {"age": 30.0, "city": "Oslo"}}
    assert [r["request_id"] for r in got] == ["r0", "r1", "r2", "r3"]
    assert store.parts("predictions") == parts  # same paths, sha256 and rows when listed again


def test_read_filters_rows_to_the_window(tmp_path):
    store = open_uri("store", tmp_path)
    store.write("predictions", [prediction(1, "2026-03-01T01:10:00Z"), prediction(2, "2026-03-01T01:50:00Z")])
    assert [r["request_id"] for r in store.read("predictions", at(1, 30), at(2))] == ["r2"]
    assert [r["request_id"] for r in store.read("predictions", at(0), at(1, 50))] == ["r1"]
    assert store.read("predictions", at(2), None) == []


def test_feedback_labels_read_back_as_written(tmp_path):
    store = open_uri("store", tmp_path)
    t = "2026-03-01T01:00:00Z"
    parts = store.write("feedback", [feedback(1, 1, t), feedback(2, ">50K", t), feedback(3, True, t)])
    assert sorted(p.rows for p in parts) == [1, 2]  # integer labels and text labels in separate parts
    labels = {r["request_id"]: r["label"] for r in store.read("feedback")}
    assert labels == {"r1": 1, "r2": ">50K", "r3": 1}


def test_a_bad_record_is_refused_before_anything_is_written(tmp_path):
    store = open_uri("store", tmp_path)
    with pytest.raises(BadInput, match=r"predictions record 1: role 'blue' is not one of"):
        store.write("predictions", [prediction(1, "2026-03-01T01:00:00Z"), prediction(2, "2026-03-01T02:00:00Z",
                                                                                       role="blue")])  # fmt: skip
    assert not (tmp_path / "store").exists()


def test_a_malformed_part_is_named(tmp_path):
    store = open_uri("store", tmp_path)
    store.write("predictions", [prediction(1, "2026-03-01T01:00:00Z")])
    bad = tmp_path / "store/kind=predictions/date=2026-03-01/hour=01" / f"part-20260301T010000Z-{'0' * 32}.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(BadInput, match=r"hour=01/part-20260301T010000Z-0+\.parquet: not a readable Parquet part"):
        store.read("predictions")
