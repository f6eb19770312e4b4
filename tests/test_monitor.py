"""`mlops monitor` and `mlops simulate-traffic` end to end on a temp repository with a trained model."""

from __future__ import annotations

import json
import shutil

import pytest

from mlops import monitor
from tests.support.cli import run
from tests.support.repo import make_repo, tree_snapshot

NOW = "2026-11-22T12:00:00Z"
LATER = ["2026-11-22T18:00:00Z", "2026-11-23T00:00:00Z", "2026-11-23T06:00:00Z"]


@pytest.fixture(scope="module")
def trained_template(tmp_path_factory):
    root = make_repo(tmp_path_factory.mktemp("monitor") / "repo", monitoring={"evidently_report": False})
    result = run(root, "train", "--model-types", "logistic_regression", "--no-tracking")
    assert result.code == 0, result.err
    assert (root / "models" / "current" / "reference-profile.json").exists()
    return root


@pytest.fixture
def repo(trained_template, tmp_path, monkeypatch):
    target = tmp_path / "repo"
    shutil.copytree(trained_template, target)
    monkeypatch.setenv("MLOPS_NOW", NOW)
    return target


def outputs(path):
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def simulate(repo, *args, until=NOW):
    result = run(repo, "simulate-traffic", "--until", until, *args)
    assert result.code == 0, result.err
    return result


