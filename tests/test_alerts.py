"""Alerts over real HTTP: real PyGithub against the fake GitHub (tests/support/fake_github.py)."""

from __future__ import annotations

import json
import re
import time

import pytest

from mlops import alerts, config
from mlops.alerts import delivery
from mlops.cli import main
from mlops.errors import BadInput
from mlops.repo import Repo
from tests.support.fake_github import (
    DEFAULT_TOKEN,
    FakeGitHub,
    Fault,
    fake_github_fixture,  # noqa: F401 - provides the fake_github fixture
)
from tests.support.repo import make_repo, tree_snapshot

FP = "drift:adult:features"
# Tiny time-outs and back-offs keep the suite fast; PyGithub only takes whole-second time-outs.
FAST = {
    "delivery": {
        "timeout_seconds": 1,
        "max_attempts": 4,
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.02,
        "max_wait_seconds": 5,
        "per_page": 5,
        "seconds_between_writes": 0,
    }
}


def _alert(fp: str = FP, **over) -> alerts.Alert:
    fields = dict(
        kind="drift",
        title="Data drift on production features",
        summary="Four features drifted beyond the PSI threshold.",
        facts={"psi max": 0.31, "drifted features": 4},
        evidence={"psi": {"age": 0.31, "hours": 0.2}},
        fingerprint=fp,
    )
    fields.update(over)
    return alerts.Alert(**fields)


@pytest.fixture
def root(tmp_path):
    return make_repo(tmp_path / "repo", alerts=FAST)


@pytest.fixture
def cfg(root):
    return config.load(Repo.at(root))


@pytest.fixture
def gh(fake_github, monkeypatch):
    for key, value in fake_github.env().items():
        monkeypatch.setenv(key, value)
    return fake_github


@pytest.fixture(autouse=True)
def _new_command(monkeypatch):
    """Each test starts as a fresh command: no 410/403 fix said yet (the memo is per process)."""
    monkeypatch.setattr(delivery, "_FIX_SAID", set())


def _open_with(fake: FakeGitHub, fp: str = FP) -> list[dict]:
    marker = alerts.fingerprint_marker(fp)
    return [i for i in fake.issues(state="open") if i["body"].split("\n", 1)[0] == marker]


def _outbox(root) -> list[dict]:
    folder = root / "metadata" / "alerts" / "outbox"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def _run_markers(fake: FakeGitHub, number: int) -> list[str]:
    out = []
    for c in fake.comments_on(number):
        m = re.match(r"<!-- mlops-run: (.+?) -->", c["body"])
        assert m, c["body"][:80]
        out.append(m.group(1))
    return out


# ---- dedupe, update, close, reopen ----------------------------------------------------------------------


def test_hundred_alerts_one_issue_then_resolve_closes_and_recurrence_reopens(gh, tmp_path, monkeypatch):
    # GitHub's page size here: 99 comments on one page (paging is covered by the dedupe test).
    root = make_repo(tmp_path / "big", alerts={"delivery": {**FAST["delivery"], "per_page": 100}})
    cfg = config.load(Repo.at(root))
    for run in range(100):
        monkeypatch.setenv("GITHUB_RUN_ID", str(5000 + run))
        result = alerts.raise_alert(cfg, _alert(facts={"psi max": 0.3 + run / 1000}))
        assert result["status"] == ("opened" if run == 0 else "commented")
    assert len(gh.issues()) == 1 and len(_open_with(gh)) == 1
    number = gh.issues()[0]["number"]
    markers = _run_markers(gh, number)
    assert len(markers) == 99 and len(set(markers)) == 99  # one comment per later run, none for the opening one
    assert gh.count("POST", r"/issues$") == 1
    assert "0.3990" in gh.comments_on(number)[-1]["body"]  # the newest evidence is in the newest comment

    closed = alerts.resolve(cfg, FP, "3 clean monitoring runs")
    assert closed["status"] == "closed" and closed["issue"] == number
    issue = gh.issues()[0]
    assert issue["state"] == "closed" and issue["state_reason"] == "completed"
    assert "3 clean monitoring runs" in gh.comments_on(number)[-1]["body"]
    assert alerts.resolve(cfg, FP, "still clean")["status"] == "not-open"

    monkeypatch.setenv("GITHUB_RUN_ID", "9999")
    again = alerts.raise_alert(cfg, _alert())
    assert again["status"] == "reopened" and again["issue"] == number
    assert len(gh.issues()) == 1 and gh.issues()[0]["state"] == "open"
    assert "Recurred" in gh.comments_on(number)[-1]["body"]
    assert _outbox(root) == []


