"""Shipping the serving WAL to the log store: sealing, outages, replay without duplicates, /feedback,
and kill -9 of a real `mlops serve` during concurrent traffic."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from mlops.repo import Repo
from mlops.shipping import ServingLog, Shipper
from mlops.wal import Wal
from tests.support.cli import run
from tests.support.deployed import copy_repo, feature_rows, template


def rec(i: int, role: str = "production", when: str = "2026-11-22T06:00:00Z") -> dict:
    return {
        "request_id": f"r-{i}", "time": when, "model_version": "v1", "role": role,
        "features": {"age": 40}, "score": 0.25, "prediction": 0,
    }  # fmt: skip


class FakeStore:
    """A store in memory that can be down, or fail after writing `fail_after` kinds."""

    uri = "memory://"

    def __init__(self):
        self.rows: dict[str, list[dict]] = {"predictions": [], "feedback": []}
        self.down = False
        self.fail_kind: str | None = None

    def write(self, kind, records):
        if self.down or kind == self.fail_kind:
            raise OSError(111, "Connection refused")
        self.rows[kind] += [dict(r) for r in records]
        return []

    def read(self, kind, since=None, until=None):
        if self.down:
            raise OSError(111, "Connection refused")
        return list(self.rows[kind])


def store_cfg(**kw) -> SimpleNamespace:
    base = {"part_max_rows": 5000, "part_max_age_seconds": 60, "feedback_lookback_days": 7}
    return SimpleNamespace(**{**base, **kw})


def serving_log(tmp_path, store, max_rows=1000, **kw) -> ServingLog:
    wal = Wal(tmp_path / "wal", group_commit_ms=0, max_rows=max_rows)
    return ServingLog(wal, store, store_cfg(**kw))


def test_a_full_segment_is_sealed_shipped_and_deleted(tmp_path):
    store = FakeStore()
    log = serving_log(tmp_path, store, part_max_rows=3)
    log.log_predictions([rec(1), rec(2), rec(3)])
    assert log.shipper.ship_once()
    assert [r["request_id"] for r in store.rows["predictions"]] == ["r-1", "r-2", "r-3"]
    assert log.wal.backlog == 0 and not list((tmp_path / "wal").glob("segment-*.shipping"))
    log.log_predictions([rec(4)])
    assert log.shipper.ship_once() and len(store.rows["predictions"]) == 3  # not full, not old: waits
    log.close()
    assert len(store.rows["predictions"]) == 4  # a clean close ships the rest
    assert not list((tmp_path / "wal").glob("segment-*"))


def test_an_old_segment_is_shipped_by_age(tmp_path):
    store = FakeStore()
    log = serving_log(tmp_path, store, part_max_age_seconds=0.05)
    log.log_predictions([rec(1)])
    time.sleep(0.1)
    assert log.shipper.ship_once() and len(store.rows["predictions"]) == 1
    log.close()


def test_an_outage_keeps_the_backlog_on_disk_and_status_shows_it_until_recovery(tmp_path):
    store = FakeStore()
    store.down = True
    log = serving_log(tmp_path, store, part_max_rows=2)
    for i in range(3):
        log.log_predictions([rec(2 * i), rec(2 * i + 1)])
        assert not log.shipper.ship_once()
    status = log.status()
    assert status["backlog_rows"] == 6 and status["segments"] == 3
    assert "Connection refused" in status["last_error"] and status["last_ship_time"] is None
    store.down = False
    assert log.shipper.ship_once()
    status = log.status()
    assert status["backlog_rows"] == 0 and status["segments"] == 0 and status["last_ship_time"]
    assert sorted(r["request_id"] for r in store.rows["predictions"]) == [f"r-{i}" for i in range(6)]
    log.close()


def test_a_retry_after_a_part_written_store_write_does_not_duplicate(tmp_path):
    store = FakeStore()
    store.fail_kind = "feedback"  # predictions land, feedback fails: the segment stays .shipping
    log = serving_log(tmp_path, store, part_max_rows=2)
    log.log_predictions([rec(1), rec(2)])
    log.log_feedback([{"request_id": "r-1", "label": 1, "time": "2026-11-22T07:00:00Z"}])
    assert not log.shipper.ship_once()
    assert len(list((tmp_path / "wal").glob("segment-*.shipping"))) == 1
    store.fail_kind = None
    assert log.shipper.ship_once()
    assert [r["request_id"] for r in store.rows["predictions"]] == ["r-1", "r-2"]
    assert len(store.rows["feedback"]) == 1
    log.close()


def test_a_restart_replays_a_shipped_but_not_deleted_segment_without_duplicates(tmp_path):
    store = FakeStore()
    log = serving_log(tmp_path, store, part_max_rows=2)
    log.log_predictions([rec(1), rec(2)])
    log.wal.seal()
    (seg,) = log.wal.sealed()
    seg = log.wal.mark_shipping(seg)
    store.write("predictions", [rec(1), rec(2)])  # the server died after the store write, before the delete
    os.close(log.wal._lock_fd)
    again = serving_log(tmp_path, store)
    assert again.shipper.ship_once() and again.wal.backlog == 0
    assert [r["request_id"] for r in store.rows["predictions"]] == ["r-1", "r-2"]
    again.close()


def test_shipper_thread_ships_without_being_asked(tmp_path):
    store = FakeStore()
    log = serving_log(tmp_path, store, part_max_rows=2)
    log.start()
    log.log_predictions([rec(1), rec(2)])
    deadline = time.monotonic() + 10
    while not store.rows["predictions"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(store.rows["predictions"]) == 2
    log.close()
    assert isinstance(log.shipper, Shipper) and not log.shipper._thread.is_alive()


# ------------------------------------------------------------------------------- HTTP


@pytest.fixture
def deployed(tmp_path, tmp_path_factory):
    repo, v1, _v2 = copy_repo(template(tmp_path_factory), tmp_path / "repo", tracking=False)
    assert run(repo, "deploy", "--mode", "full", "--version", v1).code == 0
    return repo, v1


def set_store(repo: Path, **values) -> None:
    path = repo / "config/store.json"
    cfg = json.loads(path.read_text())
    path.write_text(json.dumps({**cfg, **values}, indent=2) + "\n")


def call(url: str, body: object = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def in_thread(server) -> str:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"


def store_rows(repo: Path, kind: str) -> list[dict]:
    """Every physical row of every part (the store's read would fold duplicates away)."""
    import pyarrow.parquet as pq

    rows = []
    for part in sorted((repo / "datasets/production/store").glob(f"kind={kind}/date=*/hour=*/part-*.parquet")):
        rows += pq.read_table(part).to_pylist()
    return rows


def test_feedback_good_and_bad(deployed):
    from mlops.serving_http import make_server

    repo, v1 = deployed
    server = make_server(Repo.at(repo), port=0)
    base = in_thread(server)
    try:
        feats = feature_rows(2, seed=5).to_dict("records")
        assert call(f"{base}/predict", {"request_id": "fb-1", "features": feats[0]})[0] == 200
        assert call(f"{base}/predict", {"request_id": "fb-2", "features": feats[1]})[0] == 200
        assert call(f"{base}/feedback", {"request_id": "fb-1", "label": 1}) == (200, {"accepted": 1})
        code, body = call(
            f"{base}/feedback", {"feedback": [{"request_id": "fb-2", "label": 0}, {"request_id": "fb-1", "label": 0}]}
        )
        assert (code, body) == (200, {"accepted": 2})
        for payload, says in (
            ({"request_id": "fb-1", "label": "yes"}, f"label 'yes' is not one of model {v1}'s classes (0, 1)"),
            ({"request_id": "never", "label": 1}, "request_id 'never' was never served"),
            ({"feedback": [{"request_id": "fb-1", "label": 1}, {"label": 1}]}, "feedback[1]: expected"),
            ({"label": 1}, "request body: expected"),
            ([1], "request body: expected"),
        ):
            code, body = call(f"{base}/feedback", payload)
            assert code == 400 and says in body["error"] and "\n" not in body["error"], body
    finally:
        server.shutdown()
        server.server_close()
    feedback = store_rows(repo, "feedback")
    assert sorted((r["request_id"], r["label"]) for r in feedback) == [("fb-1", 0), ("fb-1", 1), ("fb-2", 0)]

    # a restarted server finds ids it served before in the store
    server = make_server(Repo.at(repo), port=0)
    base = in_thread(server)
    try:
        assert call(f"{base}/feedback", {"request_id": "fb-2", "label": 1}) == (200, {"accepted": 1})
        assert call(f"{base}/feedback", {"request_id": "nope", "label": 1})[0] == 400
    finally:
        server.shutdown()
        server.server_close()


def test_store_outage_grows_the_backlog_then_503_beyond_the_bound_then_recovery_ships_it(deployed):
    from mlops.serving_http import make_server

    repo, _v1 = deployed
    blocker = repo / "datasets/production/store"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the store's folder should be\n")  # the store cannot be written
    set_store(repo, part_max_rows=2, part_max_age_seconds=0.1, buffer_max_rows=6)
    server = make_server(Repo.at(repo), port=0)
    base = in_thread(server)
    feats = feature_rows(8, seed=6).to_dict("records")
    try:
        codes = [call(f"{base}/predict", {"request_id": f"o-{i}", "features": feats[i]})[0] for i in range(6)]
        assert codes == [200] * 6
        code, body = call(f"{base}/predict", {"request_id": "o-6", "features": feats[6]})
        assert code == 503 and "buffer full" in body["error"], body
        time.sleep(0.5)
        code, status = call(f"{base}/status")
        store = status["store"]
        assert code == 200 and store["backlog_rows"] == 6 and store["segments"] >= 1 and store["last_error"], status
        blocker.unlink()  # the store is back
        deadline = time.monotonic() + 40
        while call(f"{base}/status")[1]["store"]["backlog_rows"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert call(f"{base}/status")[1]["store"]["last_ship_time"]
        assert call(f"{base}/predict", {"request_id": "o-6", "features": feats[6]})[0] == 200
    finally:
        server.shutdown()
        server.server_close()
    ids = sorted(r["request_id"] for r in store_rows(repo, "predictions"))
    assert ids == [f"o-{i}" for i in range(7)]


# ------------------------------------------------------------------------------- kill -9


def start_serve(repo: Path) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops", "--repo", str(repo), "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    line = proc.stdout.readline()
    assert line.startswith("serving on http://127.0.0.1:"), line + proc.stderr.read()
    return proc, line.split()[2]


def traffic(base: str, client: int, rows: list[dict], acked: list[str], sent: list[str], stop: threading.Event) -> None:
    i = 0
    while not stop.is_set():
        rid = f"k-{client}-{i}"
        sent.append(rid)
        try:
            code, _body = call(f"{base}/predict", {"request_id": rid, "features": rows[i % len(rows)]})
        except (OSError, urllib.error.URLError, json.JSONDecodeError, http.client.HTTPException):
            return  # the server died under us: this request was never acknowledged
        if code == 200:
            acked.append(rid)
        i += 1


def test_kill_9_during_concurrent_traffic_loses_no_acknowledged_row_and_duplicates_none(deployed):
    from mlops import predlog

    repo, _v1 = deployed
    set_store(repo, part_max_rows=40, part_max_age_seconds=0.2)
    rows = feature_rows(50, seed=8).to_dict("records")
    acked: list[str] = []
    sent: list[str] = []
    for round_ in range(2):
        proc, base = start_serve(repo)
        stop = threading.Event()
        clients = [
            threading.Thread(target=traffic, args=(base, round_ * 10 + c, rows, acked, sent, stop)) for c in range(4)
        ]  # four concurrent clients, as issue 17 asks
        for t in clients:
            t.start()
        time.sleep(2.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        stop.set()
        for t in clients:
            t.join(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    assert len(acked) > 100
    # restart: the WAL (a torn segment included) is replayed to the store; SIGTERM ships the rest
    proc, base = start_serve(repo)
    proc.terminate()
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    stored = [r["request_id"] for r in store_rows(repo, "predictions")]
    assert len(stored) == len(set(stored)), "a row is in the store twice"
    missing = set(acked) - set(stored)
    assert not missing, f"{len(missing)} acknowledged rows lost"
    assert set(stored) - set(acked) <= set(sent) - set(acked)  # extra rows only from requests cut off by the kill
    assert not list((repo / "datasets/production/wal").glob("segment-*"))
    got = predlog.read(
        Repo.at(repo), "datasets/production/store/kind=predictions/*/*/*.parquet", "predictions", on_malformed="refuse"
    )
    assert not got.skipped and len(got.records) == len(stored)
