"""`mlops serve`: the HTTP server in front of the router (mlops.serving).

POST /predict and POST /feedback answer only once their rows are durable in the write-ahead log
(mlops.wal, group commit); GET /health, /status and /metrics (mlops.serving_metrics) report. A body
over MAX_BODY_BYTES is refused with 413; a connection idle or stalled past the socket timeout is
closed; `drain()` stops taking connections and lets requests in flight finish (SIGTERM).
See docs/deployment.md ("Serving").
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from mlops import jsonio, registry
from mlops.errors import BadInput, CheckFailed
from mlops.repo import Repo
from mlops.serving import Router

MAX_BODY_BYTES = 8 * 1024 * 1024  # a POST body above this is refused with 413 (docs/deployment.md)
SOCKET_TIMEOUT = 30.0  # seconds a connection may send nothing, mid-request or between requests


class Connections:
    """The server's open connections, idle or busy with a request, so a shutdown can drain them:
    stop reading from idle ones, let busy ones answer (then close), wait until none is busy."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._idle: set[socket.socket] = set()
        self._busy = 0
        self.draining = False

    def opened(self, sock: socket.socket) -> None:
        with self._changed:
            self._idle.add(sock)
            if self.draining:
                _stop_reading(sock)

    def busy(self, sock: socket.socket) -> bool:
        with self._changed:
            self._idle.discard(sock)
            self._busy += 1
            return True

    def done(self, sock: socket.socket) -> bool:
        """The request on `sock` was answered; True when draining (the connection should close)."""
        with self._changed:
            self._busy -= 1
            self._idle.add(sock)
            self._changed.notify_all()
            return self.draining

    def closed(self, sock: socket.socket) -> None:
        with self._changed:
            self._idle.discard(sock)

    def drain(self, seconds: float) -> bool:
        """Close idle connections, wait up to `seconds` for busy ones; True when none is left busy."""
        with self._changed:
            self.draining = True
            for sock in list(self._idle):
                _stop_reading(sock)
            return self._changed.wait_for(lambda: self._busy == 0, timeout=seconds)


def _stop_reading(sock: socket.socket) -> None:
    """A handler waiting for the next request on `sock` reads end-of-file and ends; writes still work."""
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:  # already closed by the client
        pass


def head_commit(root: Path) -> str | None:
    """The checked-out commit of `root`, or None when it is no git checkout (or git is missing)."""
    from mlops import git

    try:
        out = git.run(root, "rev-parse", "--verify", "--quiet", "HEAD", timeout=10)
    except BadInput:  # git is not installed
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


class _Serving:
    """The live router, rebuilt when the state file changes (a `git pull` or revert takes effect)."""

    def __init__(self, repo: Repo):
        self.repo = repo
        self.lock = threading.Lock()
        self.router: Router | None = None
        self.error: str | None = None
        self.stamp: tuple | None = None
        self.refresh()

    def _stat(self) -> tuple | None:
        try:
            st = self.repo.deployment_state.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def refresh(self) -> None:
        stamp = self._stat()
        if stamp == self.stamp and (self.router is not None or self.error is not None):
            return
        try:
            router = Router(self.repo)
        except (BadInput, CheckFailed) as exc:
            # Keep answering with the last good router; /health says why the new state is not served.
            self.error, self.stamp = str(exc), stamp
            return
        self.router, self.error, self.stamp = router, None, stamp

    def status(self) -> dict[str, Any]:
        """What this source serves: the checkout's commit, the state's versions, the traffic split, the error."""
        router = self.router
        state = router.state if router is not None else {}
        versions = {role: (state.get(role) or {}).get("version") for role in ("production", "canary", "shadow")}
        traffic: dict[str, float] = {}
        if router is not None:
            traffic = {"production": 1.0 - router.traffic}
            if "canary" in router.models:
                traffic["canary"] = router.traffic
        return {
            "commit": head_commit(self.repo.root),
            "state": versions,
            "traffic": traffic,
            "error": self.error,
        }


class _RequestError(Exception):
    """A request the server answers with 400 and this message."""


def parse_predict_body(raw: bytes) -> tuple[list[dict[str, Any]], bool]:
    """(instances, whether the body was a single instance) of a POST /predict body, or _RequestError."""
    try:
        payload = jsonio.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _RequestError(f'request body: not JSON ({exc}); send {{"features": {{...}}}}') from None
    single = isinstance(payload, dict) and isinstance(payload.get("features"), dict)
    if single:
        items = [payload]
    elif isinstance(payload, dict) and isinstance(payload.get("instances"), list):
        items = payload["instances"]
    else:
        raise _RequestError('request body: expected {"request_id": ..., "features": {...}} or {"instances": [...]}')
    if not items or not all(isinstance(i, dict) and isinstance(i.get("features"), dict) for i in items):
        raise _RequestError("request body: every instance needs a 'features' object")
    return items, single