def test_clean_window_is_ok_and_writes_reports(repo, tmp_path, monkeypatch):
    simulate(repo, "--rows", "3000", "--seed", "1")
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "out"))
    result = run(repo, "monitor")
    assert result.code == 0, result.err
    assert result.out.startswith("ok: 3000 rows")
    assert outputs(tmp_path / "out")["drift"] == "false"
    assert outputs(tmp_path / "out")["accuracy_drop"] != ""
    out = repo / "metadata" / "reports" / "monitoring"
    report = json.loads((out / "20261122T120000Z.json").read_text())
    assert report["outcome"] == "ok" and report["drifted_features"] == []
    assert {c["column"] for c in report["columns"]} >= {"income", "region"}
    assert all(c["importance"] is not None for c in report["columns"])
    assert "| feature | type | test |" in (out / "20261122T120000Z.md").read_text()
    assert (out / "trend.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = (repo / "metadata" / "audit").glob("entries-*.jsonl")
    assert any('"monitoring_run"' in p.read_text() for p in events)


def test_the_log_store_is_read_with_the_log_files_and_a_row_in_both_counts_once(repo):
    from mlops import config, predlog
    from mlops.logstore import open_uri
    from mlops.repo import Repo

    simulate(repo, "--rows", "3000", "--seed", "1")
    cfg = config.load(Repo.at(repo))
    store = open_uri(cfg.store.uri, repo)
    for kind in ("predictions", "feedback"):
        store.write(kind, predlog.read(cfg.repo, f"datasets/production/{kind}-*", kind).records)
    result = run(repo, "monitor")
    assert result.code == 0 and result.out.startswith("ok: 3000 rows"), result.out + result.err
    for path in (repo / "datasets" / "production").glob("*.jsonl"):
        path.unlink()  # now only the store has the rows
    result = run(repo, "monitor")
    assert result.code == 0 and result.out.startswith("ok: 3000 rows"), result.out + result.err
    report = json.loads((repo / "metadata" / "reports" / "monitoring" / "20261122T120000Z.json").read_text())
    assert report["feedback"]["rows"] == 3000 and "accuracy" in report["feedback"]
    assert report["log_files"] and all(f.startswith("datasets/production/store/kind=predictions/date=2026-11-22/hour=")
                                       for f in report["log_files"])  # fmt: skip


def test_drift_and_accuracy_drop_alert_then_resolve_after_clean_runs(repo, tmp_path, monkeypatch):
    sim = simulate(repo, "--rows", "3000", "--seed", "2", "--shift", "0.8", "--features", "5", "--label-noise", "0.3")
    shifted = (sim.out + sim.err).split("shifted ", 1)[1].split(" by ", 1)[0].split(", ")
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "out"))
    result = run(repo, "monitor")
    assert result.code == 0, result.err
    out = outputs(tmp_path / "out")
    assert out["drift"] == "true" and float(out["drift_score"]) >= 0.15 and float(out["accuracy_drop"]) > 0.05
    report = json.loads((repo / "metadata" / "reports" / "monitoring" / "20261122T120000Z.json").read_text())
    assert len(shifted) == 5 and sorted(report["drifted_features"]) == sorted(shifted)
    importance = {c["column"]: c["importance"] for c in report["columns"]}
    total = sum(max(v, 0.0) for v in importance.values())
    assert report["weighted_drift_score"] == pytest.approx(sum(max(importance[c], 0.0) for c in shifted) / total)
    assert set(report["prediction_drift"]) >= {"method", "score", "drifted"}
    assert report["positive_rate"]["shift"] == pytest.approx(
        report["positive_rate"]["current"] - report["positive_rate"]["reference"]
    )
    fb = report["feedback"]
    assert fb["ece_change"] == pytest.approx(fb["ece"] - fb["reference_ece"]) and fb["accuracy_drop"] > 0.05
    assert "importance-weighted" in (repo / "metadata" / "reports" / "monitoring" / "latest.md").read_text()
    outbox = sorted(p.name for p in (repo / "metadata" / "alerts" / "outbox").glob("*.json"))
    assert any("-drift-monitoring-" in n for n in outbox) and any("-regression-monitoring-" in n for n in outbox)
    drift_alert = next(
        json.loads(p.read_text()) for p in (repo / "metadata" / "alerts" / "outbox").glob("*-drift-monitoring-*")
    )
    assert {"drift-alert", "needs-investigation"} <= set(drift_alert["labels"])
    assert "would dispatch ml-training.yml" in result.out + result.err  # the retraining dispatch (dry run)
    # ... with the monitoring window, which the training workflow passes to `mlops train --since/--until`
    assert "with since=2026-11-22T06:00:00Z until=2026-11-22T12:00:00Z" in result.out + result.err
    regression = next(
        json.loads(p.read_text()) for p in (repo / "metadata" / "alerts" / "outbox").glob("*regression-monitoring*")
    )
    assert "needs-attention" in regression["labels"] and "regression" in regression["labels"]
    audit_text = "".join(p.read_text() for p in (repo / "metadata" / "audit").glob("entries-*.jsonl"))
    assert '"drift_detected"' in audit_text
    state_path = repo / "metadata" / "reports" / "monitoring" / "state.json"
    assert json.loads(state_path.read_text())["drift"]["open"]

    for i, until in enumerate(LATER):
        monkeypatch.setenv("MLOPS_NOW", until)
        simulate(repo, "--rows", "3000", "--seed", str(10 + i), until=until)
        assert run(repo, "monitor").code == 0
    state = json.loads(state_path.read_text())
    # resolved after 3 clean runs (config/alerts.json)
    assert state["drift"] == {"clean_runs": 0, "open": [], "counted_until": LATER[-1]}
    assert state["accuracy"] == {"clean_runs": 0, "open": [], "counted_until": LATER[-1]}
    history = json.loads((repo / "metadata" / "reports" / "monitoring" / "history.json").read_text())
    assert [h["outcome"] for h in history] == ["drift", "ok", "ok", "ok"]


def test_empty_window_is_insufficient_data_not_an_alarm(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "out"))
    result = run(repo, "monitor", "--since", "2026-11-20T00:00:00Z", "--until", "2026-11-20T06:00:00Z")
    assert result.code == 0, result.err
    assert result.out.startswith("insufficient data: 0 rows")
    assert outputs(tmp_path / "out") | {} == {
        "drift": "false", "drift_score": "", "accuracy_drop": "", "outcome": "insufficient_data",
        "report": "metadata/reports/monitoring/20261120T060000Z.md",
    }  # fmt: skip
    assert not (repo / "metadata" / "alerts" / "outbox").exists()


