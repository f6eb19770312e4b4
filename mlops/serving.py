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
import math
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
FAST_ROWS = 32  # requests of up to this many rows skip the general frame building (fast_frame)


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
    compiled: Any = None  # mlops.fastpath.compile_pipeline(pipeline): scores a few JSON rows without pandas

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


def one_job(pipeline: Any) -> Any:
    """Set every n_jobs of a fitted pipeline to 1, in place; returns it.

    A forest with n_jobs=-1 hands each prediction to a joblib thread pool: for a request's few rows
    the hand-off costs more than the trees (measured: random forest 21.4 -> 8.9 ms per row, and 36 -> 22 ms
    for 6,000 rows on 2 cores), the trees' sum comes out in whichever order the threads finish (the
    last bit of a score differs between two calls), and work on other threads escapes the gate's CPU
    clock. The server runs requests side by side instead.
    """
    params = pipeline.get_params(deep=True) if hasattr(pipeline, "get_params") else {}
    jobs = {name: 1 for name in params if name == "n_jobs" or name.endswith("__n_jobs")}
    if jobs:
        pipeline.set_params(**jobs)
    return pipeline


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
    from mlops.fastpath import compile_pipeline

    return Loaded(role, version, sha256, one_job(pipeline), manifest, compile_pipeline(pipeline))


def fast_frame(rows: list[Any], features: list[str], numeric: set[str]) -> Any:
    """The frame of a few JSON rows built column by column, checked in plain Python; None when any value
    needs the general path (its checks, its error messages, its dtype inference).

    The general path's from_records, per-column maps and to_numeric cost more than the model's own
    preparation for a single row. Columns come out as it makes them for these values: numeric
    features float64 (null as NaN), categorical ones object (text or None), so the scores are the
    same bits (tests/test_fastpath.py, every bundled model type). Used for requests of up to FAST_ROWS rows.
    """
    import numpy as np
    import pandas as pd

    columns: dict[str, Any] = {}
    for name in features:
        is_number = name in numeric
        values = []
        for row in rows:
            if not isinstance(row, dict) or name not in row:
                return None
            value = row[name]
            if is_number:
                if value is None:
                    value = math.nan
                elif type(value) is int or type(value) is float:
                    value = float(value)
                    if math.isinf(value):
                        return None
                else:
                    return None
            elif value is not None and type(value) is not str:
                return None
            values.append(value)
        columns[name] = np.array(values, dtype=float if is_number else object)
    return pd.DataFrame(columns)


def refuse_bad_values(frame: Any, features: list[str], numeric: set[str], where: str) -> None:
    """A list or object is no feature value, and a numeric feature takes numbers (or null).

    Refused as the caller's error (HTTP 400, exit 2), never scored: the model would raise, and
    the error would count against the serving model's error rate.
    """
    import pandas as pd

    for name in features:
        column = frame[name]
        if column.dtype != object:
            continue
        bad = column.map(lambda v: isinstance(v, (list, dict, tuple, set))).to_numpy()
        if name in numeric:
            numbers = pd.to_numeric(column.map(_number_or_none), errors="coerce")
            bad = bad | (column.notna().to_numpy() & numbers.isna().to_numpy())
        if bad.any():
            kind = "a number (or null)" if name in numeric else "a single value"
            raise BadInput(
                where,
                f"feature {name!r} is not {kind} in {int(bad.sum())} row(s), first row {int(bad.argmax())}",
                "send one value per feature: numbers for numeric features, null for a missing value",
            )
        if name in numeric:
            frame[name] = numbers.astype(float)


def refuse_infinities(frame: Any, features: list[str], where: str) -> None:
    """±inf is no feature value: the model would score it, and no prediction log could hold it."""
    import numpy as np

    for name in features:
        column = frame[name]
        if column.dtype.kind in "fc":
            bad = np.flatnonzero(np.isinf(column.to_numpy()))
            if len(bad):
                raise BadInput(
                    where,
                    f"feature {name!r} is infinite in {len(bad)} row(s), first row {int(bad[0])}",
                    "send finite numbers (null for a missing value)",
                )


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

    def _frame(self, rows: Any, where: str) -> tuple[Any, bool]:
        """(the rows' frame, whether they took the fast path: plain JSON values, up to FAST_ROWS)."""
        import pandas as pd

        if isinstance(rows, list) and len(rows) <= FAST_ROWS:
            fast = fast_frame(rows, self.features, self.numeric)
            if fast is not None:
                return fast, True
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
        refuse_bad_values(frame, self.features, self.numeric, where)
        refuse_infinities(frame, self.features, where)
        return frame, False

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

        frame, fast = self._frame(rows, where)
        n = len(frame)

        def predict(model: Loaded, idx: Any) -> Any:
            if fast and model.compiled is not None:  # the same bits as the pipeline (mlops.fastpath)
                return model.compiled([rows[i] for i in idx])[:, 1]
            part = frame if len(idx) == n else frame.iloc[idx]
            part = part if model.features == list(part.columns) else part[model.features]
            return model.pipeline.predict_proba(part)[:, 1]

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
                proba = predict(model, idx)
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
                shadow = predict(model, np.arange(n))
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


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def feature_dicts(frame: Any, features: list[str]) -> list[dict[str, Any]]:
    """Each row's features as plain Python values, None for a missing one (a tenth of the time of
    frame.astype(object).where(notna, None).to_dict("records") for one row: 0.1 against 1.4 ms)."""
    columns = [[None if _missing(v) else v for v in frame[name].tolist()] for name in features]
    return [dict(zip(features, values, strict=True)) for values in zip(*columns, strict=True)]


def log_records(
    frame: Any, features: list[str], answer: Any, stamps: list[str], latency: Any, fallback: Any, shadow: Any
) -> list[dict[str, Any]]:
    """Prediction-log records: the served rows in order, then the shadow's (`shadow`: None, or its
    (version, scores, milliseconds per row))."""
    n = len(frame)
    ids = answer["request_id"].tolist()
    feats = feature_dicts(frame, features)
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
