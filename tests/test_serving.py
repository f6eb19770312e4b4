"""The router's hashing, `mlops predict`, `mlops serve` over real HTTP, and simulate-traffic through the router."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mlops.repo import Repo
from mlops.serving import Router, bucket
from tests.support.cli import run
from tests.support.deployed import copy_repo, feature_rows, template
from tests.support.http import call
from tests.support.repo import tree_snapshot


def _post(url: str, body: object) -> tuple[int, dict]:
    return call(url, body, timeout=30)


def _get(url: str) -> tuple[int, dict]:
    return call(url, timeout=30)


@pytest.fixture
def canary(tmp_path, tmp_path_factory):
    """v1 in production, v2 as a 20 % canary."""
    repo, v1, v2 = copy_repo(template(tmp_path_factory), tmp_path / "repo", tracking=False)
    assert run(repo, "deploy", "--mode", "full", "--version", v1).code == 0
    r = run(repo, "deploy", "--mode", "canary", "--version", v2, "--traffic", "0.2")
    assert r.code == 0, r.err
    return repo, v1, v2


def log_records(repo: Path) -> list[dict]:
    out = []
    for p in sorted((repo / "datasets/production").glob("predictions-*.jsonl")):
        out += [json.loads(line) for line in p.read_text().splitlines()]
    return out


def store_records(repo: Path) -> list[dict]:
    from mlops import config
    from mlops.logstore import open_store

    return open_store(config.load(Repo.at(repo))).read("predictions")


def test_bucket_is_uniform_deterministic_and_monotone():
    ids = [f"id-{i}" for i in range(100_000)]
    buckets = [bucket(i) for i in ids]
    assert buckets == [bucket(i) for i in ids]
    assert all(0 <= b < 1 for b in buckets)
    for share in (0.01, 0.1, 0.5):
        assert abs(sum(b < share for b in buckets) / len(ids) - share) < 0.005
    # Raising the share only adds request ids to the canary; none leaves it.
    small = {i for i, b in zip(ids, buckets, strict=True) if b < 0.1}
    large = {i for i, b in zip(ids, buckets, strict=True) if b < 0.2}
    assert small < large


def test_predict_command_uses_request_id_column(canary):
    repo, v1, v2 = canary
    rows = feature_rows(400, seed=4)
    rows.insert(0, "request_id", [f"cust-{i}" for i in range(400)])
    rows.to_csv(repo / "in.csv", index=False)
    r = run(repo, "predict", "--input", str(repo / "in.csv"), "--output", str(repo / "out.csv"))
    assert r.code == 0, r.err
    import pandas as pd

    out = pd.read_csv(repo / "out.csv")
    assert list(out.columns) == ["request_id", "score", "prediction", "model_version", "role"]
    assert out["request_id"].tolist() == rows["request_id"].tolist()
    router = Router(Repo.at(repo), log=False)
    assert out["role"].tolist() == [router.role_for(i) for i in rows["request_id"]]
    assert set(out.loc[out["role"] == "canary", "model_version"]) == {v2}
    assert ((out["score"] >= 0) & (out["score"] <= 1)).all()
    assert ((out["score"] >= 0.5).astype(int) == out["prediction"]).all()
    logged = log_records(repo)
    assert [x["request_id"] for x in logged] == rows["request_id"].tolist()
    assert logged[0]["features"].keys() >= {"age", "plan"} and logged[0]["batch_size"] == 400


def test_predict_command_keeps_request_ids_as_written(canary):
    repo, v1, v2 = canary
    rows = feature_rows(3, seed=4)
    rows.insert(0, "request_id", ["007", "1e5", "42"])
    rows.to_csv(repo / "in.csv", index=False)
    r = run(repo, "predict", "--input", str(repo / "in.csv"), "--output", str(repo / "out.csv"))
    assert r.code == 0, r.err
    import pandas as pd

    out = pd.read_csv(repo / "out.csv", dtype={"request_id": str})
    assert out["request_id"].tolist() == ["007", "1e5", "42"]
    router = Router(Repo.at(repo), log=False)
    assert out["role"].tolist() == [router.role_for(i) for i in ("007", "1e5", "42")]
    assert [x["request_id"] for x in log_records(repo)] == ["007", "1e5", "42"]


def test_predict_command_refuses_text_in_a_numeric_feature(canary):
    repo, v1, v2 = canary
    rows = feature_rows(3, seed=4).astype({"age": object})
    rows.loc[1, "age"] = "abc"
    rows.to_csv(repo / "in.csv", index=False)
    r = run(repo, "predict", "--input", str(repo / "in.csv"), "--output", str(repo / "out.csv"))
    assert r.code == 2 and "feature 'age' is not a number (or null) in 1 row(s), first row 1" in r.err
    assert not (repo / "out.csv").exists()


def test_serve_answers_a_real_http_client(canary):
    repo, v1, v2 = canary
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops", "--repo", str(repo), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving on http://127.0.0.1:"), line + proc.stderr.read()
        base = line.split()[2]
        with urllib.request.urlopen(f"{base}/health", timeout=30) as resp:
            health = json.loads(resp.read())
        assert health["status"] == "ok"
        assert health["models"]["production"]["version"] == v1 and health["models"]["canary"]["version"] == v2

        rows = feature_rows(30, seed=12).to_dict("records")
        answers = []
        for i, feats in enumerate(rows):
            code, body = _post(f"{base}/predict", {"request_id": f"http-{i}", "features": feats})
            assert code == 200, body
            answers.append(body)
        router = Router(Repo.at(repo), log=False)
        assert [a["role"] for a in answers] == [router.role_for(f"http-{i}") for i in range(30)]
        assert all(0 <= a["score"] <= 1 and a["model_version"] in (v1, v2) for a in answers)

        code, body = _post(f"{base}/predict", {"instances": [{"request_id": "b-1", "features": rows[0]}]})
        assert code == 200 and body["predictions"][0]["request_id"] == "b-1"
        code, body = _post(f"{base}/predict", {"request_id": "bad", "features": {"age": 40}})
        assert code == 400 and "missing feature(s) income" in body["error"]
        code, body = _post(f"{base}/predict", [1, 2])
        assert code == 400 and "expected" in body["error"]
        # bad values are the caller's error (400), not a serving error of the model
        for feature, value, says in (
            ("age", "abc", "feature 'age' is not a number (or null) in 1 row(s)"),
            ("age", [1, 2], "feature 'age' is not a number (or null)"),
            ("plan", {"a": 1}, "feature 'plan' is not a single value"),
        ):
            code, body = _post(f"{base}/predict", {"request_id": "v", "features": {**rows[0], feature: value}})
            assert code == 400 and says in body["error"], body
        mixed = {"instances": [{"features": {**rows[0], "age": float("inf")}}, {"features": {**rows[1], "age": True}}]}
        code, body = _post(f"{base}/predict", mixed)
        assert code == 400 and "feature 'age' is infinite in 1 row(s)" in body["error"], body
        host, port = base.removeprefix("http://").split(":")
        for headers, payload in (({"Content-Length": "abc"}, b"{}"), ({}, b"[" * 100_000 + b"]" * 100_000)):
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            conn.putrequest("POST", "/predict")
            for k, v in {"Content-Length": str(len(payload)), **headers}.items():
                conn.putheader(k, v)
            conn.endheaders()
            conn.send(payload)
            resp = conn.getresponse()
            assert resp.status == 400, resp.read()
            conn.close()
        assert not list((repo / "datasets/production").glob("serving-errors-*"))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == 0
    # SIGTERM is a clean shutdown: the WAL was shipped to the store and nothing went to the JSONL log
    assert not log_records(repo) and not list((repo / "datasets/production/wal").glob("segment-*.jsonl"))
    logged = [x["request_id"] for x in store_records(repo) if x["role"] != "shadow"]
    assert sorted(logged) == sorted([f"http-{i}" for i in range(30)] + ["b-1"])


def test_simulate_traffic_goes_through_the_router(canary):
    repo, v1, v2 = canary
    r = run(repo, "simulate-traffic", "--rows", "2000", "--seed", "3")
    assert r.code == 0, r.err
    logged = log_records(repo)
    assert len(logged) == 2000
    canary_rows = [x for x in logged if x["role"] == "canary"]
    assert 0.17 <= len(canary_rows) / 2000 <= 0.23
    assert {x["model_version"] for x in canary_rows} == {v2}
    assert {x["model_version"] for x in logged if x["role"] == "production"} == {v1}
    router = Router(Repo.at(repo), log=False)
    assert all(router.role_for(x["request_id"]) == x["role"] for x in logged)
    feedback = (repo / "datasets/production").glob("feedback-*.jsonl")
    assert sum(len(p.read_text().splitlines()) for p in feedback) == 2000


def _production_logs(repo: Path) -> dict[str, bytes]:
    folder = repo / "datasets/production"
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*"))} if folder.exists() else {}


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("out.csv", "out.csv: is a directory, not an output file"),  # a directory named like a file
        ("results", "results: is a directory, not an output file"),
        ("in.csv/out.csv", "in.csv is a file, not a folder"),
        ("out.txt", "out.txt: unknown output format"),
    ],
)
def test_predict_refuses_an_output_it_cannot_write_before_logging_anything(canary, output, message):
    repo, v1, v2 = canary
    feature_rows(5, seed=4).to_csv(repo / "in.csv", index=False)
    (repo / "out.csv").mkdir()
    (repo / "results").mkdir()
    Router(Repo.at(repo)).predict(feature_rows(3, seed=5), ["a", "b", "c"])  # a log that must stay as it is
    logs, before = _production_logs(repo), tree_snapshot(repo)
    r = run(repo, "predict", "--input", str(repo / "in.csv"), "--output", str(repo / output))
    assert r.code == 2 and message in r.err and r.err.strip().count("\n") == 0, r.err
    assert _production_logs(repo) == logs and tree_snapshot(repo) == before
    assert not list((repo / "out.csv").iterdir()) and not list((repo / "results").iterdir())


def test_predict_after_a_killed_writer_cuts_the_torn_line_so_monitoring_reads_every_record(canary):
    """A writer killed mid-append left half a line: the next `mlops predict` moves it to the sidecar first."""
    from mlops import predlog

    repo, v1, v2 = canary
    Router(Repo.at(repo)).predict(feature_rows(3, seed=5), ["a", "b", "c"])
    (path,) = (repo / "datasets/production").glob("predictions-*.jsonl")
    whole = path.read_bytes()
    with open(path, "ab") as fh:
        fh.write(whole.split(b"\n")[0][:57])  # the first 57 bytes of a record, no newline
    rows = feature_rows(4, seed=6)
    rows.insert(0, "request_id", ["d", "e", "f", "g"])
    rows.to_csv(repo / "in.csv", index=False)
    r = run(repo, "predict", "--input", str(repo / "in.csv"), "--output", str(repo / "out.csv"))
    assert r.code == 0, r.err
    assert path.read_bytes().startswith(whole) and path.read_bytes().count(b"\n") == len(log_records(repo))
    assert [x["request_id"] for x in log_records(repo)] == list("abcdefg")
    got = predlog.read(Repo.at(repo), "datasets/production/predictions-*", "predictions", on_malformed="refuse")
    assert len(got.records) == 7 and got.skipped == []
    (note,) = [json.loads(x) for x in path.with_name(path.name + ".torn").read_text().splitlines()]
    assert note["fragment"].encode() == whole[:57] and note["offset"] == len(whole)
    r = run(repo, "monitor")
    assert r.code == 0 and "malformed" not in r.err, r.err


def test_the_serving_errors_log_goes_through_the_same_append(canary):
    repo, v1, v2 = canary
    router = Router(Repo.at(repo))
    path = router.repo.production_logs / "serving-errors-20261122.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'{"request_id": "x", "ti')  # torn by a killed server
    error = {"request_id": "r1", "time": "2026-11-22T10:00:00Z", "role": "canary", "model_version": v2, "error": "E"}
    errors = [error, {**error, "request_id": "r2"}]
    router._log_errors(errors)
    assert path.read_text() == "".join(json.dumps(e, sort_keys=True) + "\n" for e in errors)
    assert json.loads(path.with_name(path.name + ".torn").read_text())["fragment"] == '{"request_id": "x", "ti'


def _serve_in_thread(server):
    import threading

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    return f"http://{host}:{port}", thread


def test_status_of_the_local_source_names_versions_traffic_and_no_commit_outside_git(canary):
    from mlops.serving_http import make_server

    repo, v1, v2 = canary
    server = make_server(Repo.at(repo), port=0)
    base, thread = _serve_in_thread(server)
    try:
        code, body = _get(f"{base}/status")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 200
    assert body["state"] == {"production": v1, "canary": v2, "shadow": None}
    assert body["traffic"] == pytest.approx({"production": 0.8, "canary": 0.2})
    assert body["error"] is None and "store" in body
    assert body["commit"] is None or len(body["commit"]) == 40


def test_make_server_serves_any_source_given_as_serving(canary):
    import threading

    from mlops.serving_http import make_server

    repo, v1, _v2 = canary
    router = Router(Repo.at(repo), log=False)

    class Source:
        lock = threading.Lock()
        error = None
        refreshed = 0

        def __init__(self):
            self.router = router

        def refresh(self):
            Source.refreshed += 1

        def status(self):
            return {"commit": "c" * 40, "state": {"production": v1}, "traffic": {"production": 1.0}, "error": None}

    server = make_server(Repo.at(repo), port=0, serving=Source())
    base, _thread = _serve_in_thread(server)
    try:
        feats = feature_rows(1, seed=3).to_dict("records")[0]
        code, answer = _post(f"{base}/predict", {"request_id": "src-1", "features": feats})
        status_code, status = _get(f"{base}/status")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 200 and answer["request_id"] == "src-1"
    assert status_code == 200 and status["commit"] == "c" * 40 and status["state"] == {"production": v1}
    assert Source.refreshed >= 2
