"""Evidently's HTML report and the drift alert agree (issue 16): on a drifted window both say drift, on a clean
window neither does. The verdict is read from the HTML itself and from Evidently's result (the report JSON)."""

import json
import re
import shutil

import pytest

from mlops.evidently_report import preset_rules
from tests.support.cli import run
from tests.support.trained import shared, trained_twice

pytestmark = pytest.mark.slow
NOW = "2026-11-22T12:00:00Z"
VERDICT = re.compile(r"Dataset Drift is (NOT )?detected\. Dataset drift detection threshold is ([0-9.]+)")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return shared(tmp_path_factory, "cards", lambda folder: trained_twice(folder / "repo"))


def _monitor(trained, tmp_path, monkeypatch, *traffic):
    repo = tmp_path / "repo"
    shutil.copytree(trained["repo"], repo)
    path = repo / "config" / "monitoring.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "evidently_report": True,
                                "evidently_sample_rows": 1000}))  # fmt: skip
    monkeypatch.setenv("MLOPS_NOW", NOW)
    assert run(repo, "simulate-traffic", "--until", NOW, "--rows", "2000", *traffic).code == 0
    result = run(repo, "monitor")
    assert result.code == 0, result.err
    out = repo / "metadata" / "reports" / "monitoring"
    report = json.loads((out / "20261122T120000Z.json").read_text())
    (said,) = set(VERDICT.findall((repo / report["evidently_html"]).read_text()))
    return report, said, (out / "20261122T120000Z.md").read_text()


def test_on_a_drifted_window_the_evidently_html_and_the_alert_both_say_drift(trained, tmp_path, monkeypatch):
    report, (negation, threshold), md = _monitor(
        trained, tmp_path, monkeypatch, "--seed", "2", "--shift", "0.8", "--features", "5"
    )
    assert report["outcome"] == "drift" and report["drift"] is True
    assert negation == "" and float(threshold) == report["thresholds"]["share"] == 0.15
    ev = report["evidently"]
    assert ev["dataset_drift"] is True and ev["alert_drift"] is True and ev["drift_share"] == 0.15
    assert ev["drifted_columns"] >= 1 and ev["share"] >= 0.15
    assert ev["methods"] == {c["column"]: c["method"] for c in report["columns"]}  # the alert's methods
    assert "Its verdict: drift detected" in md and "says otherwise" not in md


def test_on_a_clean_window_neither_says_drift(trained, tmp_path, monkeypatch):
    report, (negation, threshold), md = _monitor(trained, tmp_path, monkeypatch, "--seed", "1")
    assert report["outcome"] == "ok" and report["drift"] is False
    assert negation == "NOT " and float(threshold) == 0.15
    assert report["evidently"]["dataset_drift"] is False and report["evidently"]["alert_drift"] is False
    assert "Its verdict: drift NOT detected" in md


def test_the_preset_gets_each_column_s_method_and_threshold_from_the_alert():
    from mlops.drift import ColumnDrift, DriftResult

    def col(name, method, threshold, drifted):
        return ColumnDrift(column=name, kind="numeric", method=method, score=0.0, threshold=threshold,
                           drifted=drifted, psi=None, n_reference=10, n_current=10, missing_current=0)  # fmt: skip

    result = DriftResult([col("a", "wasserstein", 0.1, True), col("b", "ks", 0.05, False)], share=0.5, drifted=["a"])
    assert preset_rules(result, 0.15) == {
        "columns": ["a", "b"],
        "per_column_method": {"a": "wasserstein", "b": "ks"},
        "per_column_threshold": {"a": 0.1, "b": 0.05},
        "drift_share": 0.15,
    }
