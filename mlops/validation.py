"""Dataset validation: freshness, size, class balance, missing values, schema contract,
duplicates, label leaks, distribution shift and PII, on one pyarrow Table.

`validate()` computes and writes nothing; `write_reports()` records the outcome (JSON +
Markdown under metadata/reports/validation/<dataset>/, the snapshot profile of the last
validated data, an audit event); the CLI (mlops/commands/data_cmd.py) adds alerts, the step
summary and $GITHUB_OUTPUT; `validate_for_training()` is what `mlops train` calls.

Every check works column-at-a-time with pyarrow.compute; the only row-wise work (duplicate
rows) hashes columns with numpy and confirms the few colliding rows exactly. See
docs/validation.md for the rules.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops import gha, jsonio
from mlops.config import Config, resolve
from mlops.errors import BadInput

CHECKS = (
    "freshness",
    "size",
    "class_balance",
    "missing_values",
    "schema_contract",
    "duplicates",
    "label_leak",
    "distribution_shift",
    "pii",
)
PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
MAX_ROWS_SHOWN = 5
LEAK_SAMPLE_ROWS = 20_000
CONTRACT_FORMAT = 1
SNAPSHOT_FORMAT = 1
SNAPSHOT_NAME = "snapshot-profile.json"
OPEN_ALERTS_NAME = "open-alerts.json"
# A coarser grid than the monitoring reference profile: the snapshot is committed after every
# validation, and a shift check against a 201-point sketch is well inside the 0.1 threshold.
SNAPSHOT_LEVELS = [k / 200 for k in range(201)]


# ------------------------------------------------------------------------------------ results


@dataclass
class CheckResult:
    name: str
    status: str  # pass | fail | warn | skip
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "summary": self.summary, "details": self.details}


@dataclass
class ValidationResult:
    dataset: str
    where: str
    sha256: str
    source: str
    rows: int
    columns: int
    validated_at: str
    checks: list[CheckResult]
    seconds: float = 0.0
    provenance: dict[str, Any] = field(default_factory=dict)
    report_path: Path | None = None
    markdown_path: Path | None = None
    snapshot: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    @property
    def failures(self) -> list[str]:
        return [f"{c.name}: {c.summary}" for c in self.checks if c.status == FAIL]

    @property
    def warnings(self) -> list[str]:
        return [f"{c.name}: {c.summary}" for c in self.checks if c.status == WARN]

    @property
    def stale(self) -> bool:
        return any(c.name == "freshness" and c.details.get("stale") for c in self.checks)

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "path": self.where,
            "sha256": self.sha256,
            "source": self.source,
            "provenance": self.provenance,
            "rows": self.rows,
            "columns": self.columns,
            "validated_at": self.validated_at,
            "seconds": round(self.seconds, 3),
            "passed": self.passed,
            "stale": self.stale,
            "failures": self.failures,
            "warnings": self.warnings,
            "checks": [c.as_dict() for c in self.checks],
        }


# ----------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    """config/validation.json with the schema's defaults and the seed's thresholds applied."""

    enabled: dict[str, bool]
    max_age_days: int
    timestamp_column: str | None
    when_unknown: str
    minimum_rows: int
    minority_share_min: float
    missing_max_share: float
    missing_per_column: dict[str, float]
    contract_path: str
    contract_when_missing: str
    max_categories: int
    duplicates_max_share: float
    leak_ignore: tuple[str, ...]
    shift_action: str
    shift_distance: float
    shift_max_share: float
    sample_rows: int
    pii_action: str
    pii_kinds: tuple[str, ...]
    pii_ignore: tuple[str, ...]
    alerts: bool

    @classmethod
    def from_config(cls, cfg: Config) -> Settings:
        from mlops.pii import KINDS

        raw = cfg.section("validation")

        def sec(name: str) -> dict[str, Any]:
            return raw.get(name, {})

        return cls(
            enabled={name: bool(sec(name).get("enabled", True)) for name in CHECKS},
            max_age_days=int(sec("freshness").get("max_age_days", cfg.schedule.refresh_interval_days)),
            timestamp_column=sec("freshness").get("timestamp_column", cfg.dataset.timestamp_column),
            when_unknown=sec("freshness").get("when_unknown", "warn"),
            minimum_rows=int(sec("size").get("minimum_rows", cfg.schedule.minimum_samples)),
            minority_share_min=float(sec("class_balance").get("minority_share_min", 0.05)),
            missing_max_share=float(sec("missing_values").get("max_share", 0.2)),
            missing_per_column=dict(sec("missing_values").get("per_column", {})),
            contract_path=sec("schema_contract").get("path", "datasets/{name}.schema.json"),
            contract_when_missing=sec("schema_contract").get("when_missing", "warn"),
            max_categories=int(sec("schema_contract").get("max_categories", 50)),
            duplicates_max_share=float(sec("duplicates").get("max_share", 0.01)),
            leak_ignore=tuple(sec("label_leak").get("ignore_columns", ())),
            shift_action=sec("distribution_shift").get("action", "warn"),
            shift_distance=float(sec("distribution_shift").get("distance_threshold", 0.1)),
            shift_max_share=float(
                sec("distribution_shift").get("max_shifted_share", cfg.schedule.thresholds.drift_alert_threshold)
            ),
            sample_rows=int(sec("distribution_shift").get("sample_rows", 50_000)),
            pii_action=sec("pii").get("action", "block"),
            pii_kinds=tuple(sec("pii").get("kinds", KINDS)),
            pii_ignore=tuple(sec("pii").get("ignore_columns", ())),
            alerts=bool(raw.get("alerts", {}).get("enabled", True)),
        )


def contract_path(cfg: Config, settings: Settings | None = None) -> Path:
    settings = settings or Settings.from_config(cfg)
    return resolve(cfg.repo, settings.contract_path.replace("{name}", cfg.dataset.name))


def reports_dir(cfg: Config) -> Path:
    return cfg.repo.reports / "validation" / cfg.dataset.name


# ------------------------------------------------------------------------------------ helpers


def _take_sorted(table: Any, indices: Any) -> Any:
    """table.take(indices) for sorted row numbers, record batch by record batch: Table.take
    concatenates each column's chunks first (a full copy per column); this copies only the rows
    taken, with one take per batch rather than per column and chunk."""
    import numpy as np
    import pyarrow as pa

    indices = np.asarray(indices, dtype=np.int64)
    batches = table.to_batches()
    if len(batches) <= 1:
        return table.take(pa.array(indices))
    bounds = np.cumsum([0] + [b.num_rows for b in batches])
    cuts = np.searchsorted(indices, bounds)
    pieces = [
        batch.take(pa.array(indices[cuts[i] : cuts[i + 1]] - bounds[i]))
        for i, batch in enumerate(batches)
        if cuts[i + 1] > cuts[i]
    ]
    return pa.Table.from_batches(pieces, schema=table.schema)


def _rows(mask: Any) -> list[int]:
    """The first few 1-based data row numbers where a boolean mask is true."""
    import pyarrow.compute as pc

    return (pc.indices_nonzero(mask).to_numpy()[:MAX_ROWS_SHOWN] + 1).tolist()


def _integer_span(col: Any, limit: int) -> tuple[int, int] | None:
    """(min, max) of an integer column whose values span at most `limit` + 1 integers (None
    otherwise, and for other types or a column without values): every value lies in that span."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_integer(col.type):
        return None
    mm = pc.min_max(col)
    lo, hi = mm["min"].as_py(), mm["max"].as_py()
    if lo is None or hi - lo > limit:
        return None
    return lo, hi