class _Tracked:
    """Handler methods that keep mlops serve's connection bookkeeping (Connections) and socket timeout."""

    server: Any
    request: socket.socket

    def setup(self) -> None:
        self.timeout = self.server.request_timeout  # type: ignore[attr-defined]  # a stalled client is cut off
        self._busy = False
        super().setup()
        self.server.connections.opened(self.request)  # type: ignore[attr-defined]
        # Headers and body leave in separate writes; with Nagle on, the client's delayed ACK
        # adds ~40 ms to every keep-alive response (measured by benchmarks/serve.py).
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def parse_request(self) -> bool:
        self._start = time.perf_counter()  # for mlops_request_seconds
        self._busy = self.server.connections.busy(self.request)  # type: ignore[attr-defined]
        return super().parse_request()

    def handle_one_request(self) -> None:
        # A read past the timeout ends here too (TimeoutError is caught by http.server: the connection closes).
        # A client gone mid-answer raises (BrokenPipeError): the request still counts as done, or a
        # drain would wait out its whole timeout for it.
        try:
            super().handle_one_request()
        finally:
            if self._busy:
                self._busy = False
                if self.server.connections.done(self.request):  # type: ignore[attr-defined]
                    self.close_connection = True  # draining: answered, then closed

    def finish(self) -> None:
        self.server.connections.closed(self.request)  # type: ignore[attr-defined]
        super().finish()


def _handler_class() -> type:
    """The request handler (http.server is imported here, not when the module is)."""
    from http.server import BaseHTTPRequestHandler

    class Handler(_Tracked, BaseHTTPRequestHandler):  # type: ignore[misc]
        protocol_version = "HTTP/1.1"  # keep-alive: one connection serves many requests

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the prediction log is the record
            return

        def _send(self, code: int, body: Any) -> None:
            data = json.dumps(body, sort_keys=True).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if self.server.connections.draining:  # type: ignore[attr-defined]
                self.send_header("Connection", "close")  # the client reconnects elsewhere, not here
            self.end_headers()
            self.wfile.write(data)
            self.server.metrics.observe(self.path, code, body, getattr(self, "_start", None))  # type: ignore[attr-defined]

        def _router(self) -> tuple[Any, str | None]:
            serving = self.server.serving  # type: ignore[attr-defined]
            with serving.lock:
                serving.refresh()
                return serving.router, serving.error

        def do_GET(self) -> None:
            route = self.path.split("?")[0]
            if route == "/status":
                return self._send(200, server_status(self.server))
            if route == "/metrics":
                return self.server.metrics.respond(self, server_status(self.server))  # type: ignore[attr-defined]
            if route != "/health":
                hint = "use GET /health, /status, /metrics or POST /predict"
                return self._send(404, {"error": f"no route {self.path}; {hint}"})
            router, error = self._router()
            if router is None:
                return self._send(503, {"status": "unavailable", "error": error})
            body = {"status": "ok" if error is None else "degraded", "models": router.describe()}
            if error:
                body["error"] = error
            return self._send(200, body)

        def _body(self) -> bytes | None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self.close_connection = True  # the body's end is unknown: the connection cannot carry more
                self._send(400, {"error": "Content-Length: not a byte count"})
                return None
            if length > MAX_BODY_BYTES:
                self.close_connection = True  # the body is not read, so the connection cannot carry another request
                self._send(413, {"error": f"request body: {length} bytes over the {MAX_BODY_BYTES} limit; send fewer"})
                return None
            return self.rfile.read(length)

        def do_POST(self) -> None:
            route = self.path.split("?")[0]
            if route not in ("/predict", "/feedback"):
                return self._send(404, {"error": f"no route {self.path}; use POST /predict or POST /feedback"})
            raw = self._body()
            if raw is None:
                return None
            answer = answer_feedback if route == "/feedback" else answer_predict
            return self._send(*answer(self.server, self._router, raw))

    return Handler


def durable(write: Any, records: list[dict[str, Any]]) -> str | None:
    """Run a WAL write; None once the rows are durable, else the reason nothing is acknowledged (a 503)."""
    from mlops.wal import BufferFull, WalBroken

    try:
        write(records)
    except BufferFull as exc:
        return f"prediction log buffer full: {exc}; the store is not taking rows, see GET /status"
    except WalBroken as exc:
        return str(exc)
    return None


def parse_feedback_body(raw: bytes) -> list[Any]:
    """The items of a POST /feedback body ({"request_id", "label"} or {"feedback": [...]}), or _RequestError."""
    try:
        payload = jsonio.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _RequestError(f'request body: not JSON ({exc}); send {{"request_id": ..., "label": ...}}') from None
    if isinstance(payload, dict) and isinstance(payload.get("feedback"), list) and payload["feedback"]:
        return payload["feedback"]
    if isinstance(payload, dict) and "request_id" in payload and "label" in payload:
        return [payload]
    raise _RequestError('request body: expected {"request_id": ..., "label": ...} or {"feedback": [...]}')


