"""The workflows' own steps, run from their YAML in temporary clones (tests/support/workflow_harness.py).

GitHub is the fake REST server; the repository's origin is a local bare remote. Each test checks
what a maintainer would look at afterwards: issues, comments, dispatches, and what reached main.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.fake_github import DEFAULT_TOKEN, FakeGitHub
from tests.support.workflow_harness import (
    GIT_ENV,
    Runner,
    Workflow,
    clone,
    remote_files,
    remote_log,
    seed_remote,
)

pytestmark = pytest.mark.slow

MLOPS = str(Path(sys.executable).parent / "mlops")
# Small but real: one model type, fewer bootstrap resamples, no Evidently HTML report.
FAST = {
    "training": {"model_types": ["logistic_regression"], "bootstrap_iterations": 20},
    "monitoring": {"evidently_report": False},
    "alerts": {"delivery": {"seconds_between_writes": 0}},
    "gitops": {"commit": {"backoff_base_seconds": 0.05}},
}


def _mlops(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MLOPS_"))}
    proc = subprocess.run([MLOPS, *args], cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"mlops {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
    return proc


def _train_champion(seed: Path) -> None:
    _mlops(seed, "train", "--no-download", "--no-tracking")


@pytest.fixture(scope="module")
def champion_remote(tmp_path_factory) -> Path:
    """A remote whose main already has a trained champion (models/current, card, audit log)."""
    return seed_remote(tmp_path_factory.mktemp("champion"), config=FAST, prepare=_train_champion)


def _runner(workspace: Path, fake: FakeGitHub, run_id: int, **kw) -> Runner:
    return Runner(workspace, api_url=fake.url, token=DEFAULT_TOKEN, run_id=run_id, **kw)


def _ok(result) -> None:
    assert not result.failed, result.log()


# ---- monitoring --------------------------------------------------------------------------------------------


def test_monitoring_opens_one_drift_issue_dispatches_training_then_comments(champion_remote, fake, tmp_path):
    remote = _copy_remote(champion_remote, tmp_path)
    workflow = Workflow.load("model-monitoring.yml")
    results = []
    for run in (1, 2):
        ws = clone(remote, tmp_path / f"ws{run}")
        # Production traffic with four shifted features (predictions only, so the only alarm is drift).
        _mlops(ws, "simulate-traffic", "--rows", "1500", "--shift", "2.5", "--features", "4", "--seed", str(run),
               "--no-feedback")  # fmt: skip
        result = _runner(ws, fake, 100 + run).run(workflow, event="schedule")
        _ok(result)
        assert result.step("monitor").outputs["drift"] == "true"
        assert result.step("Analyze canary").outcome == "skipped"  # no canary deployed
        results.append(result)

    issues = fake.issues()
    assert len(issues) == 1, [i["title"] for i in issues]
    (issue,) = issues
    assert issue["state"] == "open" and "drift-alert" in set(issue["_labels"])
    assert len(fake.comments_on(issue["number"])) >= 1  # the second run commented instead of opening
    assert fake.count("POST", r"/issues$") == 1
    dispatches = fake.repo().dispatches
    assert [d["workflow"] for d in dispatches] == ["ml-training.yml"]  # the cool-down held on run 2
    assert "drift" in dispatches[0]["inputs"]["reason"]
    # Both runs committed their report and state; the second saw the first's through the remote.
    log = remote_log(remote)
    assert log[:2] == ["monitoring: run 102", "monitoring: run 101"]
    assert any(f.startswith("metadata/reports/monitoring/") for f in remote_files(remote))
    assert "Monitoring" in results[0].summary or "drift" in results[0].summary.lower()


# ---- training -------------------------------------------------------------------------------------------------


def test_training_promotes_and_pushes_card_and_audit_while_another_push_lands(fake, tmp_path):
    remote = seed_remote(tmp_path / "bare", config={**FAST, "training": {**FAST["training"],
                         "promotion": {"deploy_after_promotion": True}}})  # fmt: skip
    ws = clone(remote, tmp_path / "ws")
    other = clone(remote, tmp_path / "other")

    # A push that is truly in flight at the same time: the remote's pre-receive hook holds the
    # workflow's first push until another clone's push has landed, so the workflow's ref update
    # then finds main moved and is rejected; scripts/commit-state must fetch, rebase and win.
    entered, landed = tmp_path / "workflow-push-entered", tmp_path / "other-push-landed"
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\n"
        "read old new ref\n"
        f'case "$(git log -1 --format=%s "$new")" in training:*) ;; *) exit 0 ;; esac\n'
        f"[ -e {entered} ] && exit 0\n"
        f"touch {entered}\n"
        f"i=0; while [ ! -e {landed} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n"
    )
    hook.chmod(0o755)
    errors: list[BaseException] = []

    def other_push() -> None:
        try:
            for _ in range(3000):
                if entered.exists():
                    break
                time.sleep(0.05)
            (other / "docs").mkdir(exist_ok=True)
            (other / "docs" / "concurrent.md").write_text("pushed while training ran\n")
            env = {**os.environ, **GIT_ENV}
            subprocess.run(["git", "add", "docs/concurrent.md"], cwd=other, check=True, env=env)
            subprocess.run(["git", "commit", "-qm", "docs: concurrent push"], cwd=other, check=True, env=env)
            subprocess.run(["git", "push", "-q", "origin", "main"], cwd=other, check=True, env=env)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            landed.touch()

    pusher = threading.Thread(target=other_push, daemon=True)

    def concurrent_push(step: dict) -> None:
        if step.get("name") == "Commit state":
            pusher.start()

    result = _runner(ws, fake, 301, before_step=concurrent_push).run(
        Workflow.load("ml-training.yml"), event="workflow_dispatch", inputs={"no_download": True, "reason": "drift"}
    )
    pusher.join(timeout=60)
    assert not errors and entered.exists()
    _ok(result)
    train = result.step("train").outputs
    assert train["promoted"] == "true"
    version = train["version"]
    commit = result.step("Commit state")
    assert "pushed to main in 2 attempt(s)" in commit.stdout, commit.stdout + commit.stderr
    assert "push attempt 1/5 failed" in commit.stderr and "push attempt 2/5" not in commit.stderr
    assert "rejected" in commit.stderr  # the ref moved under the in-flight push
    assert remote_log(remote)[:3] == ["training: run 301 (workflow_dispatch): drift", "docs: concurrent push", "seed"]
    files = remote_files(remote)
    assert "docs/concurrent.md" in files
    assert f"metadata/cards/{version}.md" in files and "models/current/manifest.json" in files
    assert any(f.startswith("metadata/audit/entries-") for f in files)
    # The pushed audit log verifies, and holds the promotion.
    check = clone(remote, tmp_path / "check")
    assert "audit log ok" in _mlops(check, "audit", "verify").stdout
    entries = "".join(p.read_text() for p in (check / "metadata" / "audit").glob("entries-*.jsonl"))
    assert '"promotion"' in entries and version in entries
    # deploy_after_promotion: deploy.yml was dispatched for the promoted version.
    assert fake.repo().dispatches == [{"workflow": "deploy.yml", "ref": "main",
                                       "inputs": {"mode": "auto", "version": version}}]  # fmt: skip
    assert "### State commit" in result.summary
    assert (tmp_path / "artifacts" / "training-301" / ".mlflow").is_dir()  # hidden folder uploaded on purpose


def test_training_carries_the_mlflow_store_to_the_next_run_through_the_cache(fake, tmp_path):
    import sqlite3

    remote = seed_remote(tmp_path / "bare", config=FAST)
    workflow = Workflow.load("ml-training.yml")
    restored = []
    for run in (401, 402):
        ws = clone(remote, tmp_path / f"ws{run}")
        result = _runner(ws, fake, run).run(workflow, event="workflow_dispatch", inputs={"no_download": True})
        _ok(result)
        restore = result.step("Restore the MLflow store of earlier runs")
        restored.append(restore.outputs["cache-matched-key"])
        assert (
            f"Cache saved with key: mlflow-store-{run}-1"
            in result.step("Save the MLflow store for the next run").stdout
        )
    assert restored == ["", "mlflow-store-401-1"]
    with sqlite3.connect(tmp_path / "ws402" / ".mlflow" / "mlflow.db") as db:
        parents = sorted(name for (name,) in db.execute("select name from runs where name like 'train-%'"))
    assert len(parents) == 2  # the second run's store holds the first run too
    # the store itself never reaches git: only the cache and the run's artifact carry it
    assert not any(f.startswith(".mlflow/") for f in remote_files(remote))


# ---- dataset validation ---------------------------------------------------------------------------------------------


def test_dataset_validation_on_a_stale_dataset_opens_a_data_quality_issue(fake, tmp_path):
    remote = seed_remote(tmp_path / "bare", config=FAST)
    ws = clone(remote, tmp_path / "ws")
    # The cached copy was fetched 45 days ago (config: refresh_interval_days 30).
    _mlops(ws, "data", "validate", "--no-download", "--no-alerts", MLOPS_NOW="2026-10-01T08:00:00Z")
    subprocess.run(["git", "checkout", "-q", "--", "."], cwd=ws, check=True)
    subprocess.run(["git", "clean", "-qfd", "metadata"], cwd=ws, check=True)
    result = _runner(ws, fake, 401, extra_env={"MLOPS_NOW": "2026-11-15T08:00:00Z"}).run(
        Workflow.load("dataset-validation.yml"), event="schedule"
    )
    data = result.step("data")
    assert data.outcome == "failure" and data.code == 1, result.log()
    assert data.outputs["stale"] == "true" and data.outputs["valid"] == "false"
    assert result.step("Commit state").outcome == "success", result.log()
    (issue,) = fake.issues()
    labels = set(issue["_labels"])
    assert "data-quality" in labels and "Stale dataset" in issue["title"]
    assert remote_log(remote)[0] == "dataset validation: run 401"


def test_a_protected_main_in_pull_request_mode_ends_with_an_open_pull_request(fake, tmp_path):
    """commit.mode pull-request: the state goes to a branch and one pull request with auto-merge; main is untouched."""
    config = {**FAST, "gitops": {"commit": {"mode": "pull-request", "backoff_base_seconds": 0.05}}}
    remote = seed_remote(tmp_path / "bare", config=config)
    hook = remote / "hooks" / "pre-receive"  # what github.com answers a direct push to a protected branch
    hook.write_text(
        "#!/bin/sh\n"
        "while read old new ref; do\n"
        '  if [ "$ref" = refs/heads/main ]; then\n'
        "    echo 'error: GH006: Protected branch update failed for refs/heads/main.' >&2; exit 1\n"
        "  fi\n"
        "done\n"
    )
    hook.chmod(0o755)
    fake.repo().allow_auto_merge = True
    ws = clone(remote, tmp_path / "ws")
    result = _runner(ws, fake, 1101).run(Workflow.load("dataset-validation.yml"), event="schedule")
    _ok(result)
    commit = result.step("Commit state")
    (pull,) = fake.pulls(state="open")
    assert (pull["head"]["ref"], pull["base"]["ref"]) == ("mlops-state/1101-1", "main")
    assert pull["title"] == "dataset validation: run 1101"
    assert pull["auto_merge"] == {"merge_method": "merge", "enabled_by": {"login": "github-actions[bot]"}}
    assert commit.outputs["pull_request"] == pull["html_url"] and commit.outputs["auto_merge"] == "enabled"
    assert remote_log(remote) == ["seed"]  # nothing reached the protected main
    assert remote_log(remote, "mlops-state/1101-1") == ["dataset validation: run 1101", "seed"]
    state = [f for f in remote_files(remote, "mlops-state/1101-1") if f not in set(remote_files(remote))]
    assert state and all(f.startswith("metadata/") for f in state), state
    assert "### State commit" in result.summary


# ---- experiment report on pull requests ---------------------------------------------------------------------------


def _pr_payload(number: int, sha: str, head_repo: str = "acme/model") -> dict:
    return {
        "number": number,
        "pull_request": {
            "number": number,
            "merge_sha": sha,
            "head": {"ref": "experiment", "sha": sha, "repo": {"full_name": head_repo}},
            "base": {"ref": "main", "repo": {"full_name": "acme/model"}},
        },
    }


def test_two_pull_request_runs_leave_one_comment_updated_by_the_second(champion_remote, fake, tmp_path):
    number = fake.add_pull("Try a stronger regulariser")
    workflow = Workflow.load("experiment-report.yml")
    bodies = []
    for run, sha in ((1, "a" * 40), (2, "b" * 40)):
        ws = clone(champion_remote, tmp_path / f"ws{run}")
        result = _runner(ws, fake, 500 + run).run(workflow, event="pull_request", payload=_pr_payload(number, sha))
        _ok(result)
        (comment,) = fake.comments_on(number)
        bodies.append(comment["body"])
        assert "Experiment report" in result.summary
    assert fake.count("POST", rf"/issues/{number}/comments$") == 1
    assert fake.count("PATCH", r"/issues/comments/\d+$") == 1
    assert "<!-- mlops-experiment-report -->" in bodies[1]
    assert "`aaaaaaaaaaaa`" in bodies[0] and "`bbbbbbbbbbbb`" in bodies[1] and "`aaaaaaaaaaaa`" not in bodies[1]
    assert "Gate decision" in bodies[1] and "champion" in bodies[1]


def test_a_forks_pull_request_gets_the_report_in_the_job_summary(champion_remote, fake, tmp_path):
    number = fake.add_pull("From a fork")
    ws = clone(champion_remote, tmp_path / "ws")
    result = _runner(ws, fake, 601).run(
        Workflow.load("experiment-report.yml"), event="pull_request", payload=_pr_payload(number, "c" * 40, "fork/m")
    )
    _ok(result)
    assert fake.comments_on(number) == []
    assert "Experiment report" in result.summary and "Gate decision" in result.summary


def test_a_forks_pull_request_under_audit_signing_reports_without_the_key(champion_remote, fake, tmp_path):
    """checkpoint-key.pub is on main; the fork's run has no secrets and appends nothing to the shared log."""
    remote = _copy_remote(champion_remote, tmp_path)
    setup = clone(remote, tmp_path / "setup")
    _mlops(setup, "audit", "keygen")  # the private key is printed once and not kept: no run below has it
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "add", "metadata/audit"], cwd=setup, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "audit: sign checkpoints"], cwd=setup, check=True, env=env)
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=setup, check=True, env=env)
    number = fake.add_pull("From a fork, with signing on")
    ws = clone(remote, tmp_path / "ws")
    result = _runner(ws, fake, 602).run(
        Workflow.load("experiment-report.yml"), event="pull_request", payload=_pr_payload(number, "d" * 40, "fork/m")
    )
    _ok(result)
    assert "Gate decision" in result.summary and "Training failed" not in result.summary
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--", "metadata/audit"], cwd=ws, capture_output=True, text=True, check=True
    ).stdout
    assert changed == ""  # the experiment's events went to a throw-away log
    assert fake.comments_on(number) == []