def _distinct_count(col: Any) -> int:
    """len(pc.unique(col)); for an integer column without nulls whose min and max are at most 1
    apart, from pc.min_max alone (both occur and nothing lies between them)."""
    import pyarrow.compute as pc

    span = _integer_span(col, 1) if col.null_count == 0 else None
    if span is not None:
        return span[1] - span[0] + 1
    return len(pc.unique(col))


class ColumnMemo:
    """pc.unique of a string column, computed once per validation for the checks that need it
    (schema contract categories, PII), on whichever thread asks first; the other waits for it."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._cells: dict[str, list[Any]] = {}

    def unique(self, name: str, col: Any) -> Any:
        import threading

        import pyarrow.compute as pc

        with self._lock:
            cell = self._cells.setdefault(name, [threading.Lock(), None])
        with cell[0]:
            if cell[1] is None:
                cell[1] = pc.unique(col)
            return cell[1]


def _unique(memo: ColumnMemo | None, name: str, col: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    if memo is not None and (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return memo.unique(name, col)
    return pc.unique(col)


def type_name(data_type: Any) -> str:
    """The contract's small type vocabulary for an Arrow type."""
    import pyarrow as pa

    if pa.types.is_dictionary(data_type):
        data_type = data_type.value_type
    if pa.types.is_boolean(data_type):
        return "boolean"
    if pa.types.is_integer(data_type):
        return "integer"
    if pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return "float"
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return "string"
    if pa.types.is_timestamp(data_type):
        return "timestamp"
    if pa.types.is_date(data_type):
        return "date"
    if pa.types.is_null(data_type):
        return "null"
    return str(data_type)


def _compatible(expected: str, found: str) -> bool:
    # An all-empty column reads as null (the missing-values check reports it); integers widen to float.
    return found == expected or found == "null" or (expected == "float" and found == "integer")


def _py(value: Any) -> Any:
    return value.as_py() if hasattr(value, "as_py") else value


def _features(cfg: Config, table: Any) -> list[str]:
    ds = cfg.dataset
    excluded = {ds.label, *ds.drop_columns, *((ds.timestamp_column,) if ds.timestamp_column else ())}
    return [c for c in table.column_names if c not in excluded]


# ----------------------------------------------------------------------------------- checks


def check_freshness(cfg: Config, s: Settings, dataset: Any, table: Any) -> CheckResult:
    """Age from the source's metadata, else the recorded fetch time, else the timestamp column's maximum."""
    import pyarrow as pa
    import pyarrow.compute as pc

    now = jsonio.utc_now()
    when, basis = None, None
    if getattr(dataset, "updated_at", None):
        when = jsonio.parse_utc(str(dataset.updated_at), "source metadata updated_at")
        basis = f"source metadata ({dataset.source} last updated)"
    elif getattr(dataset, "fetched_at", None):
        when = jsonio.parse_utc(str(dataset.fetched_at), "recorded fetched_at")
        basis = f"recorded fetch time ({dataset.source})"
    elif s.timestamp_column:
        col = s.timestamp_column
        if col not in table.column_names:
            return CheckResult(
                "freshness",
                FAIL,
                f"timestamp column {col!r} is missing, so the data's age is unknown",
                {"stale": False, "basis": None, "max_age_days": s.max_age_days},
            )
        values = table.column(col)
        try:
            if not (pa.types.is_timestamp(values.type) or pa.types.is_date(values.type)):
                values = pc.cast(values, pa.timestamp("s", tz="UTC"))
            latest = pc.max(values).as_py()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            latest = None
        if latest is None:
            return CheckResult(
                "freshness",
                FAIL,
                f"timestamp column {col!r} holds no ISO-8601 times, so the data's age is unknown",
                {"stale": False, "basis": None, "max_age_days": s.max_age_days},
            )
        import datetime as dt

        if not isinstance(latest, dt.datetime):
            latest = dt.datetime(latest.year, latest.month, latest.day)
        if latest.tzinfo is None:
            latest = latest.replace(tzinfo=dt.UTC)
        when, basis = latest, f"maximum of timestamp column {col!r}"
    if when is None:
        return CheckResult(
            "freshness",
            FAIL if s.when_unknown == "fail" else WARN,
            "the data's age is unknown: no source metadata, no recorded fetch time, no timestamp column",
            {"stale": False, "basis": None, "max_age_days": s.max_age_days},
        )
    age_days = (now - when).total_seconds() / 86400.0
    details = {
        "age_days": round(age_days, 3),
        "basis": basis,
        "dated": jsonio.format_utc(when),
        "max_age_days": s.max_age_days,
        "stale": age_days >= s.max_age_days,
    }
    text = f"{age_days:.1f} days old by {basis}, dated {jsonio.format_utc(when)}"
    if age_days >= s.max_age_days:
        return CheckResult("freshness", FAIL, f"stale: {text}; the limit is {s.max_age_days} days", details)
    return CheckResult("freshness", PASS, f"{text} (limit {s.max_age_days} days)", details)


def check_size(s: Settings, table: Any) -> CheckResult:
    n = table.num_rows
    details = {"rows": n, "minimum_rows": s.minimum_rows}
    if n < s.minimum_rows:
        return CheckResult("size", FAIL, f"{n} rows, fewer than the minimum {s.minimum_rows}", details)
    return CheckResult("size", PASS, f"{n} rows (minimum {s.minimum_rows})", details)


