"""The Parquet schema of the store's parts, and records <-> Arrow tables.

predictions: request_id, time, model_version, role (string); features (struct); score (float64);
  prediction (int64); then the extras the router logs (latency_ms float64, batch_size int64,
  fallback_from string) and any other top-level key, typed from its values.
  A feature the model's manifest lists is float64 (numeric) or string (categorical); a feature no
  manifest names is typed from the values (numbers float64, booleans bool, text string). A value
  that does not fit its type is never coerced: that column of that part takes its values' type
  (mixed kinds of values become their text), so the reader sees what the router logged and
  monitoring refuses a non-number in a numeric feature as it does for the JSONL log.
feedback: request_id, label, time. `label` is int64 when every label of the part is an integer
  0/1 code or integer class (booleans and whole floats count), string when every label is text;
  a batch with both is written as two parts, so a label reads back as it was written.
`time` is text YYYY-MM-DDTHH:MM:SSZ (normalised to UTC on write), compared as text.
"""

from __future__ import annotations

from typing import Any

from mlops import jsonio, predlog

CORE = {
    "predictions": ("request_id", "time", "model_version", "role", "features", "score", "prediction"),
    "feedback": ("request_id", "label", "time"),
}
EXTRAS = {"latency_ms": "float64", "batch_size": "int64", "fallback_from": "string"}
NUMERIC, CATEGORICAL = "numeric", "categorical"


def check(kind: str, rec: Any) -> str | None:
    """predlog's check of one record (None when it is fine)."""
    return predlog.check_prediction(rec) if kind == "predictions" else predlog.check_feedback(rec)


def feature_types(manifest: dict[str, Any] | None) -> dict[str, str]:
    """{feature: "numeric" | "categorical"} from a model manifest's `features`."""
    features = (manifest or {}).get("features") or {}
    out = {name: CATEGORICAL for name in features.get("categorical", [])}
    out.update({name: NUMERIC for name in features.get("numeric", [])})
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _infer(values: list[Any]) -> Any:
    import pyarrow as pa

    present = [v for v in values if v is not None]
    if present and all(_is_number(v) for v in present):
        return pa.float64()
    if present and all(isinstance(v, bool) for v in present):
        return pa.bool_()
    return pa.string()


def _column(values: list[Any], want: str | None) -> tuple[Any, list[Any]]:
    """(Arrow type, values converted to it) for one column; `want` is the manifest's kind, if any."""
    import pyarrow as pa

    present = [v for v in values if v is not None]
    if want == NUMERIC and all(_is_number(v) for v in present):
        typ = pa.float64()
    elif want == CATEGORICAL and all(isinstance(v, str) for v in present):
        typ = pa.string()
    else:
        typ = _infer(values)
    if typ == pa.float64():
        return typ, [None if v is None else float(v) for v in values]
    if typ == pa.string():
        return typ, [None if v is None else v if isinstance(v, str) else str(v) for v in values]
    return typ, values


def _int_label(v: Any) -> bool:
    return isinstance(v, (bool, int)) or (isinstance(v, float) and v.is_integer())


def label_groups(records: list[dict]) -> list[list[dict]]:
    """Feedback records split so each part holds integer labels only or text labels only."""
    ints = [r for r in records if _int_label(r["label"])]
    texts = [r for r in records if not _int_label(r["label"])]
    return [g for g in (ints, texts) if g]


def to_table(kind: str, records: list[dict], types: dict[str, str]) -> Any:
    """An Arrow table of checked records of one kind (`types`: the manifests' feature kinds)."""
    import pyarrow as pa

    times = [jsonio.format_utc(jsonio.parse_utc(str(r["time"]))) for r in records]
    if kind == "feedback":
        ints = _int_label(records[0]["label"])
        labels = [int(r["label"]) if ints else str(r["label"]) for r in records]
        return pa.table({
            "request_id": pa.array([str(r["request_id"]) for r in records], pa.string()),
            "label": pa.array(labels, pa.int64() if ints else pa.string()),
            "time": pa.array(times, pa.string()),
        })  # fmt: skip
    names = list(dict.fromkeys(name for r in records for name in r["features"]))
    fields, children = [], []
    for name in names:
        typ, values = _column([r["features"].get(name) for r in records], types.get(name))
        fields.append(pa.field(name, typ))
        children.append(pa.array(values, typ))
    mask = pa.array([False] * len(records))
    features = pa.StructArray.from_arrays(children, fields=fields, mask=mask) if fields else _empty(len(records))
    columns = {
        "request_id": pa.array([str(r["request_id"]) for r in records], pa.string()),
        "time": pa.array(times, pa.string()),
        "model_version": pa.array([str(r["model_version"]) for r in records], pa.string()),
        "role": pa.array([r["role"] for r in records], pa.string()),
        "features": features,
        "score": pa.array([float(r["score"]) for r in records], pa.float64()),
        "prediction": pa.array([int(r["prediction"]) for r in records], pa.int64()),
    }
    extras = list(dict.fromkeys(k for r in records for k in r if k not in CORE["predictions"]))
    for key in extras:
        values = [r.get(key) for r in records]
        known = EXTRAS.get(key)
        typ = getattr(pa, known)() if known and _fits(values, known) else _column(values, None)[0]
        columns[key] = pa.array(_column(values, None)[1] if typ == pa.string() else values, typ)
    return pa.table(columns)


def _fits(values: list[Any], known: str) -> bool:
    present = [v for v in values if v is not None]
    if known == "string":
        return all(isinstance(v, str) for v in present)
    if known == "int64":
        return all(isinstance(v, int) and not isinstance(v, bool) for v in present)
    return all(_is_number(v) for v in present)


def _empty(n: int) -> Any:
    """A features column for records with no features (Parquet has no empty struct): all null, one dummy field."""
    import pyarrow as pa

    return pa.array([None] * n, pa.struct([pa.field("_none", pa.null())]))


def problem(kind: str, table: Any) -> str | None:
    """Why an Arrow table is not a part of `kind` (missing or mistyped columns), or None."""
    import pyarrow as pa

    want = {"request_id": pa.types.is_string, "time": pa.types.is_string}
    if kind == "feedback":
        want["label"] = lambda t: pa.types.is_string(t) or pa.types.is_integer(t)
    else:
        want.update(model_version=pa.types.is_string, role=pa.types.is_string, features=pa.types.is_struct,
                    score=pa.types.is_floating, prediction=pa.types.is_integer)  # fmt: skip
    for name, ok in want.items():
        if name not in table.column_names:
            return f"has no {name!r} column"
        if not ok(table.schema.field(name).type):
            return f"column {name!r} has type {table.schema.field(name).type}"
    return None


def to_records(kind: str, table: Any) -> list[dict]:
    """Records in predlog's shapes: extras that are null in a row are left out of it."""
    rows = table.to_pylist()
    if kind == "feedback":
        return [{k: r[k] for k in CORE["feedback"]} for r in rows]
    core = CORE["predictions"]
    out = []
    for r in rows:
        rec = {k: r[k] for k in core}
        rec["features"] = {k: v for k, v in (r["features"] or {}).items() if k != "_none"}
        rec.update({k: v for k, v in r.items() if k not in core and v is not None})
        out.append(rec)
    return out
