"""The router that serves a deployment: production, canary by request-id hash, shadow on the side.

A request goes to the canary when sha256(request_id), read as a fraction of 2**64, is below the
canary's traffic share: deterministic, sticky per request id, and monotone (raising the share keeps
every request id that was already on the canary there). The shadow model scores every request too;
its answer is logged and never returned. Every prediction, shadow included, is appended to the
prediction log with its role and version (mlops.predlog). A model whose file's sha256 differs from
the one the deployment state pins is refused before it is loaded.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops import jsonio, registry
from mlops.errors import BadInput, CheckFailed
from mlops.repo import Repo

THRESHOLD = 0.5  # same as mlops.metrics.THRESHOLD; kept here so the router needs no numpy at import
_SCALE = float(2**64)
MAX_BODY_BYTES = 8 * 1024 * 1024  # a POST body above this is refused with 413 (docs/deployment.md)


def bucket(request_id: str) -> float:
    """Where a request id falls in [0, 1): the first 8 bytes of its sha256 as a fraction."""
    digest = hashlib.sha256(str(request_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


class ModelRefused(CheckFailed):
    """A model file that does not match the sha256 the deployment state pins."""


@dataclass
class Loaded:
    role: str
    version: str
    sha256: str
    pipeline: Any
    manifest: dict[str, Any]

    @property
    def features(self) -> list[str]:
        f = self.manifest.get("features", {})
        return list(f.get("numeric", [])) + list(f.get("categorical", []))


def _number_or_none(value: Any) -> Any:
    """Numbers (booleans, which training read as 0/1, and numeric text from a CSV) pass; nothing else does."""
    if value is None or isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return "not a number"


def load_pinned(repo: Repo, role: str, version: str, sha256: str) -> Loaded:
    """Load a model only if its file hashes to the pinned sha256 (and to its manifest's)."""
    folder = registry.find_version(repo, version)
    path = folder / registry.MODEL_FILE
    if not path.is_file():
        raise ModelRefused(f"{repo.rel(path)}: the {role} model file is missing; restore it from git")
    actual = registry.sha256_file(path)
    if actual != sha256:
        raise ModelRefused(
            f"{repo.rel(path)}: refusing the {role} model: sha256 {actual[:12]}… is not the {sha256[:12]}… "
            f"pinned in {repo.rel(repo.deployment_state)}; restore the file (git checkout) or redeploy"
        )
    try:
        pipeline, manifest = registry.load_model(folder, repo)
    except BadInput as exc:
        raise ModelRefused(f"refusing the {role} model {version}: {exc}") from None
    return Loaded(role, version, sha256, pipeline, manifest)


class Router:
    """Routes requests across the deployment state's models and logs every prediction."""

    def __init__(self, repo: Repo, *, state: dict[str, Any] | None = None, log: bool = True):
        from mlops.deployment_state import require_state

        self.repo = repo
        if state is None:
            state = require_state(repo, "no deployment yet", "deploy a model with `mlops deploy --mode full`")
        self.state = state
        self.log = log
        self._lock = threading.Lock()
        self.models: dict[str, Loaded] = {
            "production": load_pinned(
                repo, "production", state["production"]["version"], state["production"]["model_sha256"]
            ),
        }
        for role in ("canary", "shadow"):
            if state.get(role):
                self.models[role] = load_pinned(repo, role, state[role]["version"], state[role]["sha256"])
        self.traffic = float(state["canary"]["traffic"]) if state.get("canary") else 0.0
        # A request must carry every feature any deployed model reads.
        names: list[str] = []
        for m in self.models.values():
            names += [f for f in m.features if f not in names]
        self.features = names
        self.numeric = {f for m in self.models.values() for f in m.manifest.get("features", {}).get("numeric", [])}

    def role_for(self, request_id: str) -> str:
        """production or canary, by the request id's hash and the canary share."""
        if "canary" in self.models and bucket(request_id) < self.traffic:
            return "canary"
        return "production"

    def _frame(self, rows: Any, where: str) -> Any:
        import pandas as pd

        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame.from_records(list(rows))
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise BadInput(
                where,
                f"missing feature(s) {', '.join(missing[:8])}"
                + (f" (+{len(missing) - 8} more)" if len(missing) > 8 else ""),
                f"send every feature the deployed models read: {', '.join(self.features)}",
            )
        frame = frame.reset_index(drop=True)
        self._refuse_bad_values(frame, where)
        self._refuse_infinities(frame, where)
        return frame

    def _refuse_bad_values(self, frame: Any, where: str) -> None:
        """A list or object is no feature value, and a numeric feature takes numbers (or null).

        Refused as the caller's error (HTTP 400, exit 2), never scored: the model would raise, and
        the error would count against the serving model's error rate.
        """
        import pandas as pd

        for name in self.features:
            column = frame[name]
            if column.dtype != object:
                continue
            bad = column.map(lambda v: isinstance(v, (list, dict, tuple, set))).to_numpy()
            if name in self.numeric:
                numbers = pd.to_numeric(column.map(_number_or_none), errors="coerce")
                bad = bad | (column.notna().to_numpy() & numbers.isna().to_numpy())
            if bad.any():
                kind = "a number (or null)" if name in self.numeric else "a single value"
                raise BadInput(
                    where,
                    f"feature {name!r} is not {kind} in {int(bad.sum())} row(s), first row {int(bad.argmax())}",
                    "send one value per feature: numbers for numeric features, null for a missing value",
                )
            if name in self.numeric:
                frame[name] = numbers.astype(float)

    def _refuse_infinities(self, frame: Any, where: str) -> None:
        """±inf is no feature value: the model would score it, and no prediction log could hold it."""
        import numpy as np

        for name in self.features:
            column = frame[name]
            if column.dtype.kind in "fc":
                bad = np.flatnonzero(np.isinf(column.to_numpy()))
                if len(bad):
                    raise BadInput(
                        where,
                        f"feature {name!r} is infinite in {len(bad)} row(s), first row {int(bad[0])}",
                        "send finite numbers (null for a missing value)",
                    )

    def predict(self, rows: Any, request_ids: list[str] | None = None, *, where: str = "request") -> Any:
        """Answer rows (DataFrame or list of dicts); returns request_id, score, prediction, model_version, role."""
        answer, records, errors = self.route(rows, request_ids, where=where)
        if self.log and records:
            from mlops import predlog

            with self._lock:
                predlog.append_predictions(self.repo, records)
        if errors:
            self._log_errors(errors)
        return answer

    def route(
        self, rows: Any, request_ids: list[str] | None = None, times: list[str] | None = None, *, where: str = "request"
    ) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
        """Score without logging: (answer frame, prediction-log records incl. shadow, serving errors)."""
        import numpy as np
        import pandas as pd

        frame = self._frame(rows, where)
        n = len(frame)
        ids = [uuid.uuid4().hex for _ in range(n)] if request_ids is None else [str(r) for r in request_ids]
        if len(ids) != n:
            raise BadInput(where, f"{len(ids)} request ids for {n} rows", "send one request id per row")
        now = jsonio.format_utc(jsonio.utc_now())
        stamps = times if times is not None else [now] * n
        roles = np.array([self.role_for(i) for i in ids], dtype=object)
        scores = np.zeros(n)
        versions = np.empty(n, dtype=object)
        latency = np.zeros(n)
        fallback = np.zeros(n, dtype=bool)
        errors: list[dict[str, Any]] = []

        def failed(role: str, version: str, idx: Any, exc: Exception) -> None:
            text = f"{type(exc).__name__}: {str(exc)[:200]}"
            errors.extend(
                {"request_id": ids[i], "time": stamps[i], "role": role, "model_version": version, "error": text}
                for i in idx
            )

        for role in ("canary", "production"):
            idx = np.flatnonzero(roles == role)
            if not len(idx):
                continue
            model = self.models[role]
            t0 = time.perf_counter()
            try:
                proba = model.pipeline.predict_proba(frame.iloc[idx][model.features])[:, 1]
            except Exception as exc:
                failed(role, model.version, idx, exc)
                if role == "production":
                    self._log_errors(errors)
                    raise
                # A failing canary must not fail the caller: production answers, the error is logged.
                roles[idx] = "production"
                fallback[idx] = True
                continue
            latency[idx] = (time.perf_counter() - t0) * 1000 / len(idx)
            scores[idx] = proba
            versions[idx] = model.version
        answer = pd.DataFrame(
            {
                "request_id": ids,
                "score": scores,
                "prediction": (scores >= THRESHOLD).astype(int),
                "model_version": versions,
                "role": roles,
            }
        )
        shadow, shadow_ms = None, 0.0
        if "shadow" in self.models:
            model = self.models["shadow"]
            t0 = time.perf_counter()
            try:
                shadow = model.pipeline.predict_proba(frame[model.features])[:, 1]
                shadow_ms = (time.perf_counter() - t0) * 1000 / max(n, 1)
            except Exception as exc:  # noqa: BLE001 - the shadow never affects an answer
                failed("shadow", model.version, range(n), exc)
        shadowed = None if shadow is None else (self.models["shadow"].version, shadow, shadow_ms)
        return answer, log_records(frame, self.features, answer, stamps, latency, fallback, shadowed), errors

    def _log_errors(self, errors: list[dict[str, Any]]) -> None:
        if not self.log:
            return
        from mlops import predlog

        day = errors[0]["time"][:10].replace("-", "")
        path = self.repo.production_logs / f"serving-errors-{day}.jsonl"
        # The same locked append as the prediction log, so a torn line here is cut off too.
        with self._lock:
            predlog.append_lines(path, [jsonio.dumps_line(e) for e in errors])

    def describe(self) -> dict[str, Any]:
        return {role: {"version": m.version, "sha256": m.sha256} for role, m in self.models.items()} | {
            "canary_traffic": self.traffic
        }


def log_records(
    frame: Any, features: list[str], answer: Any, stamps: list[str], latency: Any, fallback: Any, shadow: Any
) -> list[dict[str, Any]]:
    """Prediction-log records: the served rows in order, then the shadow's (`shadow`: None, or its
    (version, scores, milliseconds per row))."""
    n = len(frame)
    ids = answer["request_id"].tolist()
    feats = frame[features].astype(object).where(frame[features].notna(), None).to_dict("records")
    records = []
    # batch_size: latency is the model call's time per row, comparable only between equal batch sizes.
    for i, (rid, score, pred, version, role) in enumerate(answer.itertuples(index=False, name=None)):
        rec = {
            "request_id": rid, "time": stamps[i], "model_version": version, "role": role,
            "features": feats[i], "score": float(score), "prediction": int(pred),
            "latency_ms": round(float(latency[i]), 4), "batch_size": n,
        }  # fmt: skip
        if fallback[i]:
            rec["fallback_from"] = "canary"
        records.append(rec)
    if shadow is not None:
        version, scores, shadow_ms = shadow
        for i, rid in enumerate(ids):
            records.append({
                "request_id": rid, "time": stamps[i], "model_version": version, "role": "shadow",
                "features": feats[i], "score": float(scores[i]), "prediction": int(scores[i] >= THRESHOLD),
                "latency_ms": round(shadow_ms, 4), "batch_size": n,
            })  # fmt: skip
    return records


# ------------------------------------------------------------------------------------- batch


def score_rows(repo: Repo, df: Any, request_ids: list[str], times: list[str]) -> list[dict[str, Any]]:
    """mlops.traffic's boundary: route rows as the deployment says; return log records (served rows in
    order, then shadow rows) for the caller to append. Serving errors are logged here."""
    router = Router(repo, log=False)
    _answer, records, errors = router.route(df, request_ids, times, where="simulated traffic")
    if errors:
        router.log = True
        router._log_errors(errors)
    return records


def check_output(path: Path) -> None:
    """Refuse an output path that cannot be written before anything (the prediction log included) is."""
    where = str(path)
    if path.is_dir():
        raise BadInput(
            where, "is a directory, not an output file", f"name a file inside it, e.g. {path / 'scores.csv'}"
        )
    if path.suffix not in (".csv", ".parquet"):
        raise BadInput(where, "unknown output format", "name the output *.csv or *.parquet")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise BadInput(where, f"{parent} is a file, not a folder", "name an output inside a folder")


def predict_file(repo: Repo, input_path: Path, output_path: Path) -> dict[str, Any]:
    """`mlops predict`: score a CSV or Parquet file through the router; request ids from a request_id column."""
    import pandas as pd

    where = str(input_path)
    if input_path.suffix == ".parquet":
        try:
            frame = pd.read_parquet(input_path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
            raise BadInput(where, f"cannot be read as Parquet ({exc})", "pass a CSV or Parquet file") from None
    else:
        from mlops.tabular import read_csv_checked

        frame = read_csv_checked(input_path, where, text_columns=("request_id",)).to_pandas()
    check_output(output_path)
    router = Router(repo)
    ids = None
    if "request_id" in frame.columns:
        if frame["request_id"].isna().any():
            row = int(frame["request_id"].isna().to_numpy().argmax()) + 1
            raise BadInput(f"{where}: data row {row}", "empty request_id", "give every row a request id")
        ids = frame["request_id"].astype(str).tolist()
    answer = router.predict(frame, ids, where=where)
    if output_path.suffix == ".parquet":
        output_path.parent.mkdir(parents=True, exist_ok=True)
        jsonio.atomic_write_bytes(output_path, answer.to_parquet(index=False))
    else:
        jsonio.atomic_write_bytes(output_path, answer.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    counts = answer["role"].value_counts().to_dict()
    return {"rows": len(answer), "roles": {k: int(v) for k, v in counts.items()}, "output": str(output_path)}


# -------------------------------------------------------------------------------------- HTTP


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


def _handler_class() -> type:
    """The request handler (http.server is imported here, not when the module is)."""
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: one connection serves many requests

        def setup(self) -> None:
            super().setup()
            # Headers and body leave in separate writes; with Nagle on, the client's delayed ACK
            # adds ~40 ms to every keep-alive response (measured by benchmarks/serve.py).
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def parse_request(self) -> bool:
            self._start = time.perf_counter()  # for mlops_request_seconds
            return super().parse_request()

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the prediction log is the record
            return

        def _send(self, code: int, body: Any) -> None:
            data = json.dumps(body, sort_keys=True).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
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


def make_server(repo: Repo, host: str = "127.0.0.1", port: int = 8000, *, serving: Any = None, log: Any = None) -> Any:
    """A ThreadingHTTPServer answering POST /predict, POST /feedback, GET /health and GET /status.

    `serving` is the source of the router: any object with `.lock`, `.router`, `.error`, `.refresh()`
    and `.status() -> dict`; None serves the repository's deployment state (`_Serving`). `log` is
    the mlops.shipping.ServingLog rows go to; None opens config/store.json's WAL and store. The
    shipper starts here (rows an earlier run left are shipped at once); `server_close()` stops it
    and ships what is left."""
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
    log.start()
    return server
