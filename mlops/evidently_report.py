"""Evidently's own HTML drift report for a monitoring window, run with the alert's rules (issue 16).

The alert (mlops.drift) picks a method and a threshold per column and raises drift when the share of drifted
columns reaches config/training-schedule.json /performance_thresholds/drift_alert_threshold. Evidently's
`DataDriftPreset()` defaults (its own method choice on the sampled data, drift share 0.5) said "Dataset Drift
is NOT detected" on windows the alert called drifted; here the preset gets the alert's method and threshold
for every column and the alert's drift share, and the verdict is read back from Evidently's result object,
so the report and the issue say the same thing (and the monitoring report records both).
"""

from __future__ import annotations

from typing import Any

EVIDENTLY_SEED = 0


def reference_sample(profile: dict, column: str, rows: int) -> Any:
    """`rows` values with the profile's marginal distribution (stratified quantiles, seeded shuffle)."""
    import numpy as np

    col = profile["columns"][column]
    rng = np.random.default_rng(EVIDENTLY_SEED)
    u = (np.arange(rows) + 0.5) / rows
    if "quantiles" in col:
        values = np.interp(u, profile["quantile_levels"], col["quantiles"])
    else:
        counts = np.asarray(col["counts"], dtype=float)
        idx = np.searchsorted(np.cumsum(counts) / counts.sum(), u, side="right")
        pool = np.asarray(col["values"], dtype=object if col["kind"] == "categorical" else float)
        values = pool[np.minimum(idx, len(pool) - 1)]
    return values[rng.permutation(rows)]


def preset_rules(result: Any, share: float) -> dict[str, Any]:
    """DataDriftPreset's arguments from the alert's drift result: its columns, methods, thresholds and share."""
    return {
        "columns": [c.column for c in result.columns],
        "per_column_method": {c.column: c.method for c in result.columns},
        "per_column_threshold": {c.column: float(c.threshold) for c in result.columns},
        "drift_share": float(share),
    }


def evidently_report(frame: Any, profile: dict, sample_rows: int, result: Any, share: float) -> tuple[str, dict]:
    """(HTML, verdict) of Evidently's drift report on a seeded sample of the window and one drawn from the profile.

    The verdict is Evidently's: drifted columns and their share from its DriftedColumnsCount metric, and
    `dataset_drift` by its rule (share >= drift_share); `alert_drift` is the alert's, for comparison.
    """
    import os

    os.environ.setdefault("DO_NOT_TRACK", "1")
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    rules = preset_rules(result, share)
    names = set(rules["columns"])
    numeric = [c for c in profile["features"]["numeric"] if c in names]
    categorical = [c for c in profile["features"]["categorical"] if c in names]
    k = min(sample_rows, len(frame))
    cur = frame.sample(n=k, random_state=EVIDENTLY_SEED)[numeric + categorical].reset_index(drop=True)
    cur[numeric] = cur[numeric].astype(float)
    ref = pd.DataFrame({c: reference_sample(profile, c, sample_rows) for c in numeric + categorical})
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset(**rules)]).run(
        Dataset.from_pandas(cur, data_definition=definition), Dataset.from_pandas(ref, data_definition=definition)
    )
    counted = next(m["value"] for m in snapshot.dict()["metrics"] if m["metric_name"].startswith("DriftedColumnsCount"))
    drifted_share = float(counted["share"])
    verdict = {
        "dataset_drift": bool(rules["columns"]) and drifted_share >= rules["drift_share"],
        "drifted_columns": int(counted["count"]),
        "share": drifted_share,
        "drift_share": rules["drift_share"],
        "methods": dict(sorted(rules["per_column_method"].items())),
        "alert_drift": result.dataset_drift(share),
        "sample_rows": {"current": k, "reference": sample_rows},
    }
    return snapshot.get_html_str(as_iframe=False), verdict