def check_class_balance(cfg: Config, s: Settings, table: Any) -> CheckResult:
    import pyarrow.compute as pc

    label = cfg.dataset.label
    if label not in table.column_names:
        return CheckResult("class_balance", FAIL, f"the label column {label!r} is missing", {"label": label})
    counts = pc.value_counts(table.column(label).drop_null())
    classes = {str(v["values"]): int(v["counts"]) for v in counts.to_pylist()}
    total = sum(classes.values())
    details: dict[str, Any] = {"label": label, "counts": classes, "minority_share_min": s.minority_share_min}
    if len(classes) < 2:
        what = f"a single value ({next(iter(classes))!r})" if classes else "no values"
        return CheckResult("class_balance", FAIL, f"the label {label!r} has {what}", details)
    minority = min(classes, key=classes.get)
    share = classes[minority] / total
    details.update(minority=minority, minority_share=round(share, 6))
    text = f"minority class {minority!r} is {share:.1%} of labelled rows"
    if share < s.minority_share_min:
        return CheckResult("class_balance", FAIL, f"{text}, below the floor {s.minority_share_min:.1%}", details)
    return CheckResult("class_balance", PASS, f"{text} (floor {s.minority_share_min:.1%})", details)


def _nan_count(col: Any) -> int:
    """pc.sum(pc.is_nan(col)) (NaN values, nulls not counted); chunks without nulls by numpy on
    their buffer (no copy, no boolean array of Arrow's)."""
    import numpy as np
    import pyarrow.compute as pc

    total = 0
    for chunk in col.chunks:
        if chunk.null_count == 0:
            total += int(np.count_nonzero(np.isnan(chunk.to_numpy())))
        else:
            total += int(pc.sum(pc.is_nan(chunk)).as_py() or 0)
    return total


def check_missing(s: Settings, table: Any) -> CheckResult:
    import pyarrow as pa

    n = max(table.num_rows, 1)
    shares: dict[str, float] = {}
    bad: dict[str, dict[str, Any]] = {}
    for name in table.column_names:
        col = table.column(name)
        missing = col.null_count
        if pa.types.is_floating(col.type):
            missing += _nan_count(col)  # a literal NaN is as missing as an empty cell
        share = missing / n
        shares[name] = round(share, 6)
        limit = s.missing_per_column.get(name, s.missing_max_share)
        if share >= limit:
            bad[name] = {"missing": missing, "share": round(share, 6), "limit": limit}
    details = {"max_share": s.missing_max_share, "per_column": s.missing_per_column, "shares": shares, "failing": bad}
    if bad:
        worst = max(bad, key=lambda c: bad[c]["share"])
        text = f"{len(bad)} column(s) at or over their missing-value limit, worst {worst!r} {bad[worst]['share']:.1%}"
        return CheckResult("missing_values", FAIL, text, details)
    worst = max(shares, key=shares.get) if shares else None
    text = f"every column under {s.missing_max_share:.0%} missing" + (
        f" (most: {worst!r} {shares[worst]:.1%})" if worst else ""
    )
    return CheckResult("missing_values", PASS, text, details)


# ---------------------------------------------------------------------------- schema contract


def load_contract(cfg: Config, path: Path) -> dict[str, Any]:
    """Read a contract file and check it against config/schemas/dataset-contract.schema.json."""
    import jsonschema

    from mlops.config import describe_violation

    rel = cfg.repo.rel(path)
    data = jsonio.read_json(path, "schema contract")
    schema_file = Path(__file__).resolve().parent.parent / "config" / "schemas" / "dataset-contract.schema.json"
    local = cfg.repo.schemas_dir / "dataset-contract.schema.json"
    schema = jsonio.read_json(local if local.exists() else schema_file, "schema")
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: (list(e.absolute_path), e.validator)
    )
    if errors:
        err = errors[0]
        expected, found = describe_violation(err)
        pointer = "/" + "/".join(str(p) for p in err.absolute_path)
        raise BadInput(
            f"{rel}: {pointer}",
            f"expected {expected}, found {found}",
            "fix the contract, or rewrite it with `mlops data infer-schema --force`",
        )
    return data


def infer_contract(cfg: Config, table: Any, *, max_categories: int, source: str) -> dict[str, Any]:
    """The first contract for a dataset, from its data (what TFX's SchemaGen does); reviewed like code."""
    import math

    import pyarrow.compute as pc

    label = cfg.dataset.label
    if label not in table.column_names:
        raise BadInput(
            f"{source}: column {label!r}",
            "the label column named by config/dataset.json /label is missing",
            "fix /label or the data before inferring a schema",
        )
    columns: dict[str, Any] = {}
    for name in table.column_names:
        col = table.column(name)
        kind = type_name(col.type)
        entry: dict[str, Any] = {"type": kind}
        if kind in ("integer", "float"):
            values = col
            if kind == "float":
                values = pc.filter(col, pc.invert(pc.fill_null(pc.is_nan(col), False)))
            mm = pc.min_max(values).as_py()
            if mm["min"] is not None and all(math.isfinite(v) for v in mm.values()):
                entry.update(min=mm["min"], max=mm["max"])
        elif kind in ("string", "boolean") and name != label:
            uniques = pc.unique(col.drop_null())
            if kind == "string" and len(uniques) <= max_categories:
                entry["categories"] = sorted(uniques.to_pylist())
        columns[name] = entry
    values = sorted(pc.unique(table.column(label).drop_null()).to_pylist(), key=str)
    return {
        "format": CONTRACT_FORMAT,
        "dataset": cfg.dataset.name,
        "inferred_from": {"path": source, "rows": table.num_rows, "at": jsonio.format_utc(jsonio.utc_now())},
        "label": {"column": label, "values": values},
        "columns": columns,
    }


def _min_max(col: Any) -> tuple[Any, Any]:
    """pc.min_max's (min, max) as Python values; for floats numpy's fmin/fmax per chunk, which
    skip NaN and nulls as pc.min_max does (NaN only when every value is NaN) at a third of its cost."""
    import math

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_floating(col.type) or pa.types.is_float16(col.type):
        mm = pc.min_max(col)
        return mm["min"].as_py(), mm["max"].as_py()
    lo = hi = None
    for chunk in col.chunks:
        if chunk.null_count == len(chunk):
            continue
        x = chunk.to_numpy(zero_copy_only=False)  # nulls become NaN, which fmin/fmax skip
        a, b = float(np.fmin.reduce(x)), float(np.fmax.reduce(x))
        lo = a if lo is None or (math.isnan(lo) or a < lo) else lo
        hi = b if hi is None or (math.isnan(hi) or b > hi) else hi
    return lo, hi


