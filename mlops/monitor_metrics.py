"""`mlops monitor --metrics-file PATH`: the last window's figures as a node_exporter textfile.

node_exporter's textfile collector (`--collector.textfile.directory`) reads every `*.prom` file in a
folder at each scrape; point PATH into that folder. The file is replaced atomically (written beside
it, then renamed), so a scrape never reads half of it. Metrics (gauges; docs/monitoring.md):

- `mlops_monitor_window_rows{model_version}` and `mlops_monitor_window_end_timestamp_seconds`
- `mlops_monitor_judged` (0: too few rows to judge; the drift and accuracy gauges are then absent)
- `mlops_monitor_drift_share`, `mlops_monitor_drift_alarm`, `mlops_monitor_weighted_drift_score`
- `mlops_monitor_feature_drift_score{feature,method}`, `mlops_monitor_feature_drifted{feature}`
- `mlops_monitor_prediction_drift_score{method}`
- `mlops_monitor_positive_rate{which="current"|"reference"}`
- `mlops_monitor_feedback_rows`, `mlops_monitor_accuracy{which="current"|"reference"}`, `mlops_monitor_ece`
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops import jsonio


def registry_for(report: dict[str, Any]) -> Any:
    """A prometheus_client registry holding `report`'s figures (mlops.monitor.run's return value)."""
    from prometheus_client import CollectorRegistry, Gauge

    reg = CollectorRegistry()

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Any:
        return Gauge(f"mlops_monitor_{name}", doc, list(labels), registry=reg)

    version = str(report.get("model_version") or "")
    gauge("window_rows", "Production rows in the monitored window.", ("model_version",)).labels(version).set(
        report.get("rows", 0)
    )
    until = jsonio.parse_utc(report["window"]["until"]) if report.get("window") else None
    if until is not None:
        gauge("window_end_timestamp_seconds", "End of the monitored window (Unix time).").set(until.timestamp())
    judged = "drift_score" in report
    gauge("judged", "1 when the window had enough rows to judge drift, else 0.").set(int(judged))
    if not judged:
        return reg
    gauge("drift_share", "Share of features whose drift test fired.").set(report["drift_score"])
    gauge("drift_alarm", "1 when the drift share is over the alert threshold.").set(int(bool(report.get("drift"))))
    if report.get("weighted_drift_score") is not None:
        gauge("weighted_drift_score", "Drift share weighted by feature importance.").set(report["weighted_drift_score"])
    score = gauge("feature_drift_score", "Per-feature drift statistic (see method).", ("feature", "method"))
    drifted = gauge("feature_drifted", "1 when the feature's drift test fired.", ("feature",))
    for col in report.get("columns", []):
        if col.get("score") is not None:
            score.labels(col["column"], str(col.get("method"))).set(col["score"])
        drifted.labels(col["column"]).set(int(bool(col.get("drifted"))))
    pred = report.get("prediction_drift") or {}
    if pred.get("score") is not None:
        gauge("prediction_drift_score", "Drift statistic of the model's scores.", ("method",)).labels(
            str(pred.get("method"))
        ).set(pred["score"])
    rate = gauge("positive_rate", "Share of positive predictions: this window and the reference.", ("which",))
    for which in ("current", "reference"):
        if (report.get("positive_rate") or {}).get(which) is not None:
            rate.labels(which).set(report["positive_rate"][which])
    fb = report.get("feedback") or {}
    gauge("feedback_rows", "Window rows with a feedback label.").set(fb.get("rows", 0))
    if "accuracy" in fb:
        acc = gauge("accuracy", "Accuracy on the window's labelled rows, and the reference's.", ("which",))
        acc.labels("current").set(fb["accuracy"])
        acc.labels("reference").set(fb["reference_accuracy"])
        gauge("ece", "Expected calibration error on the window's labelled rows.").set(fb["ece"])
    return reg


def write(path: Path, report: dict[str, Any]) -> None:
    """Replace `path` with the textfile of `report` (atomically: written beside it, then renamed)."""
    from prometheus_client import write_to_textfile

    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry_for(report))