def test_same_run_comments_at_most_once_and_keeps_it_current(gh, cfg):
    alerts.raise_alert(cfg, _alert())
    for i in range(5):
        assert alerts.raise_alert(cfg, _alert(facts={"psi max": 0.5 + i / 100}))["status"] == "commented"
    comments = gh.comments_on(1)
    assert len(comments) == 1 and "0.5400" in comments[0]["body"]
    assert gh.count("PATCH", r"/issues/comments/\d+$") == 4
    listings = [r for r in gh.requests if r.method == "GET" and r.path.endswith("/comments")]
    assert listings and all("since" in r.query for r in listings)  # old comments are never paged through


def test_six_labels_created_once_with_colours_and_existing_ones_left_alone(gh, cfg):
    gh.repo().labels["regression"] = {"id": 1, "name": "regression", "color": "123456", "description": "theirs"}
    alerts.raise_alert(cfg, _alert())
    labels = gh.repo().labels
    six = {"ml-ops", "regression", "drift-alert", "data-quality", "needs-investigation", "needs-attention"}
    assert set(labels) == set(alerts.LABELS) == six  # all six after the first alert, whatever its kind
    for name in six - {"regression"}:
        assert re.fullmatch(r"[0-9a-f]{6}", labels[name]["color"]) and labels[name]["description"], labels[name]
    assert labels["regression"] == {"id": 1, "name": "regression", "color": "123456", "description": "theirs"}
    assert labels["drift-alert"]["color"] == alerts.LABELS["drift-alert"][0]
    assert labels["ml-ops"]["description"] == alerts.LABELS["ml-ops"][1]
    assert gh.count("POST", r"/labels$") == 5
    assert sorted(label for label in gh.issues()[0]["_labels"]) == ["drift-alert", "ml-ops", "needs-investigation"]
    alerts.raise_alert(cfg, _alert("data-quality:adult:schema", kind="data-quality"))
    assert gh.count("POST", r"/labels$") == 5  # a second run creates none


def test_dedupe_searches_every_page_of_ml_ops_issues(gh, cfg):
    for i in range(12):
        alerts.raise_alert(cfg, _alert(f"drift:other-{i}"))
    alerts.raise_alert(cfg, _alert())  # issue 13: page 3 at five per page
    result = alerts.raise_alert(cfg, _alert())
    assert result["status"] == "commented" and result["issue"] == 13
    assert len(gh.issues()) == 13
    pages = {r.query.get("page", ["1"])[0] for r in gh.requests if r.method == "GET" and r.path.endswith("/issues")}
    assert "3" in pages


def test_a_marker_in_summary_or_evidence_cannot_hijack_another_fingerprint(gh, cfg):
    alerts.raise_alert(cfg, _alert("drift:victim"))
    sneaky = alerts.fingerprint_marker("drift:attacker")
    alerts.raise_alert(cfg, _alert("drift:victim2", summary=sneaky, evidence={"note": sneaky}))
    assert alerts.raise_alert(cfg, _alert("drift:attacker"))["status"] == "opened"
    assert len(gh.issues()) == 3


def test_two_open_duplicates_heal_to_one(gh, cfg):
    body = alerts.fingerprint_marker(FP) + "\n\nold race"
    with gh.lock:
        for _ in range(2):
            gh._new_issue(gh.repo(), {"title": "dup", "body": body, "labels": ["ml-ops"]})
    result = alerts.raise_alert(cfg, _alert())
    assert result["status"] == "commented" and result["issue"] == 1 and result["closed_duplicates"] == [2]
    assert [i["number"] for i in _open_with(gh)] == [1]
    assert "Duplicate of #1" in gh.comments_on(2)[0]["body"]


def test_body_has_summary_table_run_link_files_audit_and_raw_json(gh, cfg, root, monkeypatch):
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.example.com")
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    monkeypatch.setenv("GITHUB_SHA", "abc123")
    alert = _alert(
        links={"model card": "metadata/cards/v1.md", "report": "https://example.com/r.html"},
        evidence={"psi": {"age": 0.31}, "audit_seq": 17, "code": "```danger```"},
        summary="Drift | with a pipe and `$(rm -rf /)` that stays text.",
    )
    alerts.raise_alert(cfg, alert)
    body = gh.issues()[0]["body"]
    assert body.startswith(alerts.fingerprint_marker(FP) + "\n")
    assert "Drift | with a pipe and `$(rm -rf /)` that stays text." in body
    assert "| psi max | 0.3100 |" in body and "| drifted features | 4 |" in body
    assert "[run 4242](https://github.example.com/acme/model/actions/runs/4242)" in body
    assert "[model card](https://github.example.com/acme/model/blob/abc123/metadata/cards/v1.md)" in body
    assert "[report](https://example.com/r.html)" in body
    assert "entry #17 in `metadata/audit/`" in body
    details = body.split("<details><summary>Raw evidence (JSON)</summary>", 1)[1]
    fence = re.search(r"\n(`{4,})json\n", details).group(1)  # longer than the backticks inside
    raw = details.split(fence + "json\n", 1)[1].split("\n" + fence, 1)[0]
    assert json.loads(raw) == alert.evidence


