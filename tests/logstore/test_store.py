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


def _spy(monkeypatch):
    """Record every part a read opens and every folder it lists."""
    from mlops.logstore.backend import Backend

    opened, listed = [], []
    read_bytes, listdir = Backend.read_bytes, Backend.listdir
    monkeypatch.setattr(Backend, "read_bytes", lambda self, rel: opened.append(rel) or read_bytes(self, rel))
    monkeypatch.setattr(Backend, "listdir", lambda self, rel: listed.append(rel) or listdir(self, rel))
    return opened, listed


def test_a_window_read_opens_only_the_window_partitions(any_store, monkeypatch):
    store, files = any_store
    times = ["2026-02-28T23:30:00Z", "2026-03-01T00:30:00Z", "2026-03-01T01:30:00Z", "2026-03-01T02:30:00Z",
             "2026-03-02T01:30:00Z"]  # fmt: skip
    written = store.write("predictions", [prediction(i, t) for i, t in enumerate(times)])
    assert sorted(files()) == sorted(p.path for p in written)
    opened, listed = _spy(monkeypatch)
    got = store.read("predictions", at(0, 45), at(2))
    assert [r["request_id"] for r in got] == ["r2"]  # 00:30 is before the window, though its partition overlaps
    assert sorted(opened) == sorted(
        p.path for p in written if (p.date, p.hour) in {("2026-03-01", 0), ("2026-03-01", 1)}
    )
    assert not any("date=2026-02-28" in rel or "date=2026-03-02" in rel for rel in listed)
    opened.clear()
    assert [p.path for p in store.parts("predictions", at(2), at(3))] == [written[3].path]
    assert opened == [written[3].path]


def test_round_trip_on_both_backends(any_store):
    store, files = any_store
    records = [prediction(1, "2026-03-01T01:00:00Z", latency_ms=2.5, batch_size=3, fallback_from="canary"),
               prediction(2, "2026-03-01T01:00:00Z", role="shadow")]  # fmt: skip
    records[1]["features"] = {"age": None, "city": None}
    (part,) = store.write("predictions", records)
    assert files() == [part.path] and part.rows == 2
    got = store.read("predictions")
    assert got[0] == {**records[0], "features": {"age": 31.0, "city": "Oslo"}}
    assert got[1] == records[1]  # no latency_ms/batch_size/fallback_from keys: null extras are left out
    store.write("feedback", [feedback(1, "yes", "2026-03-01T02:00:00Z")])
    assert store.read("feedback") == [feedback(1, "yes", "2026-03-01T02:00:00Z")]


def test_a_failed_write_removes_the_parts_it_wrote(any_store, monkeypatch):
    from mlops.logstore.backend import Backend

    store, files = any_store
    write_whole, calls = Backend.write_whole, []

    def fail_second(self, rel, payload):
        calls.append(rel)
        if len(calls) == 2:
            raise BadInput("config/store.json: /uri", "the log store cannot be reached: boom")
        write_whole(self, rel, payload)

    monkeypatch.setattr(Backend, "write_whole", fail_second)
    with pytest.raises(BadInput, match="boom"):
        store.write("predictions", [prediction(1, "2026-03-01T01:00:00Z"), prediction(2, "2026-03-01T02:00:00Z")])
    assert len(calls) == 2 and files() == []


def test_local_parts_are_atomic_a_crash_before_the_rename_leaves_nothing(tmp_path, monkeypatch):
    import os

    store = open_uri("store", tmp_path)

    def crash(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(BadInput, match=r"cannot be reached \(store/kind=predictions/.*No space left on device"):
        store.write("predictions", [prediction(1, "2026-03-01T01:00:00Z")])
    assert [p for p in (tmp_path / "store").rglob("*") if p.is_file()] == []  # no part and no temp file


def test_temp_files_and_stray_folders_are_not_read(tmp_path):
    store = open_uri("store", tmp_path)
    (part,) = store.write("predictions", [prediction(1, "2026-03-01T01:00:00Z")])
    folder = (tmp_path / "store" / part.path).parent
    (folder / ".part-x.parquet.123.tmp").write_bytes(b"half a part")
    (tmp_path / "store/kind=predictions/date=garbage").mkdir()
    (tmp_path / "store/kind=predictions/date=2026-03-01/hour=99").mkdir()
    assert [r["request_id"] for r in store.read("predictions")] == ["r1"]
    assert store.parts("predictions") == [part]


def test_part_max_rows_splits_a_group(tmp_path):
    store = open_uri("store", tmp_path, part_max_rows=2)
    parts = store.write("predictions", [prediction(i, "2026-03-01T01:00:00Z") for i in range(5)])
    assert [p.rows for p in parts] == [2, 2, 1]
    assert len({p.path for p in parts}) == 3 and len(store.read("predictions")) == 5


def test_a_row_written_twice_is_read_once(tmp_path):
    store = open_uri("store", tmp_path)
    rows = [prediction(1, "2026-03-01T01:00:00Z"), prediction(1, "2026-03-01T01:00:00Z", role="shadow")]
    store.write("predictions", rows)
    store.write("predictions", rows)  # re-shipped after a crash
    assert [(r["request_id"], r["role"]) for r in store.read("predictions")] == [("r1", "production"), ("r1", "shadow")]


def test_a_part_with_wrong_columns_is_named(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    store = open_uri("store", tmp_path)
    folder = tmp_path / "store/kind=feedback/date=2026-03-01/hour=01"
    folder.mkdir(parents=True)
    pq.write_table(
        pa.table({"request_id": ["a"], "time": ["2026-03-01T01:00:00Z"]}),
        folder / f"part-20260301T010000Z-{'a' * 32}.parquet",
    )
    with pytest.raises(
        BadInput, match=r"hour=01/part-20260301T010000Z-a+\.parquet: not a feedback part: it has no 'label'"
    ):
        store.read("feedback")
    with pytest.raises(BadInput, match=r"not a feedback part"):
        store.parts("feedback")


def test_manifest_types_features_even_when_a_part_has_only_nulls(tmp_path):
    import io

    import pyarrow.parquet as pq

    store = open_uri("store", tmp_path, feature_types={"age": "numeric", "city": "categorical"})
    rec = prediction(1, "2026-03-01T01:00:00Z")
    rec["features"] = {"age": None, "city": None, "extra": None}
    (part,) = store.write("predictions", [rec])
    table = pq.read_table(io.BytesIO((tmp_path / "store" / part.path).read_bytes()))
    types = {f.name: str(f.type) for f in table.schema.field("features").type}
    assert types == {"age": "double", "city": "string", "extra": "string"}
    rec["features"] = {"age": "n/a", "city": 3}  # never coerced: the part keeps what the router logged
    store.write("predictions", [rec | {"time": "2026-03-01T02:00:00Z"}])
    assert store.read("predictions", at(2))[0]["features"] == {"age": "n/a", "city": 3.0}