def test_malformed_line_in_the_middle_refuses_with_its_line_number(repo):
    simulate(repo, "--rows", "1000", "--seed", "3", "--hours", "2")
    log = repo / "datasets" / "production" / "predictions-20261122.jsonl"
    lines = log.read_text().splitlines()
    lines[2] = '{"request_id": "x", "time": '
    log.write_text("\n".join(lines) + "\n")
    before = tree_snapshot(repo)
    result = run(repo, "monitor")
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert line.startswith(
        "error: datasets/production/predictions-20261122.jsonl:3: malformed log line: malformed JSON"
    )
    assert tree_snapshot(repo) == before


def test_malformed_line_is_skipped_and_reported_when_configured(repo):
    cfg_path = repo / "config" / "monitoring.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.update(on_malformed="skip", min_rows=100)
    cfg_path.write_text(json.dumps(cfg))
    simulate(repo, "--rows", "1000", "--seed", "3", "--hours", "2")
    log = repo / "datasets" / "production" / "predictions-20261122.jsonl"
    lines = log.read_text().splitlines()
    lines[4] = "not json"
    log.write_text("\n".join(lines) + "\n")
    assert run(repo, "monitor").code == 0
    report = json.loads((repo / "metadata" / "reports" / "monitoring" / "20261122T120000Z.json").read_text())
    assert report["rows"] == 999
    assert report["skipped_lines"] == [
        "datasets/production/predictions-20261122.jsonl:5: malformed JSON (Expecting value)"
    ]


def test_log_missing_a_feature_column_is_bad_input(repo):
    simulate(repo, "--rows", "1000", "--seed", "4")
    log = repo / "datasets" / "production" / "predictions-20261122.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    for rec in records:
        del rec["features"]["income"]
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    before = tree_snapshot(repo)
    result = run(repo, "monitor")
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert "the prediction log has no values for feature(s) income" in line
    assert tree_snapshot(repo) == before


@pytest.mark.parametrize("value", ["abc", True])
def test_a_numeric_feature_holding_a_non_number_is_bad_input(repo, value):
    simulate(repo, "--rows", "1000", "--seed", "4")
    log = repo / "datasets" / "production" / "predictions-20261122.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    records[10]["features"]["income"] = value
    records[20]["features"]["income"] = None  # null is a missing value, not bad input
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    before = tree_snapshot(repo)
    result = run(repo, "monitor")
    assert result.code == 2, result.err
    (line,) = result.err.strip().splitlines()
    assert "numeric feature 'income' holds a value that is not a number in 1 row(s)" in line
    assert f"(first request_id {records[10]['request_id']!r})" in line and "abc" not in line
    assert tree_snapshot(repo) == before


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("features", {"income": {"v": 1}}, "feature 'income' is a dict, not a single value"),
        ("features", {"plan": ["a", "b"]}, "feature 'plan' is a list, not a single value"),
        ("prediction", None, "'prediction' is not 0 or 1"),
        ("prediction", 2, "'prediction' is not 0 or 1"),
    ],
)
def test_a_prediction_line_with_a_non_scalar_feature_or_a_bad_prediction_is_refused(repo, field, value, problem):
    simulate(repo, "--rows", "1000", "--seed", "4")
    log = repo / "datasets" / "production" / "predictions-20261122.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    if field == "features":
        records[10]["features"].update(value)
    else:
        records[10][field] = value
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    before = tree_snapshot(repo)
    result = run(repo, "monitor")
    assert result.code == 2, result.err
    (line,) = result.err.strip().splitlines()
    assert f"predictions-20261122.jsonl:11: malformed log line: {problem}" in line
    assert tree_snapshot(repo) == before


