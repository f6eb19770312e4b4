"""The checks that read a few aggregates per column: freshness, size, class balance, missing
values and PII (the longer ones have a module each: contract, duplicates, leak, shift)."""

from __future__ import annotations

from typing import Any

from mlops import jsonio
from mlops.config import Config
from mlops.validation.columns import ColumnMemo, _nan_count
from mlops.validation.results import FAIL, PASS, WARN, CheckResult
from mlops.validation.settings import max_age_days, minimum_rows, timestamp_column


def check_freshness(cfg: Config, dataset: Any, table: Any) -> CheckResult:
    """Age from the source's metadata, else the recorded fetch time, else the timestamp column's maximum."""
    import pyarrow as pa
    import pyarrow.compute as pc

    now = jsonio.utc_now()
    limit, col = max_age_days(cfg), timestamp_column(cfg)
    when, basis = None, None
    if getattr(dataset, "updated_at", None):
        when = jsonio.parse_utc(str(dataset.updated_at), "source metadata updated_at")
        basis = f"source metadata ({dataset.source} last updated)"
    elif getattr(dataset, "fetched_at", None):
        when = jsonio.parse_utc(str(dataset.fetched_at), "recorded fetched_at")
        basis = f"recorded fetch time ({dataset.source})"
    elif col:
        if col not in table.column_names:
            return CheckResult(
                "freshness",
                FAIL,
                f"timestamp column {col!r} is missing, so the data's age is unknown",
                {"stale": False, "basis": None, "max_age_days": limit},
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
                {"stale": False, "basis": None, "max_age_days": limit},
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
            FAIL if cfg.validation.freshness.when_unknown == "fail" else WARN,
            "the data's age is unknown: no source metadata, no recorded fetch time, no timestamp column",
            {"stale": False, "basis": None, "max_age_days": limit},
        )
    age_days = (now - when).total_seconds() / 86400.0
    details = {
        "age_days": round(age_days, 3),
        "basis": basis,
        "dated": jsonio.format_utc(when),
        "max_age_days": limit,
        "stale": age_days >= limit,
    }
    text = f"{age_days:.1f} days old by {basis}, dated {jsonio.format_utc(when)}"
    if age_days >= limit:
        return CheckResult("freshness", FAIL, f"stale: {text}; the limit is {limit} days", details)
    return CheckResult("freshness", PASS, f"{text} (limit {limit} days)", details)


def check_size(cfg: Config, table: Any) -> CheckResult:
    n, minimum = table.num_rows, minimum_rows(cfg)
    details = {"rows": n, "minimum_rows": minimum}
    if n < minimum:
        return CheckResult("size", FAIL, f"{n} rows, fewer than the minimum {minimum}", details)
    return CheckResult("size", PASS, f"{n} rows (minimum {minimum})", details)


def check_class_balance(cfg: Config, table: Any) -> CheckResult:
    import pyarrow.compute as pc

    label, floor = cfg.dataset.label, cfg.validation.class_balance.minority_share_min
    if label not in table.column_names:
        return CheckResult("class_balance", FAIL, f"the label column {label!r} is missing", {"label": label})
    counts = pc.value_counts(table.column(label).drop_null())
    classes = {str(v["values"]): int(v["counts"]) for v in counts.to_pylist()}
    total = sum(classes.values())
    details: dict[str, Any] = {"label": label, "counts": classes, "minority_share_min": floor}
    if len(classes) < 2:
        what = f"a single value ({next(iter(classes))!r})" if classes else "no values"
        return CheckResult("class_balance", FAIL, f"the label {label!r} has {what}", details)
    minority = min(classes, key=classes.get)
    share = classes[minority] / total
    details.update(minority=minority, minority_share=round(share, 6))
    text = f"minority class {minority!r} is {share:.1%} of labelled rows"
    if share < floor:
        return CheckResult("class_balance", FAIL, f"{text}, below the floor {floor:.1%}", details)
    return CheckResult("class_balance", PASS, f"{text} (floor {floor:.1%})", details)


def check_missing(cfg: Config, table: Any) -> CheckResult:
    rule = cfg.validation.missing_values
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
        limit = rule.per_column.get(name, rule.max_share)
        if share >= limit:
            bad[name] = {"missing": missing, "share": round(share, 6), "limit": limit}
    details = {"max_share": rule.max_share, "per_column": rule.per_column, "shares": shares, "failing": bad}
    if bad:
        worst = max(bad, key=lambda c: bad[c]["share"])
        text = f"{len(bad)} column(s) at or over their missing-value limit, worst {worst!r} {bad[worst]['share']:.1%}"
        return CheckResult("missing_values", FAIL, text, details)
    worst = max(shares, key=shares.get) if shares else None
    text = f"every column under {rule.max_share:.0%} missing" + (
        f" (most: {worst!r} {shares[worst]:.1%})" if worst else ""
    )
    return CheckResult("missing_values", PASS, text, details)


def check_pii(cfg: Config, table: Any, memo: ColumnMemo | None = None) -> CheckResult:
    from mlops import pii

    rule = cfg.validation.pii

    findings = pii.scan_table(table, rule.kinds, rule.ignore_columns, memo.unique if memo is not None else None)
    scanned = [
        c for c in table.column_names if c not in rule.ignore_columns and pii.is_text_column(table.column(c).type)
    ]
    details = {"findings": [f.as_dict() for f in findings], "scanned_columns": scanned, "action": rule.action}
    if findings:
        parts = ", ".join(f"{f.column}: {f.count} {f.kind}" for f in findings[:4])
        more = f" (+{len(findings) - 4} more)" if len(findings) > 4 else ""
        status = FAIL if rule.action == "block" else WARN
        return CheckResult("pii", status, f"personal data found ({parts}{more})", details)
    return CheckResult("pii", PASS, f"no personal data in {len(scanned)} text column(s)", details)
