"""mlops report pr: the marked comment, fork fallback, failure reports (no training needed here)."""

from __future__ import annotations

import json
import os

from mlops import pr_report
from tests.support.cli import run
from tests.support.fake_github import DEFAULT_TOKEN, Fault
from tests.support.repo import make_repo


def _env(monkeypatch, fake, tmp_path, head_repo="acme/model", sha="d" * 40):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"head": {"repo": {"full_name": head_repo}},
                                                  "base": {"repo": {"full_name": "acme/model"}}}}))  # fmt: skip
    summary = tmp_path / "summary.md"
    for key, value in {
        "GITHUB_TOKEN": DEFAULT_TOKEN, "GITHUB_REPOSITORY": "acme/model", "GITHUB_API_URL": fake.url,
        "GITHUB_EVENT_PATH": str(event), "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_SHA": sha,
        "GITHUB_RUN_ID": "9", "GITHUB_SERVER_URL": "https://github.example",
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    return summary


def test_failed_training_still_reports_once_and_keeps_its_exit_code(tmp_path, fake, monkeypatch):
    number = fake.add_pull("break it")
    _env(monkeypatch, fake, tmp_path)
    repo = make_repo(tmp_path / "repo")
    first = run(repo, "report", "pr", "--pr", str(number), "--model-types", "no_such_type")
    assert first.code == 2
    monkeypatch.setenv("GITHUB_SHA", "e" * 40)
    second = run(repo, "report", "pr", "--pr", str(number), "--model-types", "no_such_type")
    assert second.code == 2 and "experiment report for #1: updated" in second.out
    (comment,) = fake.comments_on(number)
    assert comment["body"].startswith(pr_report.MARKER)
    assert "**Training failed:** --model-types:" in comment["body"] and "`eeeeeeeeeeee`" in comment["body"]


def test_fork_pull_request_writes_only_the_summary(tmp_path, fake, monkeypatch):
    number = fake.add_pull("from a fork")
    summary = _env(monkeypatch, fake, tmp_path, head_repo="someone/model")
    assert pr_report.is_fork_event()
    result = pr_report.post(pr_report.MARKER + "\n## Experiment report\n\nbody\n", number)
    assert result == {"status": "summary", "why": "pull request from a fork: its token cannot write comments"}
    assert fake.requests == []
    assert summary.read_text().startswith("## Experiment report")


def test_a_token_that_cannot_write_falls_back_to_the_summary(tmp_path, fake, monkeypatch):
    number = fake.add_pull("read-only token")
    summary = _env(monkeypatch, fake, tmp_path)
    fake.inject(Fault(status=403, message="Resource not accessible by integration"), route=r"/comments$", times=5)
    result = pr_report.post(pr_report.MARKER + "\nreport\n", number)
    assert result == {"status": "summary", "why": "HTTP 403"}
    assert "report" in summary.read_text() and fake.comments_on(number) == []


def test_markdown_compares_with_the_champion_and_links_both_cards(monkeypatch):
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/model")
    monkeypatch.setenv("GITHUB_RUN_ID", "9")
    monkeypatch.setenv("GITHUB_BASE_REF", "main")
    champion = {"version": "20261101T020000Z-logistic_regression-11111111", "metrics": {"f1": 0.80, "accuracy": 0.89},
                "dataset": {"sha256": "a" * 64}}  # fmt: skip
    candidate = {"version": "20261122T020000Z-logistic_regression-22222222", "metrics": {"f1": 0.82, "accuracy": 0.88},
                 "dataset": {"sha256": "a" * 64}, "gate": {"reasons": ["f1 beats the champion by 0.0200"]}}  # fmt: skip
    outcome = {"decision": "promoted", "candidates": [
        {"version": candidate["version"], "model_type": "logistic_regression", "decision": "promoted",
         "regression": False},
        {"version": "x", "model_type": "random_forest", "decision": "rejected", "regression": False},
    ]}  # fmt: skip
    body = pr_report.build_markdown(outcome, candidate, champion, card_path="metadata/cards/v.md")
    assert body.startswith(pr_report.MARKER + "\n## Experiment report")
    assert "**Gate decision:** promoted" in body and "- f1 beats the champion by 0.0200" in body
    assert "| random_forest | rejected |" in body
    assert (
        "https://github.com/acme/model/blob/main/metadata/cards/20261101T020000Z-logistic_regression-11111111.md"
        in body
    )
    assert "[run's artifacts](https://github.com/acme/model/actions/runs/9)" in body
    assert "0.82" in body and "0.80" in body  # both values; the delta column comes from mlops.cards


def test_signing_configured_and_no_key_reports_and_leaves_the_shared_audit_log_alone(tmp_path, fake, monkeypatch):
    """checkpoint-key.pub is committed (signing on) but a pull request's run has no MLOPS_AUDIT_SIGNING_KEY."""
    from tests.support.repo import tree_snapshot
    from tests.support.trained import FAST

    number = fake.add_pull("experiment under signing")
    summary = _env(monkeypatch, fake, tmp_path, head_repo="someone/model")  # a fork: no secrets at all
    repo = make_repo(tmp_path / "repo", **FAST)
    keygen = run(repo, "audit", "keygen")
    assert keygen.code == 0 and (repo / "metadata" / "audit" / "checkpoint-key.pub").exists()
    assert "MLOPS_AUDIT_SIGNING_KEY" not in os.environ
    refused = run(repo, "audit", "record", "--type", "training_run")  # what training would hit in metadata/audit/
    assert refused.code == 2 and "MLOPS_AUDIT_SIGNING_KEY: is not set" in refused.err
    audit_before = {k: v for k, v in tree_snapshot(repo).items() if k.startswith("metadata/audit/")}

    result = run(repo, "report", "pr", "--pr", str(number), "--no-download", "--model-types", "logistic_regression")

    assert result.code == 0, result.out + result.err
    assert "experiment report for #1: summary" in result.out
    text = summary.read_text()
    assert "Gate decision" in text and "Training failed" not in text
    audit_after = {k: v for k, v in tree_snapshot(repo).items() if k.startswith("metadata/audit/")}
    assert audit_after == audit_before  # not one event appended to the shared log
    assert run(repo, "audit", "verify").code == 0
    assert fake.requests == []  # the fork's read-only token writes nothing