def test_audit_events_when_the_audit_module_records(gh, cfg, root):
    from mlops import audit

    opened = alerts.raise_alert(cfg, _alert())
    updated = alerts.raise_alert(cfg, _alert())
    closed = alerts.resolve(cfg, FP, "clean")
    reopened = alerts.raise_alert(cfg, _alert())
    assert reopened["status"] == "reopened"
    dispatched = alerts.dispatch_retrain(cfg, "drift on 4 features")
    assert dispatched["status"] == "dispatched"
    results = [opened, updated, closed, reopened, dispatched]
    seqs = [r["audit_seq"] for r in results]
    assert all(isinstance(s, int) for s in seqs) and seqs == sorted(seqs)
    entries = {e["seq"]: e for e in (json.loads(x) for x in audit.read_dir(root / "metadata" / "audit").lines)}
    assert [entries[s]["type"] for s in seqs] == [
        "alert_opened",
        "alert_updated",
        "alert_closed",
        "alert_reopened",
        "retrain_dispatched",
    ]
    for r, s in zip(results[:4], seqs[:4], strict=True):
        assert entries[s]["payload"]["fingerprint"] == FP and entries[s]["payload"]["issue"] == r["issue"] == 1
    assert entries[seqs[4]]["payload"]["reason"] == "drift on 4 features"
    assert audit.verify(Repo.at(root)).entries == len(entries)


# ---- faults ---------------------------------------------------------------------------------------------------

FAULTS = {
    "500": lambda: Fault.server_error(500),
    "502": lambda: Fault.server_error(502),
    "503": lambda: Fault.server_error(503),
    "502-after-acting": lambda: Fault.server_error(502, apply=True),
    "403-secondary": lambda: Fault.secondary_rate_limit(retry_after=0),
    "429": lambda: Fault.too_many_requests(retry_after=None),
    "403-primary-far-reset": lambda: Fault.primary_rate_limit(reset_in=3600),
    "401-mid-run": lambda: Fault.bad_credentials(),
    "timeout": lambda: Fault.timeout(1.2, apply=True),
}
# Requests each flow makes when nothing fails (pinned: fewer is fine, more needs a reason).
FLOWS = {"open": 9, "comment": 3, "reopen": 6}


def _prepare(flow: str, cfg, monkeypatch) -> None:
    if flow in {"comment", "reopen"}:
        monkeypatch.setenv("GITHUB_RUN_ID", "1")
        alerts.raise_alert(cfg, _alert())
    if flow == "reopen":
        alerts.resolve(cfg, FP, "clean")
    monkeypatch.setenv("GITHUB_RUN_ID", "2")


def test_flows_make_the_pinned_number_of_requests(tmp_path, monkeypatch):
    for flow, expected in FLOWS.items():
        with _fresh(tmp_path / flow, monkeypatch) as (fake, cfg, _root):
            _prepare(flow, cfg, monkeypatch)
            before = len(fake.requests)
            assert alerts.raise_alert(cfg, _alert())["delivered"]
            assert len(fake.requests) - before == expected, [(r.method, r.path) for r in fake.requests[before:]]


class _fresh:
    """A started fake plus a repo and env, for tests that need many independent worlds."""

    def __init__(self, path, monkeypatch):
        self.path, self.mp = path, monkeypatch

    def __enter__(self):
        self.fake = FakeGitHub().start()
        self.mp.setenv("GITHUB_TOKEN", DEFAULT_TOKEN)
        self.mp.setenv("GITHUB_REPOSITORY", "acme/model")
        self.mp.setenv("GITHUB_API_URL", self.fake.url)
        root = make_repo(self.path, alerts=FAST)
        return self.fake, config.load(Repo.at(root)), root

    def __exit__(self, *exc):
        self.fake.stop()


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_a_fault_at_every_request_position_never_duplicates_and_never_loses(flow, fault, tmp_path, monkeypatch):
    for position in range(FLOWS[flow]):
        with _fresh(tmp_path / f"p{position}", monkeypatch) as (fake, cfg, root):
            _prepare(flow, cfg, monkeypatch)
            fake.inject(FAULTS[fault](), at=position)
            try:
                result = alerts.raise_alert(cfg, _alert())
            except BadInput as exc:
                # Only a token refused before anything succeeded is bad input; nothing was written.
                assert fault.startswith("401") and position == 0, (position, exc)
                assert "401" in str(exc) and _outbox(root) == []
                continue
            assert len(_open_with(fake)) <= 1, (position, fake.issues())
            queued = _outbox(root)
            assert result["delivered"] or (result["status"] == "outbox" and len(queued) == 1), (position, result)
            fake.clear_faults()
            outcome = alerts.flush(cfg)
            assert outcome["failed"] == [] and _outbox(root) == []
            assert len(_open_with(fake)) == 1, (position, fake.issues())
            number = _open_with(fake)[0]["number"]
            markers = _run_markers(fake, number)
            assert len(markers) == len(set(markers)), (position, markers)  # at most one comment per run
            if flow != "open":
                assert any(m.startswith("2.") for m in markers), (position, markers)


