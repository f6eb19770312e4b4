"""`mlops feedback ingest FILE`: ground-truth labels from a CSV or Parquet file into the log store.

The file has the columns request_id and label, and optionally time (ISO-8601 UTC; empty or absent
means the time of the ingest). Every row is checked before anything is written; the first bad row
is one line naming the file and the row (exit 2), and the store is left as it was:
- request_id: text, not empty, once per file;
- the request id is a prediction logged in the store between feedback_lookback_days (config/store.json)
  before the earliest feedback time and the latest one;
- the feedback time is not before that prediction's time (a label follows its prediction);
- label: 0/1 or one of the classes of the model that made the prediction (its manifest), as
  monitoring counts labels; a model whose manifest is gone is judged by the served model's classes.
The labels are stored as read: integers as int64, text as string (mlops.logstore.schema).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from mlops import jsonio
from mlops.errors import BadInput
from mlops.logstore.store import Part, open_store

COLUMNS = ("request_id", "label", "time")
FORMAT_FIX = "give a CSV or Parquet file with the columns request_id, label and (optionally) time"


def read_rows(path: Path, shown: str) -> list[dict[str, Any]]:
    """The file's rows as dicts of request_id, label and time (None when absent)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if path.suffix.lower() == ".parquet":
            table = pq.read_table(path)
        else:
            text_columns = {"request_id": pa.string(), "time": pa.string()}
            table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=text_columns))
    except FileNotFoundError:
        raise BadInput(shown, "does not exist", "name the feedback file") from None
    except IsADirectoryError:
        raise BadInput(shown, "is a directory", "name the feedback file itself") from None
    except PermissionError as exc:
        raise BadInput.unreadable(shown, exc, "fix the file's permissions") from None
    except (pa.ArrowException, OSError) as exc:
        reason = " ".join(str(exc).split())[:160]
        raise BadInput(shown, f"not a readable {'Parquet' if path.suffix == '.parquet' else 'CSV'} file ({reason})",
                       FORMAT_FIX) from None  # fmt: skip
    missing = [c for c in COLUMNS[:2] if c not in table.column_names]
    extra = [c for c in table.column_names if c not in COLUMNS]
    if missing or extra:
        problem = f"has no {missing[0]!r} column" if missing else f"has the unknown column(s) {', '.join(extra)}"
        raise BadInput(shown, problem, FORMAT_FIX)
    if table.num_rows == 0:
        raise BadInput(shown, "has no rows", "give at least one request_id,label row")
    rows = table.to_pylist()
    for row in rows:
        row.setdefault("time", None)
    return rows


def _parse_rows(rows: list[dict[str, Any]], shown: str, now: dt.datetime) -> list[dict[str, Any]]:
    """Records {request_id, label, time} with the request id, label presence and time checked."""
    first_row: dict[str, int] = {}
    records = []
    for n, row in enumerate(rows, 1):
        where, rid, label = f"{shown}: row {n}", row["request_id"], row["label"]
        if not isinstance(rid, str) or not rid.strip():
            raise BadInput(where, "request_id is empty", "give the request id the server answered with")
        if rid in first_row:
            raise BadInput(where, f"request id {rid!r} is also in row {first_row[rid]}",
                           "give one label per request in a file")  # fmt: skip
        first_row[rid] = n
        if label is None or (isinstance(label, float) and label != label):
            raise BadInput(where, "label is empty", "give the label of every row")
        text = row["time"]
        when = now if text is None or not str(text).strip() else jsonio.parse_utc(str(text), f"{where}: time")
        records.append({"request_id": rid, "label": label, "time": jsonio.format_utc(when)})
    return records


def _is_code(label: Any) -> bool:
    return isinstance(label, (bool, int, float)) and label in (0, 1)


def _served_classes(cfg: Any) -> set[str] | None:
    """The classes of the model models/deployment.json serves in production (models/current before the
    first deployment); None when there is no model."""
    from mlops import deployment_state, registry

    state = deployment_state.read_state(cfg.repo)
    version = ((state or {}).get("production") or {}).get("version")
    manifest = _manifest(cfg.repo, version) if version else registry.current_manifest(cfg.repo)
    return _classes(manifest) if manifest else None


def _manifest(repo: Any, version: str) -> dict[str, Any] | None:
    from mlops import registry

    try:
        return jsonio.read_json(registry.find_version(repo, version) / registry.MANIFEST, "model manifest")
    except BadInput:
        return None


def _classes(manifest: dict[str, Any]) -> set[str]:
    label = manifest.get("label") or {}
    return {str(c) for c in label.get("classes", [])} | ({str(label["positive"])} if "positive" in label else set())


def _check_label(cfg: Any, cache: dict, served: set[str] | None, version: str, label: Any, where: str) -> Any:
    """The label as stored: a class value or a 0/1 code (the text "0"/"1" of a CSV column that also holds
    class names becomes the code, unless it is itself a class name); anything else is refused."""
    if _is_code(label):
        return label
    if version not in cache:
        manifest = _manifest(cfg.repo, version)
        cache[version] = _classes(manifest) if manifest else served
    classes = cache[version]
    if classes is None:
        positive = cfg.dataset.positive_label
        classes = {str(positive)} if positive is not None else set()
    if isinstance(label, str) and label not in classes and label.strip() in ("0", "1"):
        return int(label)
    if isinstance(label, bool) or str(label) not in classes:
        known = ", ".join(sorted(classes | {"0", "1"}))
        raise BadInput(where, f"label {str(label)[:40]!r} is not one of model {version}'s classes ({known})",
                       "give 0/1 or one of the class values the model was trained on")  # fmt: skip
    return label


def ingest(cfg: Any, path: Path, shown: str) -> dict[str, Any]:
    """Check every row of the file, then write its feedback parts. Returns what was written."""
    rows = read_rows(Path(path), shown)
    records = _parse_rows(rows, shown, jsonio.utc_now())
    store = open_store(cfg)
    times = [jsonio.parse_utc(r["time"]) for r in records]
    since = min(times) - dt.timedelta(days=cfg.store.feedback_lookback_days)
    until = max(times) + dt.timedelta(seconds=1)
    predictions = {}
    for rec in store.read("predictions", since, until):
        if rec["role"] != "shadow":  # a shadow's row repeats a served request; the served model's classes count
            predictions[rec["request_id"]] = rec
    cache: dict[str, set[str] | None] = {}
    served = _served_classes(cfg)
    for n, rec in enumerate(records, 1):
        where = f"{shown}: row {n}"
        pred = predictions.get(rec["request_id"])
        if pred is None:
            raise BadInput(
                where,
                f"request id {rec['request_id']!r} is not a prediction logged in the store {store.uri} between "
                f"{jsonio.format_utc(since)} and {rec['time']} (the feedback's time: a label follows its prediction)",
                "give feedback only for served requests, or raise feedback_lookback_days in config/store.json",
            )
        if rec["time"] < pred["time"]:
            raise BadInput(where, f"feedback time {rec['time']} is before the prediction's {pred['time']}",
                           "give the time the label became known, or leave the time out")  # fmt: skip
        rec["label"] = _check_label(cfg, cache, served, pred["model_version"], rec["label"], where)
    parts: list[Part] = store.write("feedback", records)
    return {"rows": len(records), "parts": [p.path for p in parts], "store": store.uri}