def check_contract(cfg: Config, s: Settings, table: Any, memo: ColumnMemo | None = None) -> CheckResult:
    import pyarrow as pa
    import pyarrow.compute as pc

    path = contract_path(cfg, s)
    rel = cfg.repo.rel(path)
    if not path.exists():
        status = FAIL if s.contract_when_missing == "fail" else WARN
        text = f"no schema contract at {rel}; run `mlops data infer-schema`, review and commit it"
        return CheckResult("schema_contract", status, text, {"contract": rel})
    contract = load_contract(cfg, path)
    expected: dict[str, Any] = contract["columns"]
    present = table.column_names
    violations: list[dict[str, Any]] = []
    for name in expected:
        if name not in present:
            violations.append({"column": name, "problem": "missing column", "count": table.num_rows, "rows": []})
    for name in present:
        if name not in expected:
            violations.append(
                {"column": name, "problem": f"new column ({type_name(table.column(name).type)})", "count": 0}
            )
    for name, rule in expected.items():
        if name not in present:
            continue
        col = table.column(name)
        found = type_name(col.type)
        if not _compatible(rule["type"], found):
            violations.append({"column": name, "problem": f"retyped: expected {rule['type']}, found {found}"})
            continue
        if found == "null":
            continue
        # Cheap aggregates first (min/max, distinct values); a row mask only when something is out.
        masks: list[tuple[str, Any]] = []
        if ("min" in rule or "max" in rule) and not (
            pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_decimal(col.type)
        ):
            violations.append({"column": name, "problem": f"has a min/max rule but holds {found}, not numbers"})
            continue
        if "min" in rule or "max" in rule:
            lo, hi = _min_max(col)
            if "min" in rule and lo is not None and lo < rule["min"]:
                masks.append((f"below the minimum {rule['min']}", pc.less(col, pa.scalar(rule["min"]))))
            if "max" in rule and hi is not None and hi > rule["max"]:
                masks.append((f"above the maximum {rule['max']}", pc.greater(col, pa.scalar(rule["max"]))))
        if "categories" in rule:
            allowed = pa.array(rule["categories"], type=pa.string())
            values = pc.cast(col, pa.string()) if found != "string" else col
            uniques = _unique(memo, name, values) if found == "string" else pc.unique(values)
            if not pc.all(pc.is_in(uniques.drop_null(), allowed)).as_py():
                unseen = pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, allowed)))
                masks.append(("not an allowed category", unseen))
        for problem, mask in masks:
            mask = pc.fill_null(mask, False)
            count = int(pc.sum(mask).as_py() or 0)
            if count:
                violations.append({"column": name, "problem": problem, "count": count, "rows": _rows(mask)})
    label = contract.get("label", {})
    if label.get("column") in present and "values" in label:
        col = table.column(label["column"])
        try:  # spelled as Arrow spells the data's values below (true, 0), not as Python does (True, 0.0)
            allowed = pc.cast(pa.array(label["values"]), pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):  # mixed types in the list
            allowed = pa.array([str(v) for v in label["values"]], type=pa.string())
        allowed_set = set(allowed.to_pylist())
        # A small integer label needs no pass over its values when every integer from its min to its max is allowed.
        span = _integer_span(col, 64)
        covered = span is not None and all(str(v) in allowed_set for v in range(span[0], span[1] + 1))
        if not covered and not pc.all(pc.is_in(pc.cast(pc.unique(col).drop_null(), pa.string()), allowed)).as_py():
            mask = pc.fill_null(pc.invert(pc.is_in(pc.cast(col, pa.string()), allowed)), False)
            count = int(pc.sum(mask).as_py() or 0)
            violations.append(
                {"column": label["column"], "problem": "label value not in the contract", "count": count,
                 "rows": _rows(mask)}
            )  # fmt: skip
    details = {"contract": rel, "violations": violations}
    if violations:
        first = violations[0]
        more = f" (+{len(violations) - 1} more)" if len(violations) > 1 else ""
        count = f", {first['count']} row(s)" if first.get("count") else ""
        text = f"{len(violations)} violation(s) of {rel}: {first['column']!r} {first['problem']}{count}{more}"
        return CheckResult("schema_contract", FAIL, text, details)
    return CheckResult("schema_contract", PASS, f"matches {rel} ({len(expected)} columns)", details)


# ------------------------------------------------------------------------------- duplicates


_HASH_SEED = 0x9E3779B97F4A7C15
_HASH_PRIME = 0x9FB21C651E98DF25


def _code_source(col: Any) -> Any:
    """The column in a form whose cells become uint64 codes cheaply: numbers as they are, text
    (and any other type) as its dictionary index over the whole column, so equal cells in
    different chunks get the same code."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_null(t):
        return col
    if pa.types.is_date32(t):  # Arrow casts date32 to int32 only
        return pc.cast(pc.cast(col, pa.int32()), pa.int64())
    if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_boolean(t):
        return pc.cast(col, pa.int64())
    encoded = pc.dictionary_encode(col)  # one memo table for all chunks: indices agree across chunks
    return pa.chunked_array([c.indices for c in encoded.chunks], type=encoded.type.index_type)


def _codes(arr: Any) -> Any:
    """A uint64 per cell of one Arrow array such that equal cells always give equal codes
    (other collisions are confirmed later): the float's bits with -0.0 folded into 0.0 and one
    NaN for every NaN and null, the integer itself (nulls: a sentinel), zeros for a null column."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    t = arr.type
    if pa.types.is_null(t):
        return np.zeros(len(arr), dtype=np.uint64)
    if pa.types.is_floating(t):
        # A fresh float64 array in one pass: nulls are NaN, + 0.0 folds -0.0 into 0.0.
        x = np.add(arr.to_numpy(zero_copy_only=False), 0.0, dtype=np.float64)
        nan = np.isnan(x)
        if nan.any():
            x[nan] = np.nan  # one bit pattern for every NaN payload and sign
        return x.view(np.uint64)
    if arr.null_count:
        sentinel = -(2 ** (t.bit_width - 1)) if pa.types.is_signed_integer(t) else 0
        arr = pc.fill_null(arr, pa.scalar(sentinel, t))
    return arr.to_numpy(zero_copy_only=False).astype(np.int64, copy=False).view(np.uint64)