def test_far_rate_limit_goes_to_the_outbox_without_sleeping(gh, cfg, root):
    gh.inject(Fault.secondary_rate_limit(retry_after=3600), at=0)
    started = time.monotonic()
    result = alerts.raise_alert(cfg, _alert())
    assert time.monotonic() - started < 2
    assert result["status"] == "outbox" and "cap" in result["error"] and "3600" in result["error"]
    assert len(_outbox(root)) == 1 and gh.issues() == []


def test_retry_after_is_honoured_within_the_cap(gh, cfg):
    gh.inject(Fault.secondary_rate_limit(retry_after=1), at=0)
    started = time.monotonic()
    assert alerts.raise_alert(cfg, _alert())["status"] == "opened"
    assert time.monotonic() - started >= 1


def test_persistent_5xx_gives_up_after_max_attempts(gh, cfg, root):
    gh.inject(Fault.server_error(502), route=r"/issues$", method="GET", times=100)
    result = alerts.raise_alert(cfg, _alert())
    assert result["status"] == "outbox" and "gave up after 4 attempts" in result["error"]
    assert gh.count("GET", r"/issues$") == 4


def test_timeout_on_create_is_rechecked_not_resent(gh, cfg, root):
    gh.inject(Fault.timeout(1.2, apply=True), route=r"/issues$", method="POST")
    result = alerts.raise_alert(cfg, _alert())
    assert result["status"] == "opened" and result["delivered"]
    assert gh.count("POST", r"/issues$") == 1 and len(gh.issues()) == 1
    assert _outbox(root) == []


# ---- 410 (Issues disabled) and 403 (no issues: write): nothing blocks, nothing is lost ---------------------

REFUSALS = {
    # GitHub's own answers: Issues off on the repository (forks start so), and a token that may only read.
    "410": (lambda: Fault(status=410, message="Issues are disabled for this repo", name="410"), r"/issues", None),
    "403": (lambda: Fault(status=403, message="Resource not accessible by integration", name="403"), r".", "POST"),
}
FIX_410 = (
    "GitHub answered 410: Issues are disabled on acme/model; enable them in Settings -> General -> Features -> "
    "Issues, then the queued alerts are delivered by the next `mlops alerts flush`"
)
FIX_403 = (
    "GitHub answered 403: the token cannot write issues on acme/model; give the job `permissions: issues: write` "
    "in the workflow (or use a token with Issues: read and write), then the queued alerts are delivered by the "
    "next `mlops alerts flush`"
)


