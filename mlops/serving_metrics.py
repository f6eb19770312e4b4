"""Prometheus metrics of `mlops serve` (GET /metrics), one registry per server.

- `mlops_requests_total{route,version,role,status}`: a 200 POST /predict counts once per prediction with its
  model version and role; every other request counts once with empty version and role.
- `mlops_request_seconds{route}`: request latency histogram (headers parsed to response written).
- `mlops_log_backlog_rows`: rows in the write-ahead log not yet in the store (GET /status "store.backlog_rows").
- `mlops_served_info{commit}`: the checkout's commit being served ("" outside git).

Routes outside the served ones are labelled "other", so a scanner cannot grow the label set.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

ROUTES = ("/predict", "/feedback", "/health", "/status", "/metrics")


def route_label(path: str) -> str:
    route = path.split("?")[0]
    return route if route in ROUTES else "other"


class Metrics:
    """The server's metrics; a per-server registry, so several servers (and tests) do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mlops_requests",
            "Requests answered (predictions for a 200 POST /predict), by route, model version, role and status.",
            ["route", "version", "role", "status"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "mlops_request_seconds", "Request latency in seconds, by route.", ["route"], registry=self.registry
        )
        self.backlog = Gauge(
            "mlops_log_backlog_rows", "Logged rows not yet shipped to the store.", registry=self.registry
        )
        self.served = Info("mlops_served", "The commit being served.", registry=self.registry)

    def observe(self, path: str, code: int, body: Any, start: float | None) -> None:
        """Count one answered request (`body` is the JSON answer) and its latency since `start` (perf_counter)."""
        route = route_label(path)
        answers = []
        if route == "/predict" and code == 200 and isinstance(body, dict):
            answers = body.get("predictions", [body])
        for answer in answers:
            self.requests.labels(route, str(answer.get("model_version")), str(answer.get("role")), str(code)).inc()
        if not answers:
            self.requests.labels(route, "", "", str(code)).inc()
        if start is not None:
            self.seconds.labels(route).observe(time.perf_counter() - start)

    def render(self, status: dict[str, Any]) -> bytes:
        """The exposition text, with the backlog gauge and served commit taken from a GET /status body."""
        backlog = (status.get("store") or {}).get("backlog_rows")
        if isinstance(backlog, (int, float)):
            self.backlog.set(backlog)
        self.served.info({"commit": status.get("commit") or ""})
        return generate_latest(self.registry)

    def respond(self, handler: Any, status: dict[str, Any]) -> None:
        """Answer GET /metrics on an http.server handler."""
        data = self.render(status)
        handler.send_response(200)
        handler.send_header("Content-Type", CONTENT_TYPE_LATEST)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        self.observe(handler.path, 200, None, getattr(handler, "_start", None))