def _row_hashes(table: Any) -> Any:
    """A uint64 per row; equal rows always get equal hashes.

    Chained h = f(h ^ code) with f = multiply-xorshift, a bijection on uint64: rows that differ in
    one column always differ in h. Computed batch by batch (all columns of a slice of rows while
    that slice of h is in the CPU cache), in place."""
    import numpy as np
    import pyarrow as pa

    h = np.full(table.num_rows, _HASH_SEED, dtype=np.uint64)
    prime = np.uint64(_HASH_PRIME)
    shift = np.uint64(29)
    sources = pa.table({str(i): _code_source(table.column(i)) for i in range(table.num_columns)})
    offset = 0
    for batch in sources.to_batches():
        part = h[offset : offset + batch.num_rows]
        tmp = np.empty_like(part)
        for arr in batch.columns:
            np.bitwise_xor(part, _codes(arr), out=part)
            np.multiply(part, prime, out=part)
            np.right_shift(part, shift, out=tmp)
            np.bitwise_xor(part, tmp, out=part)
        offset += batch.num_rows
    return h


_PREFILTER_COLUMNS = 4
_BUCKET_BITS = 22  # 4M buckets: ~1 in 5 of 1M distinct hashes shares one; the counts fit in 32 MB


def _repeated_rows(h: Any) -> Any:
    """Sorted row numbers whose hash occurs more than once.

    Equal hashes share a bucket (the top `_BUCKET_BITS` bits), so only the rows in a bucket that
    holds more than one row can repeat: one counting pass over the buckets (no sort of all rows),
    then the candidates' full 64 bits are sorted. Small inputs sort directly."""
    import numpy as np

    n = len(h)
    if n < 2:
        return np.empty(0, dtype=np.int64)
    bits = min(_BUCKET_BITS, (n - 1).bit_length() + 2)  # at least 4n buckets, at most 4M
    bucket = (h >> np.uint64(64 - bits)).astype(np.intp)
    crowded = np.bincount(bucket, minlength=1 << bits) > 1
    idx = np.flatnonzero(crowded[bucket])
    del bucket, crowded
    if len(idx) < 2:
        return np.empty(0, dtype=np.int64)
    cand = h[idx]
    full = np.sort(cand)
    same = full[1:] == full[:-1]
    if not same.any():
        return np.empty(0, dtype=np.int64)
    return idx[np.isin(cand, np.unique(full[1:][same]))].astype(np.int64, copy=False)


def _prefilter(table: Any) -> list[str]:
    """A few columns likely to tell rows apart on their own (floats with the fewest empty cells
    first): rows that repeat an earlier row repeat it in these columns too."""
    import pyarrow as pa

    def rank(name: str) -> tuple[int, int]:
        col = table.column(name)
        return (0 if pa.types.is_floating(col.type) else 1, col.null_count)

    return sorted(table.column_names, key=rank)[:_PREFILTER_COLUMNS]


def check_duplicates(s: Settings, table: Any) -> CheckResult:
    import pyarrow as pa

    n = table.num_rows
    duplicates, rows = 0, []
    # Candidates: rows whose hash over a few columns repeats (every duplicate row is one); their
    # hash over all columns next, unless most rows are candidates (then all rows are hashed).
    few = _prefilter(table)
    if len(few) < table.num_columns:
        idx = _repeated_rows(_row_hashes(table.select(few)))
        if len(idx) > n // 8:
            idx = _repeated_rows(_row_hashes(table))
        elif len(idx):
            idx = idx[_repeated_rows(_row_hashes(_take_sorted(table, idx)))]
    else:
        idx = _repeated_rows(_row_hashes(table))
    if len(idx):
        # Equal rows always share a hash; other rows that share one are told apart here:
        # the candidate rows are grouped exactly by every column (empty cells equal each other).
        idx = pa.array(idx)
        keys = [c for c in table.column_names if not pa.types.is_null(table.column(c).type)]
        sub = _take_sorted(table.select(keys), idx.to_numpy()).append_column("__row__", idx)
        groups = sub.group_by(keys, use_threads=False).aggregate([("__row__", "list")])
        later: list[int] = []
        for members in groups.column("__row___list").to_pylist():
            if len(members) > 1:
                later += sorted(members)[1:]
        duplicates = len(later)
        rows = [r + 1 for r in sorted(later)[:MAX_ROWS_SHOWN]]
    share = duplicates / n if n else 0.0
    details = {"duplicates": duplicates, "share": round(share, 6), "max_share": s.duplicates_max_share, "rows": rows}
    text = f"{duplicates} row(s) repeat an earlier row exactly ({share:.2%})"
    if share > s.duplicates_max_share:
        return CheckResult("duplicates", FAIL, f"{text}, above the limit {s.duplicates_max_share:.2%}", details)
    return CheckResult("duplicates", PASS, f"{text} (limit {s.duplicates_max_share:.2%})", details)


# ------------------------------------------------------------------------------- label leak


def _pure(table: Any, column: str, label: str) -> tuple[bool, int]:
    """(every non-null value of `column` occurs with a single label, number of distinct values).

    Distinct (value, label) pairs as distinct dictionary-index pairs: dictionary_encode tells
    values apart exactly as group_by does (by bits: each NaN payload, -0.0 and 0.0), without
    starting an Acero plan (and importing pyarrow.dataset) for a few thousand rows."""
    import numpy as np
    import pyarrow.compute as pc

    sub = table.select([column, label])
    if sub.column(label).null_count:
        sub = sub.filter(pc.is_valid(sub.column(label)))
    if sub.column(column).null_count:
        sub = sub.filter(pc.is_valid(sub.column(column)))
    if sub.num_rows == 0:
        return True, 0
    codes, sizes = [], []
    for name in (column, label):
        encoded = pc.dictionary_encode(sub.column(name))  # one dictionary for all chunks
        codes.append(np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in encoded.chunks]))
        sizes.append(max(len(c.dictionary) for c in encoded.chunks))
    pair = codes[0].astype(np.int64) * sizes[1] + codes[1]
    if sizes[0] * sizes[1] <= 4 * len(pair):  # few possible pairs: count them in a table
        pairs = int(np.count_nonzero(np.bincount(pair, minlength=1)))
    else:
        pairs = len(np.unique(pair))
    return pairs == sizes[0], sizes[0]


