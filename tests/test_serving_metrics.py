"""mlops.serving_metrics: GET /metrics on a live server (counters, histogram, backlog, commit), and the body limit."""

from __future__ import annotations

import http.client
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlops.serving_http import MAX_BODY_BYTES
from mlops.serving_metrics import Metrics, route_label
from tests.support.cli import run
from tests.support.deployed import copy_repo, feature_rows, template
from tests.support.http import serving


@pytest.fixture
def served(tmp_path, tmp_path_factory):
    """A server of v1 in production (full), on a free port in a thread."""
    repo, v1, _v2 = copy_repo(template(tmp_path_factory), tmp_path / "repo", tracking=False)
    assert run(repo, "deploy", "--mode", "full", "--version", v1).code == 0
    with serving(repo) as server:
        yield server, v1


def _request(server, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.putrequest(method, path)
        for k, v in {"Content-Length": str(len(body)), **(headers or {})}.items():
            conn.putheader(k, v)
        conn.endheaders()
        if body:
            conn.send(body)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read()
    finally:
        conn.close()


def _samples(text: str) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_count_predictions_by_version_role_and_status_with_latency_backlog_and_commit(served):
    server, v1 = served
    rows = feature_rows(3, seed=5).to_dict("records")
    for i, feats in enumerate(rows):
        code, _ctype, _body = _request(
            server, "POST", "/predict", json.dumps({"request_id": f"m-{i}", "features": feats}).encode()
        )
        assert code == 200
    batch = {"instances": [{"request_id": "b-1", "features": rows[0]}, {"request_id": "b-2", "features": rows[1]}]}
    assert _request(server, "POST", "/predict", json.dumps(batch).encode())[0] == 200
    assert _request(server, "POST", "/predict", b"[1]")[0] == 400
    assert _request(server, "GET", "/nowhere")[0] == 404
    code, ctype, text = _request(server, "GET", "/metrics")
    assert code == 200 and ctype.startswith("text/plain; version=")
    got = _samples(text.decode())

    def req(route, version, role, status):
        key = (("role", role), ("route", route), ("status", status), ("version", version))
        return got.get(("mlops_requests_total", key))

    assert req("/predict", v1, "production", "200") == 5.0  # 3 single requests + a batch of 2 predictions
    assert req("/predict", "", "", "400") == 1.0
    assert req("other", "", "", "404") == 1.0
    assert got[("mlops_request_seconds_count", (("route", "/predict"),))] == 5.0  # one observation per request
    assert got[("mlops_request_seconds_count", (("route", "other"),))] == 1.0
    assert ("mlops_log_backlog_rows", ()) in got and got[("mlops_log_backlog_rows", ())] >= 0
    commits = [dict(labels)["commit"] for name, labels in got if name == "mlops_served_info"]
    assert len(commits) == 1  # "" outside git: the test repo is a plain copy
    # the scrape itself is counted on the next one
    got = _samples(_request(server, "GET", "/metrics")[2].decode())
    assert (
        got[("mlops_requests_total", (("role", ""), ("route", "/metrics"), ("status", "200"), ("version", "")))] == 1.0
    )


def test_a_body_over_the_limit_is_413_one_line_and_nothing_is_read(served):
    server, _v1 = served
    code, ctype, body = _request(server, "POST", "/predict", headers={"Content-Length": str(MAX_BODY_BYTES + 1)})
    assert code == 413 and ctype == "application/json"
    error = json.loads(body)["error"]
    assert error == f"request body: {MAX_BODY_BYTES + 1} bytes over the {MAX_BODY_BYTES} limit; send fewer"
    assert "\n" not in error
    assert MAX_BODY_BYTES == 8 * 1024 * 1024
    assert _request(server, "GET", "/health")[0] == 200  # the server still answers


def test_two_servers_keep_separate_registries():
    a, b = Metrics(), Metrics()
    a.observe("/predict", 200, {"model_version": "v1", "role": "production"}, None)
    text_a = a.render({"commit": "c" * 40, "store": {"backlog_rows": 7}}).decode()
    text_b = b.render({"commit": None, "store": {}}).decode()
    assert 'mlops_requests_total{role="production",route="/predict",status="200",version="v1"} 1.0' in text_a
    assert "mlops_log_backlog_rows 7.0" in text_a and f'mlops_served_info{{commit="{"c" * 40}"}} 1.0' in text_a
    assert "mlops_requests_total{" not in text_b and 'mlops_served_info{commit=""} 1.0' in text_b


def test_unknown_routes_are_one_label():
    assert route_label("/predict?x=1") == "/predict"
    assert route_label("/wp-admin") == route_label("/../etc") == "other"