def test_a_forks_pull_request_trains_on_the_kaggle_copy_the_last_training_run_saved(fake, tmp_path):
    """config/examples' Telco set as the source: the report restores datasets/cache/kaggle/ from the Actions cache."""
    from tests.test_config_examples import COLUMNS, EXAMPLES, TELCO, telco_rows

    def telco(seed: Path) -> None:
        for name, example in TELCO.items():
            doc = json.loads((EXAMPLES / example).read_text())
            doc["$schema"] = f"./schemas/{name}.schema.json"
            if name == "training-schedule":
                doc["datasets"]["minimum_samples"] = 1000  # the fixture is smaller than the real 7,043 rows
            (seed / "config" / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")

    remote = seed_remote(tmp_path / "bare", config={"training": FAST["training"]}, prepare=telco)
    # What ml-training.yml's "Save the downloaded data set" step left in the cache after a download.
    saved = tmp_path / "actions-cache" / "kaggle-data-700-1" / "datasets/cache/kaggle/blastchar__telco-customer-churn"
    saved.mkdir(parents=True)
    with (saved / "WA_Fn-UseC_-Telco-Customer-Churn.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(telco_rows(1500, seed=5))
    number = fake.add_pull("Telco: try fewer features")
    ws = clone(remote, tmp_path / "ws")
    result = _runner(ws, fake, 701).run(
        Workflow.load("experiment-report.yml"), event="pull_request", payload=_pr_payload(number, "e" * 40, "fork/m")
    )
    _ok(result)
    restore = result.step("Restore the data set the last training run downloaded")
    assert restore.outputs["cache-matched-key"] == "kaggle-data-700-1", restore.stdout
    assert "Gate decision" in result.summary and "Training failed" not in result.summary
    assert "SYNTHETIC" not in result.step("Train and report").stderr  # the Telco copy, not the fallback


def _two_versions(seed: Path) -> None:
    """Champion A deployed to production, then a better B promoted to models/current (A archived)."""
    _train_champion(seed)
    _mlops(seed, "deploy", "--mode", "full", "--reason", "first production")
    _mlops(seed, "train", "--no-download", "--no-tracking", "--model-types", "hist_gradient_boosting")


def _deployment(root: Path) -> dict:
    return json.loads((root / "models" / "deployment.json").read_text())


@pytest.fixture(scope="module")
def two_versions_remote(tmp_path_factory) -> Path:
    """A remote whose main has A in production and a better B in models/current (A archived)."""
    config = {**FAST, "gitops": {"commit": {"max_attempts": 1}}}
    return seed_remote(tmp_path_factory.mktemp("two"), config=config, prepare=_two_versions)


def test_deploy_commits_the_new_state_and_rolls_back_when_the_commit_fails(two_versions_remote, fake, tmp_path):
    remote = _copy_remote(two_versions_remote, tmp_path)
    before = _deployment(clone(remote, tmp_path / "before"))
    first = before["production"]["version"]
    # The remote refuses exactly one push (the deployment's), then accepts (the rollback's).
    hook = remote / "hooks" / "pre-receive"
    flag = tmp_path / "refused-once"
    hook.write_text(f"#!/bin/sh\nif [ ! -e {flag} ]; then touch {flag}; echo 'protected' >&2; exit 1; fi\n")
    hook.chmod(0o755)
    ws = clone(remote, tmp_path / "ws")
    result = _runner(ws, fake, 801).run(Workflow.load("deploy.yml"), inputs={"mode": "full"})
    outcomes = {s.name: s.outcome for s in result.steps}
    assert outcomes["Deploy"] == "success" and outcomes["Commit deployment state"] == "failure", result.log()
    assert outcomes["Roll back"] == "success" and outcomes["Commit rollback"] == "success", result.log()
    after = _deployment(clone(remote, tmp_path / "after"))
    assert after["production"]["version"] == first
    assert [h["action"] for h in after["history"]][-2:] == ["deploy-full", "rollback"]
    assert "failed after the deployment state changed" in after["history"][-1]["reason"]
    assert remote_log(remote)[0] == "rollback: deploy run 801 failed"

    # With the remote accepting pushes, the same dispatch deploys and commits, and nothing rolls back.
    # The default mode, auto, is a canary now that something is in production.
    ws2 = clone(remote, tmp_path / "ws2")
    ok = _runner(ws2, fake, 802).run(Workflow.load("deploy.yml"), inputs={"traffic": "0.2"})
    _ok(ok)
    assert ok.step("state").outputs["auto_mode"] == "canary"
    assert ok.step("Roll back").outcome == "skipped"
    state = _deployment(clone(remote, tmp_path / "after2"))
    assert state["production"]["version"] == first and state["canary"]["traffic"] == 0.2
    assert state["canary"]["version"] != first
    assert remote_log(remote)[0] == "deploy: canary run 802"


def _version_of_current(root: Path) -> str:
    return json.loads((root / "models" / "current" / "manifest.json").read_text())["version"]


def test_a_refused_deployment_commits_its_gate_record_audit_entry_and_alert(two_versions_remote, fake, tmp_path):
    remote = _copy_remote(two_versions_remote, tmp_path)
    # Someone's push flipped one byte of the candidate's model file: the integrity gate refuses it.
    setup = clone(remote, tmp_path / "setup")
    candidate = _version_of_current(setup)
    model = setup / "models" / "current" / "model.skops"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "commit", "-qam", "tamper"], cwd=setup, check=True, env=env)
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=setup, check=True, env=env)
    before = _deployment(setup)

    ws = clone(remote, tmp_path / "ws")
    result = _runner(ws, fake, 851).run(Workflow.load("deploy.yml"), inputs={"mode": "canary"})
    deploy = result.step("deploy")
    assert deploy.outcome == "failure" and "deployment refused by gate integrity" in deploy.stderr, result.log()
    assert result.step("commit").outcome == "success", result.log()
    assert result.step("Roll back").outcome == "skipped"  # nothing changed, so nothing to undo
    assert remote_log(remote)[:2] == ["deploy: canary run 851 (failure)", "tamper"]
    after = clone(remote, tmp_path / "after")
    assert _deployment(after) == before
    records = sorted((after / "metadata" / "deployments").glob(f"*-canary-{candidate}.json"))
    assert records and json.loads(records[-1].read_text())["decision"] == "refused"
    entries = "".join(p.read_text() for p in (after / "metadata" / "audit").glob("entries-*.jsonl"))
    assert '"gate_decision"' in entries and candidate in entries
    assert "audit log ok" in _mlops(after, "audit", "verify").stdout
    assert any("Deployment refused" in i["title"] for i in fake.issues()), [i["title"] for i in fake.issues()]


