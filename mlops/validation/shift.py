"""The distribution-shift check: this data's snapshot profile against the last validated one."""

from __future__ import annotations

from typing import Any

from mlops import jsonio
from mlops.config import Config
from mlops.validation.columns import _features, _seeded_rows, _sorted_floats, type_name
from mlops.validation.results import FAIL, PASS, SKIP, WARN, CheckResult
from mlops.validation.settings import max_shifted_share, reports_dir

SNAPSHOT_FORMAT = 1
SNAPSHOT_NAME = "snapshot-profile.json"
# A coarser grid than the monitoring reference profile: the snapshot is committed after every
# validation, and a shift check against a 201-point sketch is well inside the 0.1 threshold.
SNAPSHOT_LEVELS = [k / 200 for k in range(201)]


def _sample(cfg: Config, table: Any, columns: list[str]) -> Any:
    """The seeded sample of `sample_rows` rows (all rows when fewer) of these columns."""
    return _seeded_rows(table.select(columns), cfg.validation.distribution_shift.sample_rows)


def _snapshot_and_sample(cfg: Config, table: Any, sha256: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The snapshot profile and the sample's values per feature (what check_shift compares), from
    one seeded sample; numeric values sorted once (NaN last) for both the profile and the drift test."""
    import pyarrow as pa

    from mlops import profile

    features = _features(cfg, table)
    n = table.num_rows
    sample = _sample(cfg, table, features)
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


def check_shift(cfg: Config, current: dict[str, Any], sample: Any) -> CheckResult:
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

    rule, limit = cfg.validation.distribution_shift, max_shifted_share(cfg)

    results = []
    for kind in ("numeric", "categorical"):
        for c in previous.get("features", {}).get(kind, []):
            if c not in current["columns"] or current["columns"][c]["kind"] != kind:
                continue
            ref = profile.column_reference(c, previous["columns"][c], previous.get("quantile_levels"))
            values = sample[c]
            results.append(drift.column_drift(ref, values, distance=rule.distance_threshold))
    if not results:
        return CheckResult("distribution_shift", SKIP, "no feature in common with the last snapshot", details)
    drifted = [r.column for r in results if r.drifted]
    share = len(drifted) / len(results)
    details.update(
        share=round(share, 6), max_shifted_share=limit, drifted=drifted,
        columns={r.column: {"method": r.method, "score": round(float(r.score), 6), "drifted": r.drifted}
                 for r in results},
    )  # fmt: skip
    text = f"{len(drifted)} of {len(results)} features shifted ({share:.0%}) against {previous.get('sha256', '')[:12]}"
    if drifted and share >= limit:
        status = FAIL if rule.action == "fail" else WARN
        return CheckResult("distribution_shift", status, f"{text}: {', '.join(drifted[:6])}", details)
    return CheckResult("distribution_shift", PASS, text, details)