def test_profile_not_matching_the_model_is_bad_input(repo):
    path = repo / "models" / "current" / "reference-profile.json"
    prof = json.loads(path.read_text())
    prof["features"]["numeric"].remove("income")
    path.write_text(json.dumps(prof))
    before = tree_snapshot(repo)
    result = run(repo, "monitor")
    assert result.code == 2
    assert "reference-profile.json: /features/numeric: does not match the model's numeric features" in result.err
    assert "model only: ['income']" in result.err
    assert tree_snapshot(repo) == before


def test_parquet_log_and_shadow_rows(repo):
    simulate(repo, "--rows", "2000", "--seed", "5", "--format", "parquet", "--no-feedback")
    shadow = repo / "datasets" / "production" / "predictions-20261122.jsonl"
    rec = json.loads(
        json.dumps(
            {"request_id": "s1", "time": "2026-11-22T11:00:00Z", "model_version": "other", "role": "shadow",
             "features": {}, "score": 0.4, "prediction": 0}
        )
    )  # fmt: skip
    shadow.write_text(json.dumps(rec) + "\n")
    assert run(repo, "monitor").code == 0
    report = json.loads((repo / "metadata" / "reports" / "monitoring" / "20261122T120000Z.json").read_text())
    assert report["rows"] == 2000 and report["rows_by_role"]["shadow"] == 1 and report["shadow"]["rows"] == 1
    assert report["feedback"]["rows"] == 0 and "accuracy" not in report["feedback"]


def test_bad_since_is_one_line_exit_2(repo):
    result = run(repo, "monitor", "--since", "yesterday")
    assert result.code == 2
    assert "--since: 'yesterday' is not an ISO-8601 time; write it like 2026-11-22T06:00:00Z" in result.err


def test_simulate_traffic_refuses_more_features_than_exist(repo):
    result = run(repo, "simulate-traffic", "--rows", "10", "--features", "99")
    assert result.code == 2
    assert "--features: 99 is not between 0 and the 20 numeric features" in result.err


def test_trend_png_bytes_are_deterministic():
    history = [{"until": f"2026-11-2{i}T00:00:00Z", "drift_score": i / 10, "weighted_drift_score": i / 20}
               for i in range(5)]  # fmt: skip
    assert monitor.trend_png(history, 0.15) == monitor.trend_png(history, 0.15)


@pytest.mark.slow
def test_evidently_html_report_is_written_and_kept_out_of_git(repo):
    cfg_path = repo / "config" / "monitoring.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.update(evidently_report=True, evidently_sample_rows=500)
    cfg_path.write_text(json.dumps(cfg))
    simulate(repo, "--rows", "1000", "--seed", "6")
    assert run(repo, "monitor").code == 0
    html = repo / "metadata" / "reports" / "monitoring" / "html"
    assert "<html" in (html / "20261122T120000Z.html").read_text()[:2000].lower()
    assert (html / ".gitignore").read_text() == "*\n!.gitignore\n"


def _drift_then(repo, monkeypatch):
    simulate(repo, "--rows", "3000", "--seed", "2", "--shift", "0.8", "--features", "5", "--label-noise", "0.3")
    assert run(repo, "monitor").code == 0
    return repo / "metadata" / "reports" / "monitoring" / "state.json"


def test_running_the_same_window_again_counts_one_clean_run(repo, monkeypatch):
    state_path = _drift_then(repo, monkeypatch)
    monkeypatch.setenv("MLOPS_NOW", LATER[0])
    simulate(repo, "--rows", "3000", "--seed", "10", until=LATER[0])
    for _ in range(3):  # a re-run of one window (a retried job) is one window
        assert run(repo, "monitor").code == 0
    state = json.loads(state_path.read_text())
    assert state["drift"]["clean_runs"] == 1 and state["drift"]["open"]
    for i, until in enumerate(LATER[1:]):
        monkeypatch.setenv("MLOPS_NOW", until)
        simulate(repo, "--rows", "3000", "--seed", str(11 + i), until=until)
        assert run(repo, "monitor").code == 0
    assert json.loads(state_path.read_text())["drift"]["open"] == []