def test_a_crafted_version_input_stays_one_argument(two_versions_remote, fake, tmp_path):
    """`x --mode=full` once split into a second --mode; now it is one (unknown) version and nothing deploys."""
    remote = _copy_remote(two_versions_remote, tmp_path)
    ws = clone(remote, tmp_path / "ws")
    candidate = _version_of_current(ws)
    before = _deployment(ws)
    crafted = f"{candidate} --mode=full"
    result = _runner(ws, fake, 861).run(Workflow.load("deploy.yml"), inputs={"mode": "canary", "version": crafted})
    deploy = result.step("deploy")
    assert deploy.outcome == "failure" and deploy.code == 2, result.log()
    assert f"version {crafted}: is not a model version id" in deploy.stderr, deploy.stderr
    assert result.step("Roll back").outcome == "skipped"
    assert _deployment(clone(remote, tmp_path / "after")) == before  # production untouched, no canary
    assert remote_log(remote)[0] == "seed"


def test_a_first_deployment_with_the_default_mode_is_full(champion_remote, fake, tmp_path):
    remote = _copy_remote(champion_remote, tmp_path)
    ws = clone(remote, tmp_path / "ws")
    assert not (ws / "models" / "deployment.json").exists()
    result = _runner(ws, fake, 871).run(Workflow.load("deploy.yml"))  # mode: auto, the default
    _ok(result)
    assert result.step("state").outputs["auto_mode"] == "full"
    state = _deployment(clone(remote, tmp_path / "after"))
    assert state["production"]["version"] == _version_of_current(ws) and state["canary"] is None
    assert remote_log(remote)[0] == "deploy: full run 871"