def _distinct_over_half(col: Any) -> bool:
    """pc.count_distinct(col) * 2 > len(col). The first 60 % of the rows hold no more distinct
    values than all of them, so when they already hold more than half, the rest is not counted."""
    import pyarrow.compute as pc

    n = len(col)
    head = col.slice(0, (n * 3) // 5)
    if n >= 100 and pc.count_distinct(head).as_py() * 2 > n:
        return True
    return pc.count_distinct(col).as_py() * 2 > n


def _sample_ranges(sample: Any, label: str, columns: list[str]) -> dict[str, Any] | None:
    """{column: [(min, max) of one label value, of the other]} on a sample with two label values
    (None otherwise); the same skips of nulls and NaN as group_by's min_max."""
    import pyarrow.compute as pc

    lab = sample.column(label)
    values = pc.unique(lab).drop_null()
    if len(values) != 2:
        return None
    out: dict[str, Any] = {c: [] for c in columns}
    for value in values:
        part = sample.filter(pc.fill_null(pc.equal(lab, value), False)).select(columns)
        for c in columns:
            lo, hi = _min_max(part.column(c)) if part.num_rows else (None, None)
            out[c].append({"min": lo, "max": hi})
    return out


def _class_ranges(table: Any, label: str, columns: list[str]) -> dict[str, Any]:
    """{column: [min_max of the first label group, of the second], label: [the two label values]}."""
    agg = table.group_by(label).aggregate([(c, "min_max") for c in columns])
    out: dict[str, Any] = {c: agg.column(f"{c}_min_max").to_pylist() for c in columns}
    out[label] = agg.column(label).to_pylist()
    return out


def _ranges_overlap(ranges: list[dict[str, Any]]) -> bool:
    """True when two classes' (min, max) ranges certainly overlap (both known, not NaN)."""
    import math

    if len(ranges) != 2:
        return False
    a, b = ranges
    values = (a["min"], a["max"], b["min"], b["max"])
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return False
    return a["max"] >= b["min"] and b["max"] >= a["min"]


def check_label_leak(cfg: Config, s: Settings, table: Any) -> CheckResult:
    """A feature that equals the label, separates it at one threshold, or maps each value to one label."""
    import pyarrow as pa
    import pyarrow.compute as pc

    label = cfg.dataset.label
    if label not in table.column_names:
        return CheckResult("label_leak", SKIP, f"the label column {label!r} is missing", {})
    features = [c for c in _features(cfg, table) if c not in s.leak_ignore]
    labelled = table.filter(pc.is_valid(table.column(label))) if table.column(label).null_count else table
    binary = _distinct_count(labelled.column(label)) == 2
    leaks: dict[str, str] = {}
    numeric = [c for c in features if type_name(table.column(c).type) in ("integer", "float")]
    # The seeded sample (also used for purity below).
    sample = _seeded_rows(labelled, LEAK_SAMPLE_ROWS)
    if binary and numeric and sample is not labelled:
        # Ranges that overlap in the sample overlap in all rows (each class's full range holds its
        # sample range), so only the features whose sample ranges are disjoint need the full pass.
        in_sample = _sample_ranges(sample, label, numeric)
        if in_sample is not None:
            numeric = [c for c in numeric if not _ranges_overlap(in_sample[c])]
    if binary and numeric:
        # One pass: per-class min and max of every numeric feature; disjoint ranges = a perfect threshold.
        ranges = _class_ranges(labelled, label, numeric)
        order = ranges.pop(label)
        for c in numeric:
            a, b = ranges[c]
            if None in (a["min"], a["max"], b["min"], b["max"]):
                continue
            if a["max"] < b["min"] or b["max"] < a["min"]:
                lo, hi = (order[0], order[1]) if a["max"] < b["min"] else (order[1], order[0])
                cut = a["max"] if a["max"] < b["min"] else b["max"]
                leaks[c] = f"separates the label perfectly: every {lo!r} row has {c} <= {cut}, every {hi!r} row above"
    # Value-to-label purity on the seeded sample first (cheap), confirmed on all rows.
    for c in features:
        if c in leaks or pa.types.is_null(table.column(c).type):
            continue
        if _distinct_over_half(sample.column(c)):
            continue  # identifiers and continuous values: purity by accident, not by leak
        pure, distinct = _pure(sample, c, label)
        if not pure or distinct * 2 > sample.num_rows or distinct < 2:
            continue  # identifiers and continuous values are pure by accident, not by leak
        if sample is not labelled:
            pure, distinct = _pure(labelled, c, label)
            if not pure or distinct * 2 > labelled.num_rows:
                continue
        leaks[c] = f"predicts the label perfectly: each of its {distinct} values occurs with one label only"
    for c in leaks:
        as_text = pc.cast(labelled.column(c), pa.string())
        if pc.all(pc.equal(as_text, pc.cast(labelled.column(label), pa.string()))).as_py():
            leaks[c] = "equals the label in every row"
    details = {"leaks": leaks, "checked": len(features)}
    if leaks:
        first = next(iter(leaks))
        more = f" (+{len(leaks) - 1} more)" if len(leaks) > 1 else ""
        return CheckResult("label_leak", FAIL, f"feature {first!r} {leaks[first]}{more}", details)
    return CheckResult("label_leak", PASS, f"no feature of {len(features)} predicts the label perfectly", details)


# ------------------------------------------------------------------------ distribution shift


def _seeded_rows(table: Any, rows: int) -> Any:
    """The seeded sample of `rows` rows in file order (the table itself when it has no more)."""
    import numpy as np

    n = table.num_rows
    if n <= rows:
        return table
    return _take_sorted(table, np.sort(np.random.default_rng(0).choice(n, rows, replace=False)))


def _sample(s: Settings, table: Any, columns: list[str]) -> Any:
    """The seeded sample of `sample_rows` rows (all rows when fewer) of these columns."""
    return _seeded_rows(table.select(columns), s.sample_rows)


def _sorted_floats(col: Any) -> Any:
    """np.sort(col as float64, nulls as NaN); an integer column with few distinct values is
    counted instead of sorted (the same array: equal values, ascending, NaN last)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_integer(col.type):
        counted = pc.value_counts(col.drop_null()) if col.null_count else pc.value_counts(col)
        if len(counted) <= 4096:
            keys = counted.field("values").to_numpy(zero_copy_only=False).astype(np.float64)
            order = np.argsort(keys, kind="stable")
            out = np.repeat(keys[order], counted.field("counts").to_numpy(zero_copy_only=False)[order])
            return np.concatenate((out, np.full(col.null_count, np.nan))) if col.null_count else out
    out = col.to_numpy(zero_copy_only=False).astype(np.float64)
    out.sort()
    return out


def _snapshot_and_sample(cfg: Config, s: Settings, table: Any, sha256: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The snapshot profile and the sample's values per feature (what check_shift compares), from
    one seeded sample; numeric values sorted once (NaN last) for both the profile and the drift test."""
    import pyarrow as pa

    from mlops import profile

    features = _features(cfg, table)
    n = table.num_rows
    sample = _sample(s, table, features)
    numeric, categorical, columns, values = [], [], {}, {}
    for c in features:
        kind = type_name(sample.column(c).type)
        if kind in ("integer", "float") and c not in cfg.dataset.categorical:
            values[c] = _sorted_floats(sample.column(c))
            columns[c] = profile.numeric_profile(values[c], SNAPSHOT_LEVELS)
            numeric.append(c)
        elif pa.types.is_string(sample.column(c).type) or pa.types.is_large_string(sample.column(c).type):
            # The Arrow strings themselves: drift.categorical_counts counts them with pyarrow, with
            # the keys, counts and order it gives for the object Series of str/None.
            values[c] = sample.column(c)
            columns[c] = profile.categorical_profile(values[c])
            categorical.append(c)
        elif kind in ("string", "boolean", "integer", "float"):
            values[c] = sample.column(c).to_pylist()
            columns[c] = profile.categorical_profile(values[c])
            categorical.append(c)
    snapshot = {
        "format": SNAPSHOT_FORMAT,
        "dataset": cfg.dataset.name,
        "sha256": sha256,
        "rows": n,
        "sample_rows": sample.num_rows,
        "quantile_levels": SNAPSHOT_LEVELS,
        "features": {"numeric": numeric, "categorical": categorical},
        "columns": columns,
    }
    return snapshot, values


def check_shift(cfg: Config, s: Settings, current: dict[str, Any], sample: Any) -> CheckResult:
    """Drift of this data against the snapshot profile of the last validated data (mlops.drift)."""
    path = reports_dir(cfg) / SNAPSHOT_NAME
    rel = cfg.repo.rel(path)
    if not path.exists():
        return CheckResult(
            "distribution_shift", PASS, "no earlier validated snapshot to compare with (first validation)",
            {"snapshot": None},
        )  # fmt: skip
    previous = jsonio.read_json(path, "snapshot profile")
    details: dict[str, Any] = {"snapshot": rel, "snapshot_sha256": previous.get("sha256")}
    if previous.get("sha256") == current["sha256"]:
        return CheckResult("distribution_shift", PASS, "same data as the last validated snapshot", details)
    from mlops import drift, profile

    settings = drift.Settings(distance_threshold=s.shift_distance, share_threshold=s.shift_max_share)
    results = []
    for kind in ("numeric", "categorical"):
        for c in previous.get("features", {}).get(kind, []):
            if c not in current["columns"] or current["columns"][c]["kind"] != kind:
                continue
            ref = profile.column_reference(c, previous["columns"][c], previous.get("quantile_levels"))
            values = sample[c]
            results.append(drift.column_drift(ref, values, settings))
    if not results:
        return CheckResult("distribution_shift", SKIP, "no feature in common with the last snapshot", details)
    drifted = [r.column for r in results if r.drifted]
    share = len(drifted) / len(results)
    details.update(
        share=round(share, 6), max_shifted_share=s.shift_max_share, drifted=drifted,
        columns={r.column: {"method": r.method, "score": round(float(r.score), 6), "drifted": r.drifted}
                 for r in results},
    )  # fmt: skip
    text = f"{len(drifted)} of {len(results)} features shifted ({share:.0%}) against {previous.get('sha256', '')[:12]}"
    if drifted and share >= s.shift_max_share:
        status = FAIL if s.shift_action == "fail" else WARN
        return CheckResult("distribution_shift", status, f"{text}: {', '.join(drifted[:6])}", details)
    return CheckResult("distribution_shift", PASS, text, details)


# ---------------------------------------------------------------------------------------- PII


def check_pii(s: Settings, table: Any, memo: ColumnMemo | None = None) -> CheckResult:
    from mlops import pii

    findings = pii.scan_table(table, s.pii_kinds, s.pii_ignore, memo.unique if memo is not None else None)
    scanned = [c for c in table.column_names if c not in s.pii_ignore and pii.is_text_column(table.column(c).type)]
    details = {"findings": [f.as_dict() for f in findings], "scanned_columns": scanned, "action": s.pii_action}
    if findings:
        parts = ", ".join(f"{f.column}: {f.count} {f.kind}" for f in findings[:4])
        more = f" (+{len(findings) - 4} more)" if len(findings) > 4 else ""
        status = FAIL if s.pii_action == "block" else WARN
        return CheckResult("pii", status, f"personal data found ({parts}{more})", details)
    return CheckResult("pii", PASS, f"no personal data in {len(scanned)} text column(s)", details)


# ------------------------------------------------------------------------------ orchestration


_LONGEST_FIRST = ("distribution_shift", "duplicates", "label_leak", "schema_contract")


def validate(cfg: Config, dataset: Any, table: Any = None) -> ValidationResult:
    """Run every enabled check on a dataset file (read here unless `table` is given); writes nothing."""
    from mlops import data

    started = time.perf_counter()
    s = Settings.from_config(cfg)
    where = cfg.repo.rel(dataset.path)
    if table is None:
        table = data.read_table(dataset.path, where)

    def shift() -> CheckResult:
        snap, sample = _snapshot_and_sample(cfg, s, table, dataset.sha256)
        holder["snapshot"] = snap
        return check_shift(cfg, s, snap, sample)

    holder: dict[str, Any] = {"snapshot": None}
    memo = ColumnMemo()  # pc.unique of text columns, shared by the contract and PII checks
    plan = {
        "freshness": lambda: check_freshness(cfg, s, dataset, table),
        "size": lambda: check_size(s, table),
        "class_balance": lambda: check_class_balance(cfg, s, table),
        "missing_values": lambda: check_missing(s, table),
        "schema_contract": lambda: check_contract(cfg, s, table, memo),
        "duplicates": lambda: check_duplicates(s, table),
        "label_leak": lambda: check_label_leak(cfg, s, table),
        "distribution_shift": shift,
        "pii": lambda: check_pii(s, table, memo),
    }
    # numpy and pyarrow.compute release the GIL, so the checks share the cores the CSV reader used.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        # The longest first (profile + drift, duplicates), so the two threads finish together.
        order = sorted(plan, key=lambda name: _LONGEST_FIRST.index(name) if name in _LONGEST_FIRST else 99)
        futures = {name: pool.submit(plan[name]) for name in order if s.enabled[name]}
        checks = [
            futures[name].result() if name in futures else CheckResult(name, SKIP, "disabled in config/validation.json")
            for name in CHECKS
        ]
    snapshot = holder["snapshot"]
    return ValidationResult(
        dataset=cfg.dataset.name,
        where=where,
        sha256=dataset.sha256,
        source=dataset.source,
        rows=table.num_rows,
        columns=table.num_columns,
        validated_at=jsonio.format_utc(jsonio.utc_now()),
        checks=checks,
        seconds=time.perf_counter() - started,
        provenance={
            "fetched_at": getattr(dataset, "fetched_at", None),
            "updated_at": getattr(dataset, "updated_at", None),
            "detail": getattr(dataset, "detail", ""),
            "fallback_reason": getattr(dataset, "fallback_reason", None),
        },
        snapshot=snapshot,
    )


def render_markdown(result: ValidationResult) -> str:
    icon = {PASS: "✅ pass", FAIL: "❌ fail", WARN: "⚠️ warn", SKIP: "➖ skip"}
    verdict = "passed" if result.passed else "FAILED"
    lines = [
        f"## Data validation {verdict}: `{result.dataset}`",
        "",
        f"`{result.where}` · {result.source} · {result.rows} rows × {result.columns} columns · "
        f"sha256 `{result.sha256[:12]}` · {result.validated_at} · {result.seconds:.2f} s",
        "",
        gha.md_table(["check", "status", "result"], [(c.name, icon[c.status], c.summary) for c in result.checks]),
    ]
    contract = result.check("schema_contract")
    if contract and contract.details.get("violations"):
        lines += ["", "### Schema contract violations", ""]
        lines.append(
            gha.md_table(
                ["column", "problem", "rows affected", "first rows"],
                [
                    (v["column"], v["problem"], v.get("count", ""), ", ".join(map(str, v.get("rows", []))))
                    for v in contract.details["violations"][:50]
                ],
            )
        )
    pii_check = result.check("pii")
    if pii_check and pii_check.details.get("findings"):
        lines += ["", "### Personal data (counts only, never values)", ""]
        lines.append(
            gha.md_table(
                ["column", "kind", "cells", "first rows"],
                [
                    (f["column"], f["kind"], f["count"], ", ".join(map(str, f["rows"])))
                    for f in pii_check.details["findings"]
                ],
            )
        )
    missing = result.check("missing_values")
    if missing and missing.details.get("failing"):
        lines += ["", "### Columns over their missing-value limit", ""]
        lines.append(
            gha.md_table(
                ["column", "missing", "share", "limit"],
                [(c, v["missing"], v["share"], v["limit"]) for c, v in missing.details["failing"].items()],
            )
        )
    return "\n".join(lines) + "\n"


def write_reports(cfg: Config, result: ValidationResult, *, audit: bool = True) -> ValidationResult:
    """JSON + Markdown report, the snapshot profile when the data passed, and a dataset_validated audit event."""
    folder = reports_dir(cfg)
    stamp = result.validated_at.replace("-", "").replace(":", "")
    base = folder / f"{stamp}-{result.sha256[:12]}"
    result.report_path = base.with_suffix(".json")
    result.markdown_path = base.with_suffix(".md")
    jsonio.write_json(result.report_path, result.as_dict())
    jsonio.write_text(result.markdown_path, render_markdown(result))
    if result.passed and result.snapshot is not None:
        jsonio.write_json(folder / SNAPSHOT_NAME, {**result.snapshot, "validated_at": result.validated_at})
    if audit:
        from mlops import audit as audit_log

        audit_log.record(
            cfg.repo,
            "dataset_validated",
            {
                "dataset": result.dataset,
                "path": result.where,
                "sha256": result.sha256,
                "source": result.source,
                "rows": result.rows,
                "passed": result.passed,
                "stale": result.stale,
                "failed_checks": [c.name for c in result.checks if c.status == FAIL],
                "report": cfg.repo.rel(result.report_path),
            },
        )
    return result


def validate_for_training(cfg: Config, dataset_file: Any, table: Any = None) -> ValidationResult:
    """Validate the data `mlops train` is about to use and record the report; the caller decides to refuse."""
    result = write_reports(cfg, validate(cfg, dataset_file, table))
    for c in result.checks:
        if c.status in (FAIL, WARN):
            gha.warn(f"data validation: {c.name}: {c.summary}")
    return result


# ------------------------------------------------------------------------------------ alerts


def open_alerts(cfg: Config) -> dict[str, Any]:
    """The record of the alerts this stage opened ({fingerprint: {...}}), checked."""
    path = reports_dir(cfg) / OPEN_ALERTS_NAME
    state = jsonio.read_json(path, "open alerts", cfg.repo.rel(path)) if path.exists() else {}
    if not isinstance(state, dict) or not all(isinstance(v, dict) for v in state.values()):
        raise BadInput(cfg.repo.rel(path), "expected an object of open alerts by fingerprint", "fix or delete it")
    return state


def raise_alerts(cfg: Config, result: ValidationResult, state: dict[str, Any]) -> list[dict[str, Any]]:
    """One alert per failing check (fingerprint: kind, dataset, check); resolve the ones that pass again."""
    from mlops import alerts

    state_path = reports_dir(cfg) / OPEN_ALERTS_NAME
    report = cfg.repo.rel(result.report_path) if result.report_path else ""
    out = []
    for c in result.checks:
        kind = "stale-dataset" if c.name == "freshness" and c.details.get("stale") else "data-quality"
        fingerprint = alerts.make_fingerprint("data-quality", result.dataset, c.name)
        if c.status == FAIL:
            title = (
                f"Stale dataset: {result.dataset}"
                if kind == "stale-dataset"
                else f"Data quality: {c.name.replace('_', ' ')} check fails for {result.dataset}"
            )
            facts: dict[str, object] = {"check": c.name, "dataset": result.dataset, "sha256": result.sha256[:12],
                                        "rows": result.rows, "source": result.source}  # fmt: skip
            facts.update({k: v for k, v in c.details.items() if isinstance(v, (int, float, str, bool))})
            alert = alerts.Alert(
                kind=kind,
                title=title,
                summary=f"`{result.where}` failed the {c.name} check: {c.summary}.",
                facts=facts,
                evidence=c.as_dict(),
                fingerprint=fingerprint,
                severity="critical" if c.name == "pii" else "warning",
                links={"validation report": report} if report else {},
            )
            delivered = alerts.raise_alert(cfg, alert)
            state[fingerprint] = {
                "check": c.name,
                "since": state.get(fingerprint, {}).get("since", result.validated_at),
            }
            out.append(delivered)
        elif c.status == PASS and fingerprint in state:
            out.append(alerts.resolve(cfg, fingerprint, f"the {c.name} check passes again on {result.sha256[:12]}"))
            del state[fingerprint]
    if state or state_path.exists():
        jsonio.write_json(state_path, state)
    return out
