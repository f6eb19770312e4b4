"""`mlops monitor --metrics-file`: the node_exporter textfile parses with prometheus_client's own parser
and holds the report's drift scores, positive rate and accuracy (issue 17)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.cli import run
from tests.test_monitor import repo, simulate, trained_template  # noqa: F401 - fixtures shared with the monitor tests


def samples(text: str) -> dict[tuple, float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.slow
def test_a_drifted_window_is_written_as_a_textfile_that_matches_the_report(repo, tmp_path):  # noqa: F811
    simulate(repo, "--rows", "2000", "--seed", "2", "--shift", "0.8", "--features", "5", "--label-noise", "0.3")
    prom = tmp_path / "textfile" / "mlops.prom"
    result = run(repo, "monitor", "--metrics-file", str(prom))
    assert result.code == 0, result.err
    report = json.loads((repo / "metadata/reports/monitoring/20261122T120000Z.json").read_text())
    got = samples(prom.read_text())
    assert got[("mlops_monitor_window_rows", (("model_version", report["model_version"]),))] == 2000
    assert got[("mlops_monitor_judged", ())] == 1 and got[("mlops_monitor_drift_alarm", ())] == 1
    assert got[("mlops_monitor_drift_share", ())] == pytest.approx(report["drift_score"])
    assert got[("mlops_monitor_weighted_drift_score", ())] == pytest.approx(report["weighted_drift_score"])
    for col in report["columns"]:
        key = ("mlops_monitor_feature_drift_score", (("feature", col["column"]), ("method", col["method"])))
        assert got[key] == pytest.approx(col["score"])
        assert got[("mlops_monitor_feature_drifted", (("feature", col["column"]),))] == int(col["drifted"])
    drifted = [c for c in report["columns"] if c["drifted"]]
    assert len(drifted) == 5
    assert got[("mlops_monitor_positive_rate", (("which", "current"),))] == pytest.approx(
        report["positive_rate"]["current"]
    )
    assert got[("mlops_monitor_accuracy", (("which", "current"),))] == pytest.approx(report["feedback"]["accuracy"])
    assert got[("mlops_monitor_ece", ())] == pytest.approx(report["feedback"]["ece"])
    end = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC).timestamp()
    assert got[("mlops_monitor_window_end_timestamp_seconds", ())] == end


def test_an_empty_window_writes_rows_and_judged_0_only(repo, tmp_path):  # noqa: F811
    prom = tmp_path / "mlops.prom"
    result = run(repo, "monitor", "--metrics-file", str(prom))
    assert result.code == 0 and result.out.startswith("insufficient data"), result.err
    got = samples(prom.read_text())
    assert got[("mlops_monitor_judged", ())] == 0
    assert not [k for k in got if k[0].startswith(("mlops_monitor_drift", "mlops_monitor_accuracy"))]


def test_a_metrics_file_that_is_a_directory_is_refused_before_the_run_writes_anything(repo, tmp_path):  # noqa: F811
    result = run(repo, "monitor", "--metrics-file", str(tmp_path))
    assert result.code == 2
    assert result.err.strip().startswith("error: mlops monitor: --metrics-file:") and "is a directory" in result.err
    assert not (repo / "metadata/reports/monitoring").exists() or not list(
        (repo / "metadata/reports/monitoring").glob("*.json")
    )


def test_every_metric_the_grafana_dashboard_queries_is_exported():
    import re
    from pathlib import Path

    from prometheus_client import generate_latest

    from mlops.monitor_metrics import registry_for
    from mlops.serving_metrics import Metrics

    report = {
        "model_version": "v1", "rows": 10, "window": {"since": "2026-11-22T06:00:00Z", "until": "2026-11-22T12:00:00Z"},
        "drift_score": 0.2, "drift": True, "weighted_drift_score": 0.3,
        "columns": [{"column": "age", "method": "ks", "score": 0.1, "drifted": True}],
        "prediction_drift": {"method": "ks", "score": 0.05}, "positive_rate": {"current": 0.3, "reference": 0.25},
        "feedback": {"rows": 5, "accuracy": 0.8, "reference_accuracy": 0.85, "ece": 0.04},
    }  # fmt: skip
    server = Metrics()
    server.observe("/predict", 200, {"model_version": "v1", "role": "production"}, 0.0)
    exported = {
        s.name
        for text in (generate_latest(server.registry), generate_latest(registry_for(report)))
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }
    dashboard = json.loads((Path(__file__).parents[1] / "docs/grafana-mlops.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    queried = {name for e in exprs for name in re.findall(r"\bmlops_[a-z0-9_]+", e)}
    assert len(queried) >= 14 and queried <= exported, queried - exported


@pytest.mark.slow
def test_without_the_report_extra_monitoring_writes_everything_else_and_says_how_to_get_the_html(
    repo,  # noqa: F811
    monkeypatch,
):
    import importlib.util

    from tests.support.deployed import set_config

    set_config(repo, "monitoring", {"evidently_report": True})
    simulate(repo, "--rows", "600", "--seed", "3")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "evidently" else real(name, *a))
    result = run(repo, "monitor")
    assert result.code == 0, result.err
    assert "no Evidently HTML report" in result.err and "pip install -e '.[report]'" in result.err
    out = repo / "metadata/reports/monitoring"
    report = json.loads((out / "20261122T120000Z.json").read_text())
    assert report["evidently_html"] is None and "'.[report]'" in report["evidently_skipped"]
    assert report["outcome"] == "ok" and (out / "20261122T120000Z.md").exists() and (out / "trend.png").exists()
    assert not (out / "html").exists()