def test_ci_audit_job_accepts_appends_and_refuses_a_rewritten_log(champion_remote, fake, tmp_path):
    workflow = Workflow.load("ci.yml")
    payload = _pr_payload(7, "f" * 40)
    honest = clone(champion_remote, tmp_path / "honest")
    _mlops(honest, "audit", "record", "--type", "alert_opened", "--payload", '{"note": "appended on a branch"}')
    subprocess.run(["git", "add", "metadata"], cwd=honest, check=True)
    subprocess.run(["git", "commit", "-qm", "append"], cwd=honest, check=True, env={**os.environ, **GIT_ENV})
    _ok(_runner(honest, fake, 901).run(workflow, "audit", event="pull_request", payload=payload))

    forged = clone(champion_remote, tmp_path / "forged")
    # A self-consistent rewrite (fresh entries and checkpoints) passes a local verify; only the
    # comparison with the base branch can tell that main's history was dropped.
    shutil.rmtree(forged / "metadata" / "audit")
    _mlops(forged, "audit", "record", "--type", "training_run", "--payload", '{"note": "a different past"}')
    assert "audit log ok" in _mlops(forged, "audit", "verify").stdout
    subprocess.run(["git", "add", "-A", "metadata"], cwd=forged, check=True)
    subprocess.run(["git", "commit", "-qam", "rewrite history"], cwd=forged, check=True, env={**os.environ, **GIT_ENV})
    result = _runner(forged, fake, 902).run(workflow, "audit", event="pull_request", payload=payload)
    step = result.step("Verify against the base")
    assert step.outcome == "failure" and step.code == 1, result.log()
    assert "origin/main" in step.stderr, step.stderr