def _refuse(fake: FakeGitHub, refusal: str) -> None:
    fault, route, method = REFUSALS[refusal]
    fake.inject(fault(), route=route, method=method, times=10_000)


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
def test_stages_queue_and_warn_once_on_a_refusal_without_retrying(refusal, gh, cfg, root, monkeypatch, capsys):
    # What train, monitor, data validate and deploy call: raise_alert and resolve return, never raise.
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    alerts.raise_alert(cfg, _alert("drift:c"))  # open, so that resolving it has to write
    capsys.readouterr()
    _refuse(gh, refusal)
    results = [alerts.raise_alert(cfg, _alert()), alerts.raise_alert(cfg, _alert("drift:b"))]
    results.append(alerts.resolve(cfg, "drift:c", "clean again"))
    assert [(r["status"], r["delivered"]) for r in results] == [("outbox", False)] * 3
    assert all(f"GitHub answered {refusal}" in r["error"] for r in results)
    err = capsys.readouterr().err
    fix = FIX_410 if refusal == "410" else FIX_403
    assert err.count("::warning::") == 1 and f"::warning::{fix}\n" in err  # once, not once per alert
    assert err.count("NOT delivered") == 3
    assert len(_outbox(root)) == 3 and [i["state"] for i in gh.issues()] == ["open"]
    # Not transient: one refused request per call, no retry.
    refused = [r for r in gh.requests if r.status == int(refusal)]
    assert len(refused) == 3 and all(r.fault == refusal for r in refused)
    gh.clear_faults()
    outcome = alerts.flush(cfg)
    assert outcome["failed"] == [] and _outbox(root) == []
    assert sorted(i["state"] for i in gh.issues()) == ["closed", "open", "open"]


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
def test_flush_on_a_refusal_exits_0_warns_once_keeps_the_outbox_then_delivers(
    refusal, fake_github, root, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/model")
    monkeypatch.setenv("GITHUB_API_URL", fake_github.url)
    cfg = config.load(Repo.at(root))
    for fp in (FP, "drift:b", "drift:c"):
        alerts.raise_alert(cfg, _alert(fp))  # no token: queued
    queued = sorted(p.name for p in (root / "metadata" / "alerts" / "outbox").iterdir())
    assert len(queued) == 3
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs"
    for key, value in {"GITHUB_TOKEN": DEFAULT_TOKEN, "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary),
                       "GITHUB_OUTPUT": str(outputs)}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    _refuse(fake_github, refusal)
    capsys.readouterr()
    assert main(["--repo", str(root), "alerts", "flush"]) == 0
    out, err = capsys.readouterr()
    fix = FIX_410 if refusal == "410" else FIX_403
    why = {
        "410": "list ml-ops issues: GitHub answered 410 Issues are disabled for this repo",
        "403": "create label ml-ops: GitHub answered 403 Resource not accessible by integration",
    }[refusal]
    assert [line for line in err.splitlines() if line.startswith("::warning::")] == [
        f"::warning::{fix}",
        "::warning::alerts outbox: 3 of 3 alert(s) not delivered; 3 entries stay queued in metadata/alerts/outbox/ "
        f"for the next `mlops alerts flush`: {why}",
    ]
    assert out.count("NOT delivered") == 3 and outputs.read_text() == "delivered=0\nfailed=3\nqueued=3\n"
    text = summary.read_text()
    assert "### Alerts cannot reach GitHub" in text and fix in text
    assert "### Alerts outbox: 3 entries stay queued" in text and "Nothing is lost" in text
    assert sorted(p.name for p in (root / "metadata" / "alerts" / "outbox").iterdir()) == queued  # byte for byte kept
    assert len([r for r in fake_github.requests if r.status == int(refusal)]) == 1  # the other two not even tried
    assert fake_github.issues() == []

    monkeypatch.setattr(delivery, "_FIX_SAID", set())  # a new command
    assert main(["--repo", str(root), "alerts", "flush", "--strict"]) == 1  # the old behaviour, asked for
    assert len(_outbox(root)) == 3

    fake_github.clear_faults()  # Issues enabled / permission granted
    assert main(["--repo", str(root), "alerts", "flush"]) == 0
    assert len(fake_github.issues(state="open")) == 3 and _outbox(root) == []


# ---- outbox, dry run, token hygiene --------------------------------------------------------------------------


def test_no_token_is_a_dry_run_outbox_plus_step_summary_then_flush_delivers(
    fake_github, cfg, root, monkeypatch, tmp_path
):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/model")
    monkeypatch.setenv("GITHUB_API_URL", fake_github.url)
    result = alerts.raise_alert(cfg, _alert())
    assert result["status"] == "outbox" and result["dry_run"]
    assert fake_github.requests == []
    [entry] = _outbox(root)
    assert entry["markdown"].startswith(alerts.fingerprint_marker(FP))
    text = summary.read_text()
    assert "Data drift on production features" in text and "| psi max | 0.3100 |" in text
    assert main(["--repo", str(root), "alerts", "flush"]) == 0 and fake_github.requests == []

    monkeypatch.setenv("GITHUB_TOKEN", DEFAULT_TOKEN)
    assert main(["--repo", str(root), "alerts", "flush"]) == 0
    assert len(_open_with(fake_github)) == 1 and _outbox(root) == []
    assert "queued at" in fake_github.issues()[0]["body"]


def test_flush_latest_action_wins_per_fingerprint(fake_github, cfg, root, monkeypatch):
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/model")
    monkeypatch.setenv("GITHUB_API_URL", fake_github.url)
    alerts.raise_alert(cfg, _alert())
    alerts.raise_alert(cfg, _alert("drift:b"))
    alerts.resolve(cfg, FP, "recovered before anyone saw it")
    alerts.raise_alert(cfg, _alert("drift:b", facts={"psi max": 0.9}))
    assert len(_outbox(root)) == 4
    monkeypatch.setenv("GITHUB_TOKEN", DEFAULT_TOKEN)
    outcome = alerts.flush(cfg)
    assert sorted((d["fingerprint"], d["status"]) for d in outcome["delivered"]) == [
        ("drift:adult:features", "not-open"),
        ("drift:b", "opened"),
    ]
    [issue] = fake_github.issues()
    assert "0.9000" in issue["body"] and "1 earlier occurrence" in issue["body"]
    assert _outbox(root) == []


def test_failed_delivery_cli_says_outbox_and_exits_0_or_1_when_strict_then_flush_delivers(gh, root, tmp_path, capsys):
    alert_file = tmp_path / "alert.json"
    alert_file.write_text(json.dumps(_alert().to_dict()))
    gh.inject(Fault.primary_rate_limit(reset_in=3600), at=0)
    assert main(["--repo", str(root), "alerts", "raise", "--from-json", str(alert_file)]) == 0
    out, err = capsys.readouterr()
    assert "NOT delivered" in out and "queued in metadata/alerts/outbox/" in out and "flush" in err
    gh.inject(Fault.primary_rate_limit(reset_in=3600), at=0)
    assert main(["--repo", str(root), "alerts", "raise", "--from-json", str(alert_file), "--strict"]) == 1
    assert len(_outbox(root)) == 2
    gh.inject(Fault.primary_rate_limit(reset_in=3600), at=0)
    assert (
        main(["--repo", str(root), "alerts", "resolve", "--fingerprint", "drift:other", "--reason", "ok", "--strict"])
        == 1
    )
    gh.inject(Fault.primary_rate_limit(reset_in=3600), at=0)
    assert main(["--repo", str(root), "alerts", "flush", "--strict"]) == 1 and len(_outbox(root)) == 3
    capsys.readouterr()
    assert main(["--repo", str(root), "alerts", "flush"]) == 0
    assert len(_open_with(gh)) == 1 and _outbox(root) == []


def test_token_never_appears_in_output_outbox_or_summary(gh, root, tmp_path, monkeypatch, capsys):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    echo = Fault(status=500, message="upstream said", echo_auth=True)
    gh.inject(echo, route=".", times=1000)
    alert_file = tmp_path / "alert.json"
    alert_file.write_text(json.dumps(_alert().to_dict()))
    assert main(["--repo", str(root), "alerts", "raise", "--from-json", str(alert_file)]) == 0  # queued
    assert main(["--repo", str(root), "alerts", "flush"]) == 0  # still queued: a warning, not a failure
    assert main(["--repo", str(root), "alerts", "dispatch-retrain", "--reason", "drift"]) == 1  # not queued
    out, err = capsys.readouterr()
    assert "upstream said" in out + err  # the server's words did reach us ...
    stored = "".join(p.read_text() for p in (root / "metadata").rglob("*.json")) + summary.read_text()
    for text in (out, err, stored):
        assert DEFAULT_TOKEN not in text  # ... without the token they echoed
    # The fake really had the token to echo: it came in the Authorization header.
    assert any(r.headers.get("authorization") == f"token {DEFAULT_TOKEN}" for r in gh.requests)


# ---- bad input -------------------------------------------------------------------------------------------------


def _bad(root, argv, capsys, pattern):
    before = tree_snapshot(root)
    assert main(["--repo", str(root), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(pattern, err), err
    assert tree_snapshot(root) == before


def test_bad_inputs_are_one_line_exit_2_and_change_nothing(gh, root, tmp_path, monkeypatch, capsys):
    alert_file = tmp_path / "alert.json"
    alert_file.write_text(json.dumps(_alert().to_dict()))
    raise_argv = ["alerts", "raise", "--from-json", str(alert_file)]

    monkeypatch.setenv("GITHUB_REPOSITORY", "not-owner-slash-name")
    _bad(root, raise_argv, capsys, r"^error: GITHUB_REPOSITORY: 'not-owner-slash-name' is not owner/name")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/model")

    monkeypatch.setenv("GITHUB_TOKEN", "ghp_rejected0000000000000000")
    _bad(root, raise_argv, capsys, r"^error: GITHUB_TOKEN: GitHub rejected the token \(401 Bad credentials\)")
    monkeypatch.delenv("GITHUB_TOKEN")
    assert main(["--repo", str(root), *raise_argv]) == 0  # dry run: one entry in the outbox
    capsys.readouterr()
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_rejected0000000000000000")
    _bad(root, ["alerts", "flush"], capsys, r"^error: GITHUB_TOKEN: GitHub rejected the token")  # outbox kept as is
    assert len(_outbox(root)) == 1
    monkeypatch.setenv("GITHUB_TOKEN", DEFAULT_TOKEN)

    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/elsewhere")
    _bad(root, raise_argv, capsys, r"GITHUB_REPOSITORY: acme/elsewhere not found .* \(404\)")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/model")

    (root / "config" / "alerts.json").write_text(json.dumps({**FAST, "retrain": {"workflow": "missing.yml"}}))
    _bad(
        root,
        ["alerts", "dispatch-retrain", "--reason", "drift"],
        capsys,
        r"^error: config/alerts.json: /retrain/workflow: workflow missing.yml not found in acme/model \(404\)",
    )
    assert gh.repo().dispatches == [] and gh.issues() == []

    bad_alert = tmp_path / "bad.json"
    bad_alert.write_text(json.dumps({**_alert().to_dict(), "kind": "weather"}))
    _bad(root, ["alerts", "raise", "--from-json", str(bad_alert)], capsys, r"kind: unknown kind 'weather'")
    _bad(root, ["alerts", "resolve", "--fingerprint", "bad fingerprint!", "--reason", "x"], capsys, "not a fingerprint")


def test_from_json_naming_a_directory_is_one_line_exit_2(fake_github, root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/model")
    monkeypatch.setenv("GITHUB_API_URL", fake_github.url)
    folder = tmp_path / "alerts-dir"
    folder.mkdir()
    _bad(
        root,
        ["alerts", "raise", "--from-json", str(folder)],
        capsys,
        r"alerts-dir: is a directory, not an alert file; name the file itself",
    )
    assert fake_github.requests == [] and _outbox(root) == []


def test_a_committed_audit_key_without_the_signing_key_refuses_before_anything_is_sent(
    gh, root, tmp_path, monkeypatch, capsys
):
    from mlops import audit

    key, _ = audit.keygen(Repo.at(root))  # checkpoint-key.pub committed; the step lacks MLOPS_AUDIT_SIGNING_KEY
    monkeypatch.delenv(audit.SIGNING_KEY_ENV, raising=False)
    monkeypatch.delenv("GITHUB_TOKEN")
    alert_file = tmp_path / "alert.json"
    alert_file.write_text(json.dumps(_alert().to_dict()))
    assert main(["--repo", str(root), "alerts", "raise", "--from-json", str(alert_file)]) == 0  # dry run: queued
    capsys.readouterr()
    monkeypatch.setenv("GITHUB_TOKEN", DEFAULT_TOKEN)
    pattern = r"^error: MLOPS_AUDIT_SIGNING_KEY: is not set, but checkpoint-key.pub is committed"
    for argv in (
        ["alerts", "flush"],
        ["alerts", "raise", "--from-json", str(alert_file)],
        ["alerts", "resolve", "--fingerprint", FP, "--reason", "clean"],
        ["alerts", "dispatch-retrain", "--reason", "drift"],
    ):
        _bad(root, argv, capsys, pattern)
    assert gh.requests == [] and len(_outbox(root)) == 1  # no issue opened that the log would not record
    monkeypatch.setenv(audit.SIGNING_KEY_ENV, key)
    assert main(["--repo", str(root), "alerts", "flush"]) == 0
    assert len(_open_with(gh)) == 1 and _outbox(root) == []
    assert audit.verify(Repo.at(root)).signed >= 1


def test_an_outbox_entry_is_dropped_only_after_its_delivery_is_recorded(gh, cfg, root, monkeypatch, capsys):
    from mlops import audit

    monkeypatch.delenv("GITHUB_TOKEN")
    alerts.raise_alert(cfg, _alert())  # dry run: queued
    audit.record(Repo.at(root), "monitoring_run", {})
    segment = next((root / "metadata" / "audit").glob("entries-*.jsonl"))
    with open(segment, "ab") as fh:
        fh.write(b'{"actor":')  # an append interrupted earlier: recording now fails
    monkeypatch.setenv("GITHUB_TOKEN", DEFAULT_TOKEN)
    assert main(["--repo", str(root), "alerts", "flush"]) == 1
    assert "mlops audit repair --truncate-torn-tail" in capsys.readouterr().err
    assert len(_open_with(gh)) == 1 and len(_outbox(root)) == 1  # sent, not recorded: still queued
    audit.repair_torn_tail(Repo.at(root))
    assert main(["--repo", str(root), "alerts", "flush"]) == 0
    assert len(gh.issues()) == 1 and _outbox(root) == []  # the retry found the issue: no duplicate
    types = [json.loads(x)["type"] for x in audit.read_dir(root / "metadata" / "audit").lines]
    assert types == ["monitoring_run", "alert_updated"]


def test_flush_refuses_a_broken_outbox_entry_before_sending(gh, root, capsys):
    folder = root / "metadata" / "alerts" / "outbox"
    folder.mkdir(parents=True)
    (folder / "x.json").write_text(json.dumps({"action": "raise", "fingerprint": FP, "alert": {"kind": "drift"}}))
    _bad(root, ["alerts", "flush"], capsys, r"outbox/x.json: /alert: title: missing")
    assert gh.requests == []


# ---- gate records and retraining ----------------------------------------------------------------------------------


def _gate(root, version, regression=True, auc=0.81):
    path = root / "metadata" / "gates" / f"{version}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "regression": regression,
                "version": version,
                "model_type": "hist_gb",
                "primary_metric": "roc_auc",
                "tolerance": 0.005,
                "candidate": {"metrics": {"roc_auc": auc, "accuracy": 0.8}},
                "champion": {"version": "20261101T020000Z-hist_gb-aaaaaaaa", "metrics": {"roc_auc": 0.9}},
            }
        )
    )
    return path


def test_training_regression_opens_one_labelled_issue_across_runs(gh, root, monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_RUN_ID", "1")
    first = _gate(root, "20261122T020000Z-hist_gb-11111111")
    assert main(["--repo", str(root), "alerts", "raise", "--from-gate", str(first)]) == 0
    monkeypatch.setenv("GITHUB_RUN_ID", "2")
    second = _gate(root, "20261129T020000Z-hist_gb-22222222", auc=0.8)
    assert main(["--repo", str(root), "alerts", "raise", "--from-gate", str(second)]) == 0
    [issue] = gh.issues()
    assert sorted(issue["_labels"]) == ["ml-ops", "needs-investigation", "regression"]
    assert "20261122T020000Z-hist_gb-11111111" in issue["body"] and "| champion roc_auc | 0.9000 |" in issue["body"]
    assert "| difference (roc_auc) | -0.0900 |" in issue["body"]
    assert "20261129T020000Z-hist_gb-22222222" in gh.comments_on(issue["number"])[0]["body"]
    assert issue["title"] == "Model regression: training candidates fall below the champion on roc_auc"
    requests_before = len(gh.requests)
    clean = _gate(root, "20261206T020000Z-hist_gb-33333333", regression=False)
    assert main(["--repo", str(root), "alerts", "raise", "--from-gate", str(clean)]) == 0
    assert "no regression" in capsys.readouterr().out and len(gh.requests) == requests_before


def test_malformed_gate_record_is_bad_input(gh, root, capsys):
    path = _gate(root, "v1")
    data = json.loads(path.read_text())
    data["regression"] = "yes"
    path.write_text(json.dumps(data))
    _bad(root, ["alerts", "raise", "--from-gate", str(path)], capsys, r"/regression: expected true or false")


def test_dispatch_retrain_sends_inputs_and_honours_cooldown(gh, root, monkeypatch, capsys):
    monkeypatch.setenv("MLOPS_NOW", "2026-11-22T06:00:00Z")
    argv = ["--repo", str(root), "alerts", "dispatch-retrain", "--reason", "drift on 4 features"]
    assert main(argv) == 0
    assert gh.repo().dispatches == [
        {"workflow": "ml-training.yml", "ref": "main", "inputs": {"reason": "drift on 4 features"}}
    ]
    state = json.loads((root / "metadata" / "alerts" / "retrain.json").read_text())
    assert state["dispatched_at"] == "2026-11-22T06:00:00Z"
    monkeypatch.setenv("MLOPS_NOW", "2026-11-22T12:00:00Z")  # six hours later: still cooling down
    assert main(argv) == 0
    assert "cool-down until 2026-11-23T06:00:00Z" in capsys.readouterr().out
    assert len(gh.repo().dispatches) == 1
    assert main([*argv, "--force"]) == 0 and len(gh.repo().dispatches) == 2
    monkeypatch.setenv("MLOPS_NOW", "2026-11-23T13:00:00Z")
    assert main(argv) == 0 and len(gh.repo().dispatches) == 3


def test_dispatch_is_not_resent_when_it_may_have_landed(gh, root):
    gh.inject(Fault.timeout(1.2, apply=True), route="/dispatches$")
    assert main(["--repo", str(root), "alerts", "dispatch-retrain", "--reason", "drift"]) == 1
    assert len(gh.repo().dispatches) == 1 and gh.count("POST", "/dispatches$") == 1
    assert not (root / "metadata" / "alerts" / "retrain.json").exists()


def test_dispatch_without_token_is_a_dry_run(fake_github, root, capsys):
    assert main(["--repo", str(root), "alerts", "dispatch-retrain", "--reason", "drift"]) == 0
    assert "dry-run" in capsys.readouterr().out and fake_github.requests == []
    assert not (root / "metadata" / "alerts" / "retrain.json").exists()


def test_dispatch_retrain_sends_the_window_to_train_on(gh, root, monkeypatch):
    monkeypatch.setenv("MLOPS_NOW", "2026-11-22T06:00:00Z")
    cfg = config.load(Repo.at(root))
    result = alerts.dispatch_retrain(cfg, "drift", since="2026-11-22T00:00:00+00:00", until="2026-11-22T06:00:00Z")
    assert result["status"] == "dispatched"
    want = {"reason": "drift", "since": "2026-11-22T00:00:00Z", "until": "2026-11-22T06:00:00Z"}
    assert gh.repo().dispatches == [{"workflow": "ml-training.yml", "ref": "main", "inputs": want}]
    assert json.loads((root / "metadata" / "alerts" / "retrain.json").read_text())["inputs"] == want
    with pytest.raises(BadInput, match=r"^--since: 2026-11-22T06:00:00Z is not before 2026-11-22T00:00:00Z"):
        alerts.dispatch_retrain(cfg, "drift", since="2026-11-22T06:00:00Z", until="2026-11-22T00:00:00Z", force=True)
    with pytest.raises(BadInput, match=r"^--until: 'yesterday' is not an ISO-8601 time"):
        alerts.dispatch_retrain(cfg, "drift", until="yesterday", force=True)
    assert len(gh.repo().dispatches) == 1
