"""The serving write-ahead log: durable appends, group commit, sealing, torn tails, the row bound."""

from __future__ import annotations

import os
import threading

import pytest

from mlops import wal as wal_mod
from mlops.errors import BadInput
from mlops.wal import BufferFull, Wal, WalBroken, read_segment


def rec(i: int, role: str = "production") -> dict:
    return {
        "request_id": f"r-{i}", "time": "2026-11-22T06:00:00Z", "model_version": "v1", "role": role,
        "features": {"age": 40}, "score": 0.25, "prediction": 0,
    }  # fmt: skip


def open_wal(folder, **kw) -> Wal:
    return Wal(folder, group_commit_ms=kw.pop("group_commit_ms", 2), max_rows=kw.pop("max_rows", 1000), **kw)


def test_append_is_on_disk_when_it_returns_and_sealing_starts_a_new_segment(tmp_path):
    w = open_wal(tmp_path / "wal")
    w.append([("predictions", [rec(1), rec(2)]), ("feedback", [{"request_id": "r-1", "label": 1, "time": "x"}])])
    (seg,) = sorted((tmp_path / "wal").glob("segment-*.jsonl"))
    records, problems = read_segment(seg)
    assert [r["request_id"] for r in records["predictions"]] == ["r-1", "r-2"] and not problems
    assert records["feedback"][0]["label"] == 1
    assert w.current_rows_and_age()[0] == 3 and w.backlog == 3
    w.seal()
    assert [s.rows for s in w.sealed()] == [3]
    w.append([("predictions", [rec(3)])])
    assert len(list((tmp_path / "wal").glob("segment-*.jsonl"))) == 2 and w.backlog == 4
    w.remove(w.mark_shipping(w.sealed()[0]))
    assert w.backlog == 1 and not w.sealed()
    w.close()
    assert len(list((tmp_path / "wal").glob("segment-*.jsonl"))) == 1


def test_a_second_server_on_the_same_folder_is_refused(tmp_path):
    w = open_wal(tmp_path / "wal")
    with pytest.raises(BadInput, match="in use by another `mlops serve`"):
        open_wal(tmp_path / "wal")
    w.close()
    open_wal(tmp_path / "wal").close()


def test_torn_tail_is_cut_on_open_and_every_old_segment_waits_sealed(tmp_path):
    w = open_wal(tmp_path / "wal")
    w.append([("predictions", [rec(1), rec(2)])])
    path = w._path
    os.close(w._lock_fd)  # a killed process: the lock goes, the file stays as it is
    with open(path, "ab") as fh:
        fh.write(b'{"kind": "predictions", "record": {"request_id": "r-3", "ti')
    again = open_wal(tmp_path / "wal")
    (seg,) = again.sealed()
    assert seg.rows == 2 and again.backlog == 2
    assert path.read_bytes().endswith(b"\n")
    assert '"r-3' in (path.parent / (path.name + ".torn")).read_text()
    assert len(read_segment(seg.path)[0]["predictions"]) == 2
    again.append([("predictions", [rec(4)])])
    assert again._path != path  # the old segment is never appended to again
    again.close()


def test_beyond_the_bound_nothing_is_written_and_the_request_is_refused(tmp_path):
    w = open_wal(tmp_path / "wal", max_rows=3)
    w.append([("predictions", [rec(1), rec(2)])])
    size = w._path.stat().st_size
    with pytest.raises(BufferFull, match="2 rows wait for the store"):
        w.append([("predictions", [rec(3), rec(4)])])
    assert w._path.stat().st_size == size
    w.append([("predictions", [rec(3)])])
    w.close()


def test_concurrent_writers_share_fsyncs(tmp_path, monkeypatch):
    calls = []
    real = os.fsync

    def counting(fd):
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(wal_mod.os, "fsync", counting)
    w = open_wal(tmp_path / "wal", group_commit_ms=5, max_rows=100000)
    calls.clear()
    barrier = threading.Barrier(16)

    def writer(t: int) -> None:
        barrier.wait()
        for i in range(25):
            w.append([("predictions", [rec(t * 1000 + i)])])

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert w.backlog == 400
    assert len(calls) < 400  # grouped: fewer fsyncs than appends
    ids = [r["request_id"] for r in read_segment(w._path)[0]["predictions"]]
    assert len(ids) == len(set(ids)) == 400
    w.close()


def test_a_failed_fsync_breaks_the_log_for_every_later_append(tmp_path, monkeypatch):
    w = open_wal(tmp_path / "wal")

    def failing(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(wal_mod.os, "fsync", failing)
    with pytest.raises(WalBroken, match="Input/output error; restart the server"):
        w.append([("predictions", [rec(1)])])
    monkeypatch.undo()
    with pytest.raises(WalBroken):
        w.append([("predictions", [rec(2)])])
    os.close(w._lock_fd)