def test_a_checkout_without_persisted_credentials_cannot_push(tmp_path):
    """The harness's checkout equivalent: `persist-credentials: false` leaves the job unable to push."""
    remote = seed_remote(tmp_path / "bare")
    workflow = tmp_path / "probe.yml"
    checkout = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1"
    setup = "actions/setup-python@5fda3b95a4ea91299a34e894583c3862153e4b97"
    for persist, expected in ((False, "failure"), (True, "success")):
        workflow.write_text(json.dumps({
            "on": {"workflow_dispatch": {}}, "permissions": {},
            "jobs": {"j": {"runs-on": "ubuntu-latest", "permissions": {"contents": "write"}, "steps": [
                {"uses": checkout, "with": {"persist-credentials": persist}},
                {"uses": setup, "with": {"python-version": "3.11"}},
                {"run": "mlops audit record --type training_run --payload '{}'"},
                {"name": "push", "run": "scripts/commit-state --message probe"},
            ]}},
        }))  # fmt: skip
        ws = clone(remote, tmp_path / f"ws-{persist}")
        result = Runner(ws, run_id=1 + persist).run(Workflow.load(workflow))
        assert result.step("push").outcome == expected, result.log()
    assert remote_log(remote) == ["probe", "seed"]


def test_monitoring_analyzes_a_running_canary_and_commits_the_decision(two_versions_remote, fake, tmp_path):
    remote = _copy_remote(two_versions_remote, tmp_path)
    setup = clone(remote, tmp_path / "setup")
    # The canary started seven hours ago, so the whole simulated six-hour window is canary traffic.
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7 * 3600))
    _mlops(setup, "deploy", "--mode", "canary", "--traffic", "0.3", "--reason", "try the new champion",
           MLOPS_NOW=started)  # fmt: skip
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "add", "-A", "models", "metadata"], cwd=setup, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "canary"], cwd=setup, check=True, env=env)
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=setup, check=True, env=env)
    before = _deployment(setup)
    canary = before["canary"]["version"]

    ws = clone(remote, tmp_path / "ws")
    _mlops(ws, "simulate-traffic", "--rows", "3000", "--seed", "5")  # no shift, with feedback
    result = _runner(ws, fake, 1001).run(Workflow.load("model-monitoring.yml"), event="schedule")
    assert result.step("deployment").outputs["canary"] == canary
    analyze = result.step("Analyze canary")
    assert analyze.outcome == "success", result.log()
    assert analyze.outputs["decision"] == "promote" and analyze.outputs["applied"] == "true", analyze.stdout
    after = _deployment(clone(remote, tmp_path / "after"))
    assert after["production"]["version"] == canary and after["canary"] is None
    assert after["history"][-1]["action"] == "promote-canary"