def answer_predict(server: Any, current: Any, raw: bytes) -> tuple[int, Any]:
    """POST /predict: (status, body); 200 only once the rows are durable in the WAL. `current()` is (router, error)."""
    try:
        items, single = parse_predict_body(raw)
    except _RequestError as exc:
        return 400, {"error": str(exc)}
    ids = [str(i["request_id"]) if i.get("request_id") is not None else uuid.uuid4().hex for i in items]
    router, error = current()
    if router is None:
        return 503, {"error": error}
    try:
        answer, records, errors = router.route([i["features"] for i in items], ids)
    except BadInput as exc:
        return 400, {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a failed production prediction is a 500, not a crash
        return 500, {"error": f"{type(exc).__name__}: {exc}"}
    if errors:
        router._log_errors(errors)
    refused = durable(server.log.log_predictions, records)
    if refused:
        return 503, {"error": refused}
    out = [
        {"request_id": r, "score": float(s), "prediction": int(p), "model_version": v, "role": role}
        for r, s, p, v, role in answer.itertuples(index=False, name=None)
    ]
    return 200, out[0] if single else {"predictions": out}


def answer_feedback(server: Any, current: Any, raw: bytes) -> tuple[int, dict[str, Any]]:
    """POST /feedback: (status, body). Every item is checked before any is written."""
    from mlops.shipping import FeedbackRefused

    log = server.log
    router = current()[0]
    try:
        items = parse_feedback_body(raw)
        records = log.feedback_records(items, lambda version: _classes_of(server.repo, router, version))
    except (_RequestError, FeedbackRefused) as exc:
        return 400, {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - the store could not be asked about an older request id
        return 503, {"error": f"cannot check request ids against the store ({type(exc).__name__}: {exc}); retry"}
    refused = durable(log.log_feedback, records)
    if refused:
        return 503, {"error": refused}
    return 200, {"accepted": len(records)}


def _classes_of(repo: Repo, router: Router | None, version: str) -> list[Any]:
    """The label classes of a model version: from the loaded model, else from its manifest in the registry."""
    for model in router.models.values() if router is not None else []:
        if model.version == version:
            return list(model.manifest.get("label", {}).get("classes", []))
    try:
        manifest = jsonio.loads((registry.find_version(repo, version) / "manifest.json").read_bytes())
    except (BadInput, OSError, json.JSONDecodeError):
        return []
    return list(manifest.get("label", {}).get("classes", []))


def server_status(server: Any) -> dict[str, Any]:
    """GET /status: the serving source's status, and the store backlog under "store"."""
    serving = server.serving
    with serving.lock:
        serving.refresh()
        body = dict(serving.status())
    body["store"] = server.log.status()
    return body


def make_server(
    repo: Repo,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    serving: Any = None,
    log: Any = None,
    timeout: float = SOCKET_TIMEOUT,
) -> Any:
    """A ThreadingHTTPServer answering POST /predict, POST /feedback, GET /health and GET /status.

    `serving` is the source of the router: any object with `.lock`, `.router`, `.error`, `.refresh()`
    and `.status() -> dict`; None serves the repository's deployment state (`_Serving`). `log` is
    the mlops.shipping.ServingLog rows go to; None opens config/store.json's WAL and store. The
    shipper starts here (rows an earlier run left are shipped at once). A connection that sends
    nothing for `timeout` seconds (mid-request or between keep-alive requests) is closed.
    `server_close()` drains (idle connections closed, requests in flight answered, up to `timeout`),
    then stops the shipper, which ships what is left."""
    from http.server import ThreadingHTTPServer

    from threadpoolctl import threadpool_limits

    from mlops.serving_metrics import Metrics

    # Requests are single rows: one BLAS/OpenMP thread each (see mlops.deploy.gates.one_thread), for the process.
    threadpool_limits(limits=1)
    if serving is None:
        serving = _Serving(repo)  # loads the deployed models before the port is taken
    if log is None:
        from mlops import config
        from mlops.shipping import ServingLog

        log = ServingLog.open(repo, config.load(repo))

    class Server(ThreadingHTTPServer):
        def server_close(self) -> None:
            if hasattr(self, "connections"):  # requests in flight finish (and are logged) before the log closes
                self.connections.drain(self.request_timeout)
            super().server_close()
            # A failed bind closes the server before the log is attached (make_server closes the log then).
            if hasattr(self, "log"):
                self.log.close()

    try:
        server = Server((host, port), _handler_class())
    except OSError:
        log.close()
        raise
    server.daemon_threads = True
    server.repo = repo  # type: ignore[attr-defined]
    server.serving = serving  # type: ignore[attr-defined]
    server.log = log  # type: ignore[attr-defined]
    server.metrics = Metrics()  # type: ignore[attr-defined]
    server.request_timeout = timeout  # type: ignore[attr-defined]
    server.connections = Connections()  # type: ignore[attr-defined]
    log.start()
    return server
