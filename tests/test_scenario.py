"""Weeks of operation on one machine, as on GitHub (issue 15's acceptance scenario).

Simulated time drives the workflows' own run-steps (tests/support/workflow_harness.py). Each job runs
in a fresh clone of a bare git remote, so state passes only through git, the log store and the fake
GitHub server. `mlops serve --follow` runs as its own process on a clock file (MLOPS_NOW=@FILE) and
answers the simulated traffic and feedback over HTTP; its write-ahead log ships to the store.

Week 1 trains, promotes and deploys full. In week 2 four features shift; monitoring opens one drift
issue and dispatches retraining with its window; the retrain uses the labelled production window and
promotes; the dispatched deploy is a canary; the server converges to it; canary analysis on the logged
window promotes it; after three clean windows the drift issue closes. Run on an S3 store (moto's
server) with the first dispatch answering 502, and on a local folder with Issues disabled (410).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.fake_github import DEFAULT_TOKEN, Fault
from tests.support.http import call
from tests.support.workflow_harness import GIT_ENV, Runner, Workflow, clone, seed_remote

pytestmark = pytest.mark.slow

T0 = dt.datetime(2026, 11, 2, 0, 0, tzinfo=dt.UTC)  # a Monday
SHIFTED = ["support_calls", "late_payments", "logins_30d", "days_since_login"]  # no upper bound in the contract
CONFIG = {
    "training": {"model_types": ["logistic_regression"], "bootstrap_iterations": 20,
                 "promotion": {"deploy_after_promotion": True}},
    "training-schedule": {"datasets": {"minimum_samples": 1000}},
    "dataset": {"synthetic": {"rows": 6000}},
    "monitoring": {"evidently_report": False, "min_rows": 300, "min_feedback_rows": 100},
    "deployment": {"canary_traffic": 0.3, "canary_analysis": {"min_requests": 100, "min_feedback": 50}},
    "alerts": {"delivery": {"seconds_between_writes": 0}},
    "gitops": {"commit": {"backoff_base_seconds": 0.05}},
}  # fmt: skip


def iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class Scenario:
    """One fork: the bare remote, the fake GitHub, the store, the clock, the follower and a timeline."""

    def __init__(self, tmp: Path, fake, store_uri: str, store_env: dict[str, str]):
        self.tmp, self.fake, self.store_env = tmp, fake, store_env
        config = {**CONFIG, "store": {"uri": store_uri, "part_max_age_seconds": 1, "part_max_rows": 500}}
        self.remote = seed_remote(tmp / "bare", config=config)
        self.clock = tmp / "clock"
        self.timeline: list[str] = []
        self.seen_dispatches = 0
        self.server: subprocess.Popen | None = None
        self.base = ""
        self.served: dict[str, str] = {}  # request id -> role that answered

    def note(self, when: dt.datetime, text: str) -> None:
        self.timeline.append(f"{iso(when)}  {text}")

    # -- jobs --------------------------------------------------------------------------------------------------
    def job(self, name: str, when: dt.datetime, run_id: int, *, event: str = "workflow_dispatch", inputs=None):
        ws = clone(self.remote, self.tmp / f"ws-{run_id}")
        env = {"MLOPS_NOW": iso(when), **self.store_env}
        runner = Runner(ws, api_url=self.fake.url, token=DEFAULT_TOKEN, run_id=run_id, extra_env=env)
        result = runner.run(Workflow.load(name), event=event, inputs=inputs or {})
        assert not result.failed, result.log()
        shutil.rmtree(ws)
        return result

    def new_dispatches(self) -> list[dict]:
        dispatches = self.fake.repo().dispatches
        out, self.seen_dispatches = dispatches[self.seen_dispatches :], len(dispatches)
        return out

    def state(self) -> dict:
        out = subprocess.run(["git", "show", "main:models/deployment.json"], cwd=self.remote,
                             capture_output=True, text=True, check=True)  # fmt: skip
        return json.loads(out.stdout)

    # -- the server --------------------------------------------------------------------------------------------
    def start_server(self, when: dt.datetime) -> None:
        self.clock.write_text(iso(when))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "GITHUB_", "AWS_"))}
        env.update({"MLOPS_NOW": f"@{self.clock}", **self.store_env, **GIT_ENV})
        argv = ["serve", "--port", "0", "--follow", str(self.remote), "--interval", "0.3",
                "--workdir", str(self.tmp / "follow")]  # fmt: skip
        self.server = subprocess.Popen([sys.executable, "-m", "mlops", "--repo", str(self.tmp), *argv],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
        for _ in range(4):
            line = self.server.stdout.readline()
            if line.startswith("serving on http://"):
                self.base = line.split()[2]
                return
        raise AssertionError(f"the follower did not start: {line}{self.server.stderr.read()}")

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=60)

    def status(self) -> dict:
        return call(f"{self.base}/status")[1]

    def converge(self, what: str, ok, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status()
            if ok(status):
                return status
            time.sleep(0.3)
        raise AssertionError(f"/status never showed {what}: {json.dumps(self.status(), indent=1)}")

    # -- traffic -----------------------------------------------------------------------------------------------
    def traffic(self, when: dt.datetime, rows: int, *, shift: float, seed: int) -> dict[str, int]:
        """POST `rows` predictions at `when` (the server's clock) and their true labels as feedback."""
        from mlops import synthetic

        self.clock.write_text(iso(when))
        frame = synthetic.generate(rows, seed)
        scale = synthetic.generate(5000, 0)[SHIFTED].std()  # one fixed shift for every batch
        for column in SHIFTED:
            frame[column] = frame[column] + shift * float(scale[column])
        labels = frame.pop(synthetic.LABEL).astype(int).tolist()
        ids = [f"r{seed}-{i:05d}" for i in range(rows)]
        records = json.loads(frame.to_json(orient="records"))
        roles: dict[str, int] = {}
        for start in range(0, rows, 250):
            chunk = zip(ids[start : start + 250], records[start : start + 250], strict=True)
            batch = [{"request_id": r, "features": f} for r, f in chunk]
            code, body = call(f"{self.base}/predict", {"instances": batch})
            assert code == 200, body
            for answer in body["predictions"]:
                self.served[answer["request_id"]] = answer["role"]
                roles[answer["role"]] = roles.get(answer["role"], 0) + 1
        feedback = [{"request_id": r, "label": y} for r, y in zip(ids, labels, strict=True)]
        for start in range(0, rows, 500):
            code, body = call(f"{self.base}/feedback", {"feedback": feedback[start : start + 500]})
            assert code == 200, body
        self.converge("the store backlog shipped", lambda s: s["store"]["backlog_rows"] == 0)
        self.note(when, f"traffic: {rows} rows (shift {shift} sd), roles {roles}, labels sent")
        return roles


def run_scenario(sc: Scenario, *, issues_on: bool) -> None:
    fake = sc.fake
    # Week 1: train, promote, and the dispatched deploy is full (nothing in production yet).
    week1 = T0 + dt.timedelta(hours=2)
    train = sc.job("ml-training.yml", week1, 1, inputs={"no_download": True, "reason": "week 1"}).step("train")
    assert train.outputs["promoted"] == "true", train.stdout
    v1 = train.outputs["version"]
    (deploy,) = sc.new_dispatches()
    assert deploy["workflow"] == "deploy.yml" and deploy["inputs"] == {"mode": "auto", "version": v1}
    sc.note(week1, f"training run 1 promoted {v1}; deploy.yml dispatched (auto)")
    result = sc.job("deploy.yml", week1 + dt.timedelta(minutes=20), 2, inputs=deploy["inputs"])
    assert result.step("state").outputs["auto_mode"] == "full"
    assert sc.state()["production"]["version"] == v1 and sc.state()["canary"] is None
    sc.note(week1, f"deploy run 2: {v1} full")

    sc.start_server(week1 + dt.timedelta(minutes=30))
    sc.converge("v1 in production", lambda s: s["state"]["production"] == v1)
    sc.note(week1, f"mlops serve --follow serves {v1}")

    # The team switches retraining to labelled production data (a reviewed commit).
    ws = clone(sc.remote, sc.tmp / "switch")
    path = ws / "config" / "dataset.json"
    data = json.loads(path.read_text())
    data["source"] = "production"
    data["production"] = {"mix_base": False, "min_labelled_rows": 1000}
    path.write_text(json.dumps(data, indent=2) + "\n")
    env = {**os.environ, **GIT_ENV}
    subprocess.run(
        ["git", "commit", "-qam", "dataset: retrain on labelled production data"], cwd=ws, env=env, check=True
    )
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=ws, env=env, check=True)

    # Day 1: clean traffic; monitoring sees no drift.
    day1 = T0 + dt.timedelta(days=1)
    sc.traffic(day1 + dt.timedelta(hours=2), 800, shift=0.0, seed=1)
    mon = sc.job("model-monitoring.yml", day1 + dt.timedelta(hours=6), 3, event="schedule").step("monitor")
    assert mon.outputs["drift"] == "false", mon.stdout + mon.stderr
    sc.note(day1 + dt.timedelta(hours=6), "monitoring run 3: no drift")

    # Week 2: four features shift; one drift issue (when Issues are on) and a retrain dispatch with the window.
    week2 = T0 + dt.timedelta(days=8)
    sc.traffic(week2 + dt.timedelta(hours=3), 3000, shift=2.5, seed=2)
    mon = sc.job("model-monitoring.yml", week2 + dt.timedelta(hours=6), 4, event="schedule").step("monitor")
    assert mon.outputs["drift"] == "true", mon.stdout + mon.stderr
    dispatches, until = sc.new_dispatches(), week2 + dt.timedelta(hours=6)
    if not dispatches:  # the dispatch failed (502) and did not block the run; the next run dispatches
        assert "retrain" in mon.stdout + mon.stderr, mon.stdout + mon.stderr
        sc.note(until, "monitoring run 4: drift; the retrain dispatch got a 502, the run went on")
        until += dt.timedelta(minutes=30)
        mon = sc.job("model-monitoring.yml", until, 5, event="schedule").step("monitor")
        assert mon.outputs["drift"] == "true", mon.stdout + mon.stderr
        dispatches = sc.new_dispatches()
    (retrain,) = dispatches
    assert retrain["workflow"] == "ml-training.yml" and "drift" in retrain["inputs"]["reason"]
    since = until - dt.timedelta(hours=6)
    assert (retrain["inputs"]["since"], retrain["inputs"]["until"]) == (iso(since), iso(until))
    drift_issues = [i for i in fake.issues() if "drift-alert" in set(i["_labels"])]
    assert len(drift_issues) == (1 if issues_on else 0)
    sc.note(until, f"monitoring: drift; {len(drift_issues)} drift issue(s); retrain dispatched with its window")

    # The retrain trains on the labelled production window and promotes; its deploy is a canary.
    when = week2 + dt.timedelta(hours=7)
    train = sc.job("ml-training.yml", when, 6, inputs={**retrain["inputs"], "no_download": True}).step("train")
    assert train.outputs["promoted"] == "true", train.stdout + train.stderr
    v2 = train.outputs["version"]
    ws = clone(sc.remote, sc.tmp / "check-v2")
    manifest = json.loads((ws / "models" / "current" / "manifest.json").read_text())
    dataset = manifest["dataset"]
    assert dataset["source"] == "production", dataset
    assert dataset["production"]["rows"]["labelled"] == 3000, dataset["production"]["rows"]
    assert dataset["production"]["window"]["since"] == iso(since)
    sc.note(when, f"training run 6: {v2} trained on 3000 labelled production rows, promoted")
    (deploy,) = sc.new_dispatches()
    assert deploy["inputs"] == {"mode": "auto", "version": v2}
    result = sc.job("deploy.yml", when + dt.timedelta(minutes=20), 7, inputs=deploy["inputs"])
    assert result.step("state").outputs["auto_mode"] == "canary"
    sc.converge("the v2 canary", lambda s: s["state"] == {"production": v1, "canary": v2, "shadow": None})
    sc.note(when, f"deploy run 7: {v2} canary; the server converged to it")

    # Canary analysis on the logged window promotes it; the server follows.
    roles = sc.traffic(week2 + dt.timedelta(hours=9), 1500, shift=2.5, seed=3)
    assert roles.get("canary", 0) >= 100, roles
    when = week2 + dt.timedelta(hours=12)
    result = sc.job("model-monitoring.yml", when, 8, event="schedule")
    assert result.step("Analyze canary").outcome == "success", result.log()
    assert sc.state()["production"]["version"] == v2 and sc.state()["canary"] is None
    sc.converge("v2 in production", lambda s: s["state"] == {"production": v2, "canary": None, "shadow": None})
    sc.note(when, f"monitoring run 8: canary analysis promoted {v2}; the server converged")

    # Three clean windows close the drift issue.
    for k, run in enumerate((9, 10, 11)):
        when = week2 + dt.timedelta(hours=18 + 6 * k)
        # 1500 rows: at 600, one draw in ten puts a heavy-tailed noise feature over the 0.1 Wasserstein threshold.
        sc.traffic(when - dt.timedelta(hours=3), 1500, shift=2.5, seed=20 + k)
        mon = sc.job("model-monitoring.yml", when, run, event="schedule").step("monitor")
        assert mon.outputs["drift"] == "false", mon.stdout + mon.stderr
        sc.note(when, f"monitoring run {run}: clean")
    if issues_on:
        (issue,) = [i for i in fake.issues() if "drift-alert" in set(i["_labels"])]
        assert issue["state"] == "closed", issue
        sc.note(when, f"drift issue #{issue['number']} closed")
    else:
        # Nothing was lost: the alerts wait in the committed outbox for Issues to be enabled.
        ws = clone(sc.remote, sc.tmp / "check-outbox")
        queued = [json.loads(f.read_text()) for f in sorted((ws / "metadata" / "alerts" / "outbox").glob("*.json"))]
        drift = [(q["action"], q["queued_at"]) for q in queued if q["fingerprint"].startswith("drift:")]
        assert drift[0] == ("raise", iso(week2 + dt.timedelta(hours=6))) and drift[-1][0] == "resolve", drift
        assert all("410" in q["error"] for q in queued)
        sc.note(when, "Issues disabled (410): every alert and its resolution kept in metadata/alerts/outbox/")
    print("\n".join(sc.timeline))


def test_weeks_of_operation_on_an_s3_store_with_one_failed_dispatch(fake, tmp_path):
    from tests.support.moto_s3 import s3_server

    with s3_server() as s3:
        s3.bucket("mlops-logs")
        sc = Scenario(tmp_path, fake, "s3://mlops-logs/production", s3.env())
        fake.inject(Fault.server_error(502), route=r"/actions/workflows/ml-training\.yml/dispatches$", method="POST")
        try:
            run_scenario(sc, issues_on=True)
        finally:
            sc.stop_server()


def test_weeks_of_operation_on_a_local_store_with_issues_disabled(fake, tmp_path):
    fake.repo().has_issues = False
    sc = Scenario(tmp_path, fake, str(tmp_path / "store"), {})
    try:
        run_scenario(sc, issues_on=False)
    finally:
        sc.stop_server()