def _copy_remote(remote: Path, tmp_path: Path) -> Path:
    """A private copy of a module-scoped remote, so one test's pushes never reach another's."""
    dest = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(remote), str(dest)], check=True)
    return dest


def test_harness_refuses_a_workflow_that_breaks_the_rules(tmp_path):
    from tests.support.workflow_harness import HarnessError

    bad = tmp_path / "bad.yml"
    bad.write_text(
        json.dumps(
            {
                "on": {"workflow_dispatch": {"inputs": {"x": {"type": "string", "default": ""}}}},
                "permissions": {},
                "jobs": {
                    "j": {"runs-on": "ubuntu-latest", "steps": [{"run": "mlops train --model-types ${{ inputs.x }}"}]}
                },
            }
        )
    )
    ws = tmp_path / "ws"
    ws.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(ws)], check=True)
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "x"], cwd=ws, check=True, env={**os.environ, **GIT_ENV}
    )
    with pytest.raises(HarnessError, match=r"inside run: \(pass it through env:\)"):
        Runner(ws).run(Workflow.load(bad), inputs={"x": "a; rm -rf /"})
    with pytest.raises(HarnessError, match="declares no input"):
        Runner(ws).run(Workflow.load(bad), inputs={"y": "1"})


# ---- training as a matrix (config/training.json /matrix) ---------------------------------------------------