def test_a_refused_retrain_dispatch_still_raises_every_alert_and_later_closes_them(repo, monkeypatch):
    from tests.support.fake_github import FakeGitHub

    server = FakeGitHub(workflows=()).start()  # the repository has no ml-training.yml: dispatch answers 404
    try:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        simulate(repo, "--rows", "3000", "--seed", "2", "--shift", "0.8", "--features", "5", "--label-noise", "0.3")
        result = run(repo, "monitor")
        assert result.code == 2
        last = result.err.strip().splitlines()[-1]
        assert last.startswith("error: config/alerts.json: /retrain/workflow: workflow ml-training.yml not found")
        opened = {i["title"]: i["state"] for i in server.issues()}
        assert len(opened) == 2 and set(opened.values()) == {"open"}  # drift and the accuracy drop: neither skipped
        state_path = repo / "metadata" / "reports" / "monitoring" / "state.json"
        state = json.loads(state_path.read_text())
        assert state["drift"]["open"] and state["accuracy"]["open"]
        for i, until in enumerate(LATER):
            monkeypatch.setenv("MLOPS_NOW", until)
            simulate(repo, "--rows", "3000", "--seed", str(10 + i), until=until)
            assert run(repo, "monitor").code == 0
        assert {i["state"] for i in server.issues()} == {"closed"}
    finally:
        server.stop()


@pytest.mark.parametrize("label", [None, "maybe", [1]])
def test_a_feedback_label_that_is_no_class_is_refused_not_counted_as_negative(repo, label):
    simulate(repo, "--rows", "1000", "--seed", "4")
    log = repo / "datasets" / "production" / "feedback-20261122.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    records[5]["label"] = label
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    before = tree_snapshot(repo)
    result = run(repo, "monitor")
    assert result.code == 2, result.err
    (line,) = result.err.strip().splitlines()
    if isinstance(label, str):
        assert "label value 'maybe' is not one of the model's classes" in line
    else:
        assert "feedback-20261122.jsonl:6: malformed log line: 'label' is not a class value" in line
    assert tree_snapshot(repo) == before


@pytest.mark.parametrize(
    ("name", "content", "pointer"),
    [("state.json", {"drift": []}, "/drift"), ("history.json", [1], "/0")],
)
def test_a_malformed_state_or_history_file_is_refused_before_anything_is_written(repo, name, content, pointer):
    simulate(repo, "--rows", "1000", "--seed", "4")
    path = repo / "metadata" / "reports" / "monitoring" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))
    before = tree_snapshot(repo)
    result = run(repo, "monitor")
    assert result.code == 2, result.err
    assert f"metadata/reports/monitoring/{name}: {pointer}:" in result.err.strip().splitlines()[-1]
    assert tree_snapshot(repo) == before


def test_a_malformed_state_is_refused_before_the_evidently_html_is_written(repo):
    cfg_path = repo / "config" / "monitoring.json"
    cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), "evidently_report": True}))
    simulate(repo, "--rows", "1000", "--seed", "4")
    state = repo / "metadata" / "reports" / "monitoring" / "state.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text("{")
    before = tree_snapshot(repo)
    result = run(repo, "monitor")
    assert result.code == 2, result.err
    (line,) = result.err.strip().splitlines()
    assert line.startswith("error: metadata/reports/monitoring/state.json: malformed JSON at line 1")
    assert tree_snapshot(repo) == before  # no HTML report, nothing else under metadata/


def test_a_deeply_nested_log_line_is_malformed_not_a_crash(repo):
    simulate(repo, "--rows", "1000", "--seed", "4")
    log = repo / "datasets" / "production" / "predictions-20261122.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    lines.insert(3, "[" * 100_000 + "]" * 100_000 + "\n")
    log.write_text("".join(lines))
    result = run(repo, "monitor")
    assert result.code == 2
    assert "predictions-20261122.jsonl:4: malformed log line: malformed JSON (nested too deeply)" in result.err