@pytest.mark.slow
def test_training_matrix_runs_plan_shards_and_a_gate_that_commits_state(fake, tmp_path):
    training = {**FAST["training"], "model_types": ["logistic_regression", "extra_trees"]}
    config = {**FAST, "training": {**training, "matrix": {"enabled": True, "width": 2}}}
    remote = seed_remote(tmp_path / "bare", config=config)
    artifacts = tmp_path / "artifacts"
    runner = _runner(tmp_path / "unused", fake, 501, artifacts=artifacts)

    def fresh_clone(job: str, index: int) -> Path:  # every job (and matrix item) on its own runner
        return clone(remote, tmp_path / f"ws-{job}-{index}")

    ran = runner.run_graph(Workflow.load("ml-training.yml"), fresh_clone, inputs={"no_download": True})
    assert sorted(ran) == ["gate", "plan", "shard"]  # the one-job `train` was skipped
    for results in ran.values():
        for result in results:
            _ok(result)
    assert ran["plan"][0].outputs["sharded"] == "true"
    shards = [r.step("Train shard").stdout for r in ran["shard"]]
    assert "shard 1/2: 1 candidate(s)" in shards[0] and "shard 2/2: 1 candidate(s)" in shards[1]
    assert sorted(p.name for p in artifacts.iterdir() if p.name.startswith("candidates-")) == [
        "candidates-1",
        "candidates-2",
    ]
    gate = ran["gate"][0]
    outputs = gate.step("train").outputs
    assert outputs["promoted"] == "true"
    assert "pushed to main" in gate.step("Commit state").stdout
    check = clone(remote, tmp_path / "check")
    current = json.loads((check / "models/current/manifest.json").read_text())
    assert current["version"] == outputs["version"]
    assert len(list((check / "metadata/gates").glob("*.json"))) == 2  # both shards' candidates, gated once
    assert (check / "metadata/cards" / f"{outputs['version']}.md").exists()
    assert "audit log ok" in _mlops(check, "audit", "verify").stdout
