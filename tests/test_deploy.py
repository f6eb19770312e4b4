"""Gated deployment end to end on temp repos: real models, real router, real MLflow, real git, real kill -9."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mlops import audit, deploy, registry
from mlops.config import CanaryAnalysis
from mlops.deploy.canary import decide, ks_statistic, tolerances
from mlops.repo import Repo
from mlops.serving import ModelRefused, Router
from tests.support.cli import run
from tests.support.deployed import copy_repo, feature_rows, set_config, template
from tests.support.repo import tree_snapshot


@pytest.fixture
def trained(tmp_path, tmp_path_factory):
    """A copy without the MLflow store (importing MLflow costs seconds); see `tracked` for one with it."""
    return copy_repo(template(tmp_path_factory), tmp_path / "repo", tracking=False)


@pytest.fixture
def tracked(tmp_path, tmp_path_factory):
    return copy_repo(template(tmp_path_factory), tmp_path / "repo")


@pytest.fixture
def live(trained):
    """v1 in production."""
    repo, v1, v2 = trained
    r = run(repo, "deploy", "--mode", "full", "--version", v1)
    assert r.code == 0, r.err
    return repo, v1, v2


def state(repo: Path) -> dict:
    return json.loads((repo / "models/deployment.json").read_text())


def log_records(repo: Path) -> list[dict]:
    out = []
    for p in sorted((repo / "datasets/production").glob("predictions-*.jsonl")):
        out += [json.loads(line) for line in p.read_text().splitlines()]
    return out


def outbox(repo: Path) -> list[dict]:
    folder = repo / "metadata/alerts/outbox"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []


def champion_tag(repo: Path) -> str:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{repo / '.mlflow' / 'mlflow.db'}")
    return client.get_model_version_by_alias("customer-churn-classifier", "champion").tags["mlops.version"]


def audit_types(repo: Path) -> list[str]:
    lines = []
    for p in sorted((repo / "metadata/audit").glob("entries-*.jsonl")):
        lines += [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    return [e["type"] for e in lines]


def recorded(repo: Path) -> str:
    """The newest deployment event records the state on disk (state_sha256; null for no file): its action."""
    from mlops.audit.verify import recorded_state, state_sha256

    newest = recorded_state(audit.read_dir(repo / "metadata/audit").lines)
    assert newest is not None
    payload = newest[1]["payload"]
    on_disk = state(repo) if (repo / "models/deployment.json").exists() else None
    assert payload["state_sha256"] == state_sha256(on_disk)
    assert audit.verify(Repo.at(repo)).warnings == []
    return payload.get("action", newest[1]["type"])


# ------------------------------------------------------------------------------------ end to end


def test_shadow_canary_promote_rollback_end_to_end(tracked):
    repo, v1, v2 = tracked
    r = run(repo, "deploy", "--mode", "full", "--version", v1)
    assert r.code == 0, r.err
    assert state(repo)["production"] == {
        "version": v1,
        "model_sha256": registry.sha256_file(registry.find_version(Repo.at(repo), v1) / "model.skops"),
        "since": state(repo)["updated_at"],
    }
    assert champion_tag(repo) == v1
    assert recorded(repo) == "deploy-full"

    # Shadow: v2 scores every request, its answers are logged and never returned.
    assert run(repo, "deploy", "--mode", "shadow", "--version", v2).code == 0
    assert recorded(repo) == "deploy-shadow"
    rows = feature_rows(500, seed=5)
    ids = [f"shadow-{i}" for i in range(500)]
    answer = Router(Repo.at(repo)).predict(rows, ids)
    assert set(answer["role"]) == {"production"} and set(answer["model_version"]) == {v1}
    logged = log_records(repo)
    shadow = [x for x in logged if x["role"] == "shadow"]
    assert [x["request_id"] for x in shadow] == ids and {x["model_version"] for x in shadow} == {v2}
    assert len([x for x in logged if x["role"] == "production"]) == 500

    # Canary at the configured default share (10 %), 10,000 requests through the router.
    r = run(repo, "deploy", "--mode", "canary", "--version", v2)
    assert r.code == 0, r.err
    s = state(repo)
    assert s["canary"]["version"] == v2 and s["canary"]["traffic"] == 0.1 and s["shadow"] is None
    assert recorded(repo) == "deploy-canary"
    router = Router(Repo.at(repo))
    rows = feature_rows(10_000, seed=6)
    ids = [f"user-{i}" for i in range(10_000)]
    roles = {}
    for start in range(0, 10_000, 1000):
        part = router.predict(rows.iloc[start : start + 1000], ids[start : start + 1000])
        roles.update(zip(part["request_id"], zip(part["role"], part["model_version"], strict=True), strict=True))
    share = sum(role == "canary" for role, _ in roles.values()) / 10_000
    assert 0.09 <= share <= 0.11, share
    assert all(version == (v2 if role == "canary" else v1) for role, version in roles.values())
    assert "shadow" not in {role for role, _ in roles.values()}
    # Sticky: the same ids, in another order, one at a time and through a fresh router, land on the same model.
    again = Router(Repo.at(repo))
    sample = random.Random(1).sample(range(10_000), 300)
    for i in sample:
        one = again.predict(rows.iloc[[i]], [ids[i]])
        assert (one["role"].iloc[0], one["model_version"].iloc[0]) == roles[ids[i]]

    r = run(repo, "canary", "analyze", "--apply")
    assert r.code == 0, r.out + r.err
    assert "decision: promote (applied)" in r.out
    s = state(repo)
    assert s["production"]["version"] == v2 and s["canary"] is None
    assert s["history"][-1]["action"] == "promote-canary" and recorded(repo) == "promote-canary"
    analysis = json.loads((repo / s["history"][-1]["record"]).read_text())
    assert analysis["decision"] == "promote" and analysis["stats"]["canary"]["requests"] > 200
    assert {c["name"] for c in analysis["checks"]} >= {"score_ks", "positive_rate_delta", "error_rate_delta"}
    assert champion_tag(repo) == v2, analysis.get("mlflow_champion")

    r = run(repo, "rollback", "--reason", "on-call: revert to v1")
    assert r.code == 0, r.err
    s = state(repo)
    assert s["production"]["version"] == v1 and s["history"][-1]["reason"] == "on-call: revert to v1"
    assert recorded(repo) == "rollback"
    assert champion_tag(repo) == v1
    answer = Router(Repo.at(repo)).predict(feature_rows(50, seed=8), [f"after-{i}" for i in range(50)])
    assert set(answer["model_version"]) == {v1}
    types = audit_types(repo)
    assert types.count("deployment_change") == 4 and types.count("rollback") == 1


def test_failing_canary_is_rolled_back_with_numbers(live):
    repo, v1, v2 = live
    set_config(repo, "deployment", {"canary_analysis": {"max_score_ks": 0.0001, "min_requests": 50}})
    assert run(repo, "deploy", "--mode", "canary", "--version", v2, "--traffic", "0.3").code == 0
    Router(Repo.at(repo)).predict(feature_rows(1000, seed=9), [f"r{i}" for i in range(1000)])
    r = run(repo, "canary", "analyze", "--apply")
    assert r.code == 1, r.out + r.err
    assert "decision: rollback (applied)" in r.out
    s = state(repo)
    assert s["canary"] is None and s["production"]["version"] == v1 and recorded(repo) == "canary-rollback"
    record = json.loads((repo / s["history"][-1]["record"]).read_text())
    ks = next(c for c in record["checks"] if c["name"] == "score_ks")
    assert ks["passed"] is False and ks["value"] > 0.0001 and ks["limit"] == 0.0001
    assert any(a.get("alert", a).get("kind") == "deployment-failure" for a in outbox(repo))


def test_canary_analysis_waits_for_enough_requests(live):
    repo, v1, v2 = live
    assert run(repo, "deploy", "--mode", "canary", "--version", v2).code == 0
    Router(Repo.at(repo)).predict(feature_rows(100, seed=9), [f"r{i}" for i in range(100)])
    before = state(repo)
    r = run(repo, "canary", "analyze", "--apply")
    assert r.code == 0 and "decision: wait" in r.out
    assert state(repo) == before


def test_canary_analysis_compares_latency_and_accuracy_from_feedback(live):
    from mlops import predlog, synthetic

    repo, v1, v2 = live
    set_config(repo, "deployment", {"canary_analysis": {"min_requests": 40, "min_feedback": 40}})
    assert run(repo, "deploy", "--mode", "canary", "--version", v2, "--traffic", "0.5").code == 0
    data = synthetic.generate(200, 11)
    rows, labels = data.drop(columns=[synthetic.LABEL]), data[synthetic.LABEL].astype(int).tolist()
    router = Router(Repo.at(repo))
    ids = [f"fb-{i}" for i in range(200)]
    answers = {}
    for i in range(200):  # single-row requests: the only ones whose per-row latency is comparable
        one = router.predict(rows.iloc[[i]], [ids[i]])
        answers[ids[i]] = (one["role"].iloc[0], int(one["prediction"].iloc[0]))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    feedback = [{"request_id": r, "label": y, "time": now} for r, y in zip(ids, labels, strict=True)]
    predlog.append_feedback(Repo.at(repo), feedback)

    def analysis(**tolerances):
        set_config(repo, "deployment", {"canary_analysis": tolerances})
        r = run(repo, "canary", "analyze")
        record = json.loads((repo / r.out.rsplit("— ", 1)[1].strip()).read_text())
        return r, {c["name"]: c for c in record["checks"]}, record

    r, checks, record = analysis(max_score_ks=1.0, max_positive_rate_delta=1.0, max_latency_ratio=10.0,
                                 max_accuracy_drop=1.0)  # fmt: skip
    assert r.code == 0 and "decision: promote" in r.out, r.out
    stats = record["stats"]
    for role in ("canary", "production"):
        assert stats[role]["feedback"] >= 40 and 0 <= stats[role]["accuracy"] <= 1
        assert stats[role]["latency_ms_p95"] > 0
    latency, accuracy = checks["latency_ratio"], checks["accuracy_drop"]
    assert latency["passed"] is True and latency["value"] == pytest.approx(
        stats["canary"]["latency_ms_p95"] / stats["production"]["latency_ms_p95"], abs=1e-4
    )
    assert accuracy["passed"] is True
    assert accuracy["value"] == pytest.approx(stats["production"]["accuracy"] - stats["canary"]["accuracy"], abs=1e-6)

    # Labels that make every canary answer wrong and every production answer right.
    for path in (repo / "datasets/production").glob("feedback-*"):
        path.unlink()
    wrong = [{"request_id": r, "label": p if role == "production" else 1 - p, "time": now}
             for r, (role, p) in answers.items()]  # fmt: skip
    predlog.append_feedback(Repo.at(repo), wrong)
    r, checks, record = analysis(max_latency_ratio=0.001, max_accuracy_drop=0.02)
    assert checks["accuracy_drop"]["value"] == 1.0
    assert r.code == 1 and "decision: rollback" in r.out and record["decision"] == "rollback"
    assert checks["latency_ratio"]["passed"] is False and checks["accuracy_drop"]["passed"] is False
    assert state(repo)["canary"]["version"] == v2  # without --apply nothing changes


def test_canary_analysis_reads_predictions_and_feedback_from_the_log_store(live):
    from mlops import synthetic
    from mlops.logstore import open_uri

    repo, v1, v2 = live
    set_config(repo, "deployment", {"canary_analysis": {
        "min_requests": 30, "min_feedback": 30, "max_score_ks": 1.0, "max_positive_rate_delta": 1.0,
        "max_latency_ratio": 1000.0, "max_accuracy_drop": 1.0}})  # fmt: skip
    assert run(repo, "deploy", "--mode", "canary", "--version", v2, "--traffic", "0.5").code == 0
    data = synthetic.generate(120, 12)
    rows, labels = data.drop(columns=[synthetic.LABEL]), data[synthetic.LABEL].astype(int).tolist()
    router = Router(Repo.at(repo))
    ids = [f"st-{i}" for i in range(120)]
    for i in range(120):
        router.predict(rows.iloc[[i]], [ids[i]])
    # Everything the router logged moves to the store: the prediction log files are gone.
    store = open_uri("datasets/production/store", repo)
    store.write("predictions", log_records(repo))
    for path in (repo / "datasets/production").glob("predictions-*"):
        path.unlink()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    store.write("feedback", [{"request_id": r, "label": y, "time": now} for r, y in zip(ids, labels, strict=True)])
    r = run(repo, "canary", "analyze")
    assert r.code == 0 and "decision: promote" in r.out, r.out + r.err
    stats = json.loads((repo / r.out.rsplit("— ", 1)[1].strip()).read_text())["stats"]
    assert stats["canary"]["requests"] + stats["production"]["requests"] >= 120
    assert stats["canary"]["feedback"] + stats["production"]["feedback"] == 120


# --------------------------------------------------------------------------------------- gates


def test_one_byte_change_refused_by_deploy_and_router(live):
    repo, v1, v2 = live
    folder = registry.find_version(Repo.at(repo), v2)
    data = bytearray((folder / "model.skops").read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / "model.skops").write_bytes(bytes(data))
    before = (repo / "models/deployment.json").read_bytes()

    r = run(repo, "deploy", "--mode", "canary", "--version", v2)
    assert r.code == 1
    assert "deployment refused by gate integrity" in r.err
    assert (repo / "models/deployment.json").read_bytes() == before
    alerts = outbox(repo)
    assert alerts and "needs-attention" in json.dumps(alerts[-1])
    records = sorted((repo / "metadata/deployments").glob(f"*-canary-{v2}.json"))
    gates = {g["name"]: g["passed"] for g in json.loads(records[-1].read_text())["gates"]}
    assert gates["integrity"] is False and gates["load_and_query"] is None

    # The router refuses a production model whose bytes changed after deployment.
    prod = registry.find_version(Repo.at(repo), v1) / "model.skops"
    data = bytearray(prod.read_bytes())
    data[100] ^= 0x01
    prod.write_bytes(bytes(data))
    with pytest.raises(ModelRefused, match=r"refusing the production model: sha256 .* is not the .* pinned in"):
        Router(Repo.at(repo))
    rows = feature_rows(5, seed=1)
    rows.to_csv(repo / "in.csv", index=False)
    r = run(repo, "predict", "--input", str(repo / "in.csv"), "--output", str(repo / "out.csv"))
    assert r.code == 1 and "refusing the production model" in r.err
    assert not (repo / "out.csv").exists()


def test_threshold_gate_rechecks_manifest_metrics(live):
    repo, v1, v2 = live
    set_config(repo, "training-schedule", {"performance_thresholds": {"accuracy_min": 0.99}})
    before = tree_snapshot(repo)["models/deployment.json"]
    r = run(repo, "deploy", "--mode", "canary", "--version", v2)
    assert r.code == 1 and "gate thresholds: accuracy" in r.err and "< accuracy_min 0.99" in r.err
    assert (repo / "models/deployment.json").read_bytes() == before


def test_compatibility_gate_refuses_other_features(live):
    repo, v1, v2 = live
    src = registry.find_version(Repo.at(repo), v2)
    fake = "20991231T000000Z-logistic_regression-0badf00d"
    dest = repo / "models/candidates" / fake
    import shutil

    shutil.copytree(src, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest["version"] = fake
    manifest["features"]["numeric"] = [f for f in manifest["features"]["numeric"] if f != "age"] + ["shoe_size"]
    (dest / "manifest.json").write_text(json.dumps(manifest))
    r = run(repo, "deploy", "--mode", "shadow", "--version", fake)
    assert r.code == 1
    assert "gate compatibility: numeric features not served: shoe_size; numeric features the model lacks: age" in r.err


def test_failed_health_check_rolls_back_automatically(live):
    repo, v1, v2 = live
    before = state(repo)
    set_config(repo, "deployment", {"health_check": {"latency_budget_ms_p95": 0.0001}})
    r = run(repo, "deploy", "--mode", "canary", "--version", v2)
    assert r.code == 1 and "failed the post-deploy health check" in r.err and "was rolled back" in r.err
    s = state(repo)
    assert s["production"] == before["production"] and s["canary"] is None
    assert [h["action"] for h in s["history"]][-2:] == ["deploy-canary", "auto-rollback"]
    assert audit_types(repo)[-1] == "rollback" and recorded(repo) == "rollback"
    assert any("rolled back" in json.dumps(a) for a in outbox(repo))


def test_a_failed_first_deployment_records_its_removed_state_as_null(trained):
    repo, v1, _v2 = trained
    set_config(repo, "deployment", {"health_check": {"latency_budget_ms_p95": 0.0001}})
    r = run(repo, "deploy", "--mode", "full", "--version", v1)
    assert r.code == 1 and "was rolled back" in r.err
    assert not (repo / "models/deployment.json").exists()
    assert recorded(repo) == "rollback"  # state_sha256 null: no state file is the recorded state
    assert run(repo, "audit", "verify").code == 0


def test_rollback_refuses_a_tampered_target(live):
    repo, v1, v2 = live
    assert run(repo, "deploy", "--mode", "full", "--version", v2).code == 0
    before = (repo / "models/deployment.json").read_bytes()
    target = registry.find_version(Repo.at(repo), v1) / "model.skops"
    target.write_bytes(target.read_bytes() + b"\0")
    r = run(repo, "rollback")
    assert r.code == 1 and f"rollback to {v1} refused" in r.err and "does not match the manifest" in r.err
    assert (repo / "models/deployment.json").read_bytes() == before


def test_rollback_refuses_a_target_swapped_together_with_its_manifest(live):
    repo, v1, v2 = live
    assert run(repo, "deploy", "--mode", "full", "--version", v2).code == 0
    before = (repo / "models/deployment.json").read_bytes()
    old = registry.find_version(Repo.at(repo), v1)
    new = registry.find_version(Repo.at(repo), v2)
    (old / "model.skops").write_bytes((new / "model.skops").read_bytes())  # another model's bytes ...
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["model_sha256"] = registry.sha256_file(old / "model.skops")  # ... and a manifest to match
    (old / "manifest.json").write_text(json.dumps(manifest))
    r = run(repo, "rollback")
    assert r.code == 1 and f"rollback to {v1} refused" in r.err
    assert "the deployment history pinned when this version last served" in r.err
    assert (repo / "models/deployment.json").read_bytes() == before


def test_the_metadata_gate_refuses_a_model_whose_card_names_other_bytes(live):
    repo, v1, v2 = live
    old = registry.find_version(Repo.at(repo), v1)
    new = registry.find_version(Repo.at(repo), v2)
    if not list((repo / "metadata/cards").glob(f"{v2}.*")):
        pytest.skip("this template writes no cards")
    (new / "model.skops").write_bytes((old / "model.skops").read_bytes())
    manifest = json.loads((new / "manifest.json").read_text())
    manifest["model_sha256"] = registry.sha256_file(new / "model.skops")
    (new / "manifest.json").write_text(json.dumps(manifest))
    r = run(repo, "deploy", "--mode", "shadow", "--version", v2)
    assert r.code == 1 and "card /lineage/model_sha256" in (r.out + r.err), r.err


def test_previous_production_replays_history_as_a_stack():
    def h(action, to):
        return {"action": action, "to": to}

    s = {"production": {"version": "c"}, "history": [h("deploy-full", "a"), h("deploy-full", "b"),
                                                     h("deploy-canary", "c"), h("promote-canary", "c")]}  # fmt: skip
    assert deploy.previous_production(s) == "b"
    s["history"].append(h("rollback", "b"))
    s["production"]["version"] = "b"
    assert deploy.previous_production(s) == "a"
    s["history"].append(h("rollback", "a"))
    s["production"]["version"] = "a"
    assert deploy.previous_production(s) is None


def test_rollback_during_the_first_canary_drops_it_and_keeps_production(live):
    repo, v1, v2 = live
    assert run(repo, "deploy", "--mode", "canary", "--version", v2).code == 0
    r = run(repo, "rollback", "--reason", "canary looks wrong")
    assert r.code == 0, r.err
    s = state(repo)
    assert s["production"]["version"] == v1 and s["canary"] is None and s["shadow"] is None
    last = s["history"][-1]
    assert (last["action"], last["from"], last["to"], last["reason"]) == ("rollback", v1, v1, "canary looks wrong")
    entries = [json.loads(x) for x in audit.read_dir(repo / "metadata" / "audit").lines]
    rollback = [e for e in entries if e["type"] == "rollback"][-1]["payload"]
    assert rollback["dropped"]["canary"] == {"version": v2, "traffic": 0.1} and rollback["to"] == v1
    # With nothing left to drop, a second rollback has nowhere to go: one line, exit 2.
    again = run(repo, "rollback")
    assert again.code == 2 and "history has no production version before" in again.err


# ----------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deploy", "--mode", "canary", "--version", "20990101T000000Z-logistic_regression-deadbeef"],
         "version 20990101T000000Z-logistic_regression-deadbeef: no such model"),
        # a path, not an id: refused before it names a gate record or an alert file (../current exists)
        (["deploy", "--mode", "canary", "--version", "../current"], "version ../current: is not a model version id"),
        (["rollback", "--to", "../../models/current"], "is not a model version id"),
        (["deploy", "--mode", "canary", "--version", "V2", "--traffic", "0"], "--traffic: 0.0 is outside (0, 1)"),
        (["deploy", "--mode", "canary", "--version", "V2", "--traffic", "1.5"], "--traffic: 1.5 is outside (0, 1)"),
        (["deploy", "--mode", "canary", "--version", "V2", "--traffic", "-0.1"], "--traffic: -0.1 is outside (0, 1)"),
        (["deploy", "--mode", "canary", "--version", "V2", "--traffic", "nan"], "--traffic: nan is outside (0, 1)"),
        (["deploy", "--mode", "full", "--version", "V2", "--traffic", "0.5"],
         "--traffic: a traffic share only applies to --mode canary, not --mode full"),
        (["deploy", "--mode", "full", "--version", "V1"], "is already production"),
        (["deploy", "--mode", "blue-green"], "argument --mode: invalid choice"),
        (["rollback"], "history has no production version before"),
        (["rollback", "--to", "20990101T000000Z-logistic_regression-deadbeef"], "no such model"),
        (["canary", "analyze"], "there is no canary to analyze"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2_nothing_changed(live, args, message):
    repo, v1, v2 = live
    args = [{"V1": v1, "V2": v2}.get(a, a) for a in args]
    before = tree_snapshot(repo)
    r = run(repo, *args)
    assert r.code == 2, r.err
    assert message in r.err and r.err.strip().count("\n") == 0, r.err
    assert tree_snapshot(repo) == before


@pytest.mark.parametrize(
    "args",
    [
        ["deploy", "--mode", "canary", "--version", "V2"],
        ["rollback", "--to", "V1"],
        ["canary", "analyze"],
        ["predict", "--input", "IN", "--output", "OUT"],
    ],
)
def test_state_breaking_its_schema_is_refused(live, args):
    repo, v1, v2 = live
    broken = state(repo)
    broken["canary"] = {"version": v2, "sha256": broken["production"]["model_sha256"], "traffic": 2}
    (repo / "models/deployment.json").write_text(json.dumps(broken))
    feature_rows(3, seed=1).to_csv(repo / "in.csv", index=False)
    subs = {"V1": v1, "V2": v2, "IN": str(repo / "in.csv"), "OUT": str(repo / "out.csv")}
    before = tree_snapshot(repo)
    r = run(repo, *[subs.get(a, a) for a in args])
    assert r.code == 2
    assert "models/deployment.json: /canary/traffic: expected a number < 1, found 2" in r.err
    assert r.err.strip().count("\n") == 0
    assert tree_snapshot(repo) == before and not (repo / "out.csv").exists()


def test_request_missing_features_is_refused(live):
    repo, v1, v2 = live
    feature_rows(3, seed=1).drop(columns=["age", "plan"]).to_csv(repo / "in.csv", index=False)
    before = tree_snapshot(repo)
    r = run(repo, "predict", "--input", str(repo / "in.csv"), "--output", str(repo / "out.csv"))
    assert r.code == 2 and "missing feature(s) age, plan" in r.err and r.err.strip().count("\n") == 0
    assert tree_snapshot(repo) == before and not (repo / "datasets/production").exists()


def test_request_with_an_infinite_feature_is_refused(live):
    repo, v1, v2 = live
    rows = feature_rows(3, seed=1)
    rows.loc[1, "income"] = float("inf")
    rows.to_csv(repo / "in.csv", index=False)
    before = tree_snapshot(repo)
    r = run(repo, "predict", "--input", str(repo / "in.csv"), "--output", str(repo / "out.csv"))
    assert r.code == 2 and r.err.strip().count("\n") == 0, r.err
    assert "feature 'income' is infinite in 1 row(s), first row 1" in r.err
    assert tree_snapshot(repo) == before and not (repo / "datasets/production").exists()


# ------------------------------------------------------------------------------------- GitOps


def git(repo: Path, *args: str) -> str:
    cmd = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def test_git_revert_of_the_state_commit_serves_the_previous_version(trained):
    repo, v1, v2 = trained
    (repo / ".gitignore").write_text(".mlflow/\ndatasets/cache/\ndatasets/production/\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "trained")
    assert run(repo, "deploy", "--mode", "full", "--version", v1).code == 0
    git(repo, "add", "models", "metadata")
    git(repo, "commit", "-qm", f"deploy {v1}")
    assert run(repo, "deploy", "--mode", "full", "--version", v2).code == 0
    git(repo, "add", "models", "metadata")
    git(repo, "commit", "-qm", f"deploy {v2}")
    rows = feature_rows(20, seed=3)
    assert set(Router(Repo.at(repo), log=False).predict(rows)["model_version"]) == {v2}

    git(repo, "revert", "--no-edit", "HEAD")
    assert state(repo)["production"]["version"] == v1
    assert set(Router(Repo.at(repo), log=False).predict(rows)["model_version"]) == {v1}
    rows.to_csv(repo / "in.csv", index=False)
    r = run(repo, "predict", "--input", str(repo / "in.csv"), "--output", str(repo / "out.csv"))
    assert r.code == 0, r.err
    assert {line.split(",")[3] for line in (repo / "out.csv").read_text().splitlines()[1:]} == {v1}


# ------------------------------------------------------------------------------------- kill -9


def _intact(repo: Path) -> dict:
    s = deploy.read_state(Repo.at(repo))  # schema-valid or BadInput
    assert s is not None
    pins = [(s["production"]["version"], s["production"]["model_sha256"])]
    pins += [(s[r]["version"], s[r]["sha256"]) for r in ("canary", "shadow") if s[r]]
    for version, sha in pins:
        folder = registry.find_version(Repo.at(repo), version)
        assert registry.verify_integrity(folder, Repo.at(repo))["model_sha256"] == sha
    return s


def test_kill_9_at_random_points_never_leaves_a_bad_state(tmp_path, tmp_path_factory):
    from mlops.cli import main

    repo, v1, v2 = copy_repo(template(tmp_path_factory), tmp_path / "repo", tracking=False)
    # Small probes keep one deploy near 0.1 s, so 52 kills land all over deploys and rollbacks.
    # Budgets far above any machine's latency: a loaded CI runner must not turn a deploy into a
    # refusal, or the loop below would stop changing the state (the gates have their own tests).
    set_config(repo, "deployment", {"latency_probe_rows": 5, "latency_budget_ms_p95": 60000.0,
                                    "health_check": {"requests": 5, "latency_budget_ms_p95": 60000.0}})  # fmt: skip
    assert run(repo, "deploy", "--mode", "full", "--version", v1).code == 0
    commands = [
        ["deploy", "--mode", "full", "--version", v2],
        ["rollback", "--reason", "kill test"],
        ["deploy", "--mode", "canary", "--version", v2, "--traffic", "0.3"],
        ["deploy", "--mode", "shadow", "--version", v2],
        ["rollback", "--to", v1],
    ]
    # Kill delays scale with how long one change takes on this machine, so a loaded runner still
    # sees kills before, inside and between changes.
    began = time.perf_counter()
    assert run(repo, "deploy", "--mode", "canary", "--version", v2).code == 0
    assert run(repo, "rollback", "--to", v1).code == 0
    # 2.5 × two changes: a child completes about two changes on average before its kill, so the
    # check below keeps its margin when the other test worker loads the machine mid-loop.
    window = max(0.2, 2.5 * (time.perf_counter() - began))
    rng = random.Random(20261122)
    kills, first = 0, len(state(repo)["history"])
    for k in range(52):
        pid = os.fork()
        if pid == 0:  # the child: deploy and roll back until killed, starting at a rotating command
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
                i = k
                while True:
                    main(["--repo", str(repo), *commands[i % len(commands)]])
                    i += 1
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.0, window))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        kills += os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        _intact(repo)
    assert kills >= 50
    # The kills landed while the state kept changing: many changes completed between them.
    assert len(state(repo)["history"]) - first >= 15
    Router(Repo.at(repo), log=False).predict(feature_rows(5, seed=2))


def test_load_and_query_gate_enforces_the_latency_budget(live):
    repo, v1, v2 = live
    set_config(repo, "deployment", {"latency_budget_ms_p95": 0.0001})
    r = run(repo, "deploy", "--mode", "shadow", "--version", v2)
    assert r.code == 1 and "gate load_and_query: p95 single-row CPU time" in r.err and "exceeds the budget" in r.err
    assert state(repo)["shadow"] is None


def test_metadata_gate_refuses_a_manifest_or_card_that_breaks_its_schema(live):
    repo, v1, v2 = live
    folder = registry.find_version(Repo.at(repo), v2)
    card = repo / "metadata/cards" / f"{v2}.json"
    assert card.exists()  # training wrote it, so the gate checks it
    before = (repo / "models/deployment.json").read_bytes()
    for path, edit, message in [
        (folder / "manifest.json", lambda d: d.update(created_at="yesterday"), "gate metadata: manifest /created_at"),
        (card, lambda d: d["model_details"].update(version="v2"), "gate metadata: card /model_details/version"),
    ]:
        original = path.read_bytes()
        doc = json.loads(original)
        edit(doc)
        path.write_text(json.dumps(doc))
        r = run(repo, "deploy", "--mode", "shadow", "--version", v2)
        assert r.code == 1 and message in r.err, r.err
        assert (repo / "models/deployment.json").read_bytes() == before
        record = sorted((repo / "metadata/deployments").glob(f"*-shadow-{v2}.json"))[-1]
        gates = {g["name"]: g["passed"] for g in json.loads(record.read_text())["gates"]}
        assert gates["metadata"] is False and gates["integrity"] is True
        path.write_bytes(original)
    assert run(repo, "deploy", "--mode", "shadow", "--version", v2).code == 0


def test_load_and_query_rejects_unusable_probabilities():
    import numpy as np

    good = np.array([[0.25, 0.75], [1.0, 0.0]])
    assert deploy.check_predictions(good, 2) is None
    assert "shape (2,), expected (2, 2)" in deploy.check_predictions(good[:, 1], 2)
    assert "shape (2, 2), expected (3, 2)" in deploy.check_predictions(good, 3)
    assert "1 probabilities are not finite" in deploy.check_predictions(np.array([[np.nan, 1.0], [0.5, 0.5]]), 2)
    assert "outside [0, 1]" in deploy.check_predictions(np.array([[-0.5, 1.5], [0.5, 0.5]]), 2)
    assert "do not sum to 1" in deploy.check_predictions(np.array([[0.5, 0.6], [0.5, 0.5]]), 2)


def test_a_healthy_canary_passes_the_health_check_after_the_data_file_was_refreshed_in_place(tmp_path):
    from mlops import synthetic
    from tests.support.repo import make_repo

    repo = make_repo(
        tmp_path / "loc",
        dataset={"source": "local", "local": {"path": "datasets/local/train.csv"}},
        training={"bootstrap_iterations": 20},
        training_schedule={"datasets": {"minimum_samples": 1000}},
        deployment={"latency_budget_ms_p95": 60000.0, "health_check": {"latency_budget_ms_p95": 60000.0}},
    )
    (repo / "datasets/local").mkdir(parents=True)
    synthetic.generate(4000, 7).to_csv(repo / "datasets/local/train.csv", index=False)
    assert run(repo, "train", "--no-download", "--model-types", "logistic_regression", "--no-tracking").code == 0
    v1 = json.loads((repo / "models/current/manifest.json").read_text())["version"]
    assert run(repo, "deploy", "--mode", "full", "--version", v1).code == 0
    synthetic.generate(4500, 8).to_csv(repo / "datasets/local/train.csv", index=False)  # the export, refreshed
    assert run(repo, "train", "--no-download", "--model-types", "logistic_regression", "--no-tracking").code == 0
    (v2,) = [v for v in registry.all_versions(Repo.at(repo)) if v != v1]
    r = run(repo, "deploy", "--mode", "canary", "--version", v2)
    assert r.code == 0, r.err  # production's rows cannot be rebuilt any more; the canary's can
    s = json.loads((repo / "models/deployment.json").read_text())
    assert s["canary"]["version"] == v2 and s["production"]["version"] == v1


# ------------------------------------------------------------------------- canary analysis table

TOL = CanaryAnalysis(min_requests=10, max_score_ks=0.15, max_positive_rate_delta=0.05, max_error_rate_delta=0.01,
                     max_latency_ratio=3.0, min_feedback=5, max_accuracy_drop=0.02)  # fmt: skip


def _rows(role: str, version: str, n: int = 20, *, score: float = 0.3, prediction: int = 0, latency: float = 1.0,
          batch: int = 1, prefix: str | None = None, **extra) -> list[dict]:  # fmt: skip
    prefix = prefix or role
    return [{"request_id": f"{prefix}-{i}", "role": role, "model_version": version, "score": score + i / 1000,
             "prediction": prediction, "latency_ms": latency, "batch_size": batch, **extra}
            for i in range(n)]  # fmt: skip


def _labels(rows: list[dict], *, wrong: bool = False) -> list[dict]:
    return [{"request_id": r["request_id"], "label": 1 - r["prediction"] if wrong else r["prediction"]} for r in rows]


def _case(canary=None, production=None, *, errors=(), feedback="right", extra=()):
    canary = _rows("canary", "C", **(canary or {}))
    production = _rows("production", "P", **(production or {}))
    labels = {"right": _labels(canary) + _labels(production),
              "canary wrong": _labels(canary, wrong=True) + _labels(production),
              "production wrong": _labels(canary) + _labels(production, wrong=True),
              "none": []}[feedback]  # fmt: skip
    return canary + production + list(extra), labels, list(errors)


def _errors(role: str, version: str, n: int) -> list[dict]:
    return [{"request_id": f"e-{i}", "role": role, "model_version": version, "error": "E: x"} for i in range(n)]


@pytest.mark.parametrize(
    ("inputs", "decision", "failed", "skipped"),
    [
        pytest.param(_case(canary={"n": 9}), "wait", ["requests"], [], id="wait: too few canary requests"),
        pytest.param(_case(production={"n": 9}), "wait", ["requests"], [], id="wait: too few production requests"),
        pytest.param(_case(), "promote", [], [], id="promote: every check passes"),
        pytest.param(_case(canary={"score": 0.8}), "rollback", ["score_ks"], [], id="rollback: score_ks"),
        pytest.param(_case(canary={"prediction": 1}), "rollback", ["positive_rate_delta"], [],
                     id="rollback: positive_rate_delta"),
        pytest.param(_case(errors=_errors("canary", "C", 1)), "rollback", ["error_rate_delta"], [],
                     id="rollback: error_rate_delta"),
        pytest.param(_case(canary={"latency": 3.5}), "rollback", ["latency_ratio"], [], id="rollback: latency_ratio"),
        pytest.param(_case(feedback="canary wrong"), "rollback", ["accuracy_drop"], [], id="rollback: accuracy_drop"),
        pytest.param(_case(feedback="none"), "promote", [], ["accuracy_drop"], id="missing feedback skips accuracy"),
        # Production drifted and the labels show the canary more accurate: differing from it is excused.
        pytest.param(_case(canary={"score": 0.8, "prediction": 1}, feedback="production wrong"), "promote",
                     [], ["score_ks", "positive_rate_delta"],
                     id="promote: labels excuse differing from a worse production"),
        pytest.param(_case(canary={"score": 0.8, "prediction": 1}, feedback="none"), "rollback",
                     ["score_ks", "positive_rate_delta"], ["accuracy_drop"], id="rollback: no labels excuse nothing"),
        pytest.param(_case(canary={"batch": 20}), "promote", [], ["latency_ratio"],
                     id="no single-row canary requests skip latency"),
        # Rows of other versions, production answers that stood in for the canary, and errors of
        # other versions are no role's traffic: 9 canary rows stay too few.
        pytest.param(_case(canary={"n": 9}, errors=_errors("canary", "OLD", 5), extra=[
            *_rows("canary", "OLD", 5, prefix="old"), *_rows("production", "P", 5, prefix="fb", fallback_from="canary"),
        ]), "wait", ["requests"], [], id="other versions and fallbacks are not counted"),
    ],
)  # fmt: skip
def test_canary_decision_table(inputs, decision, failed, skipped):
    predictions, feedback, errors = inputs
    result = decide(predictions, feedback, errors, "C", "P", TOL)
    assert result.decision == decision
    assert result.failed == failed
    assert [c["name"] for c in result.checks if c["passed"] is None] == skipped
    names = [c["name"] for c in result.checks]
    every = ["requests", "score_ks", "positive_rate_delta", "error_rate_delta", "latency_ratio", "accuracy_drop"]
    assert names == (["requests"] if decision == "wait" else every)
    assert all(isinstance(c["passed"], (bool, type(None))) for c in result.checks)  # JSON-safe, not numpy bools


def test_canary_decision_numbers():
    predictions, feedback, errors = _case(canary={"prediction": 1, "latency": 2.0}, errors=_errors("canary", "C", 5))
    result = decide(predictions, feedback, errors, "C", "P", TOL)
    c, p = result.stats["canary"], result.stats["production"]
    assert (c["requests"], c["errors"], c["error_rate"]) == (20, 5, 0.2)
    assert (p["requests"], p["errors"], p["error_rate"]) == (20, 0, 0.0)
    assert (c["positive_rate"], p["positive_rate"], c["feedback"], c["accuracy"]) == (1.0, 0.0, 20, 1.0)
    checks = {x["name"]: x for x in result.checks}
    assert checks["latency_ratio"]["value"] == 2.0 and checks["latency_ratio"]["passed"] is True
    assert checks["score_ks"]["value"] == 0.0 and checks["accuracy_drop"]["value"] == 0.0
    assert checks["error_rate_delta"]["value"] == 0.2 and checks["error_rate_delta"]["limit"] == 0.01
    assert tolerances(TOL) == {"min_requests": 10, "max_score_ks": 0.15, "max_positive_rate_delta": 0.05,
                               "max_error_rate_delta": 0.01, "max_latency_ratio": 3.0, "min_feedback": 5,
                               "max_accuracy_drop": 0.02}  # fmt: skip


def _hand_written_ks(a, b) -> float:
    """The statistic deploy computed by hand before it used scipy's: the oracle for identical results."""
    import numpy as np

    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    grid = np.concatenate([a, b])
    return float(
        np.max(np.abs(np.searchsorted(a, grid, "right") / len(a) - np.searchsorted(b, grid, "right") / len(b)))
    )


def test_scipy_ks_statistic_is_the_hand_written_one():
    import numpy as np

    rng = np.random.default_rng(14)
    cases = [(rng.random(n), rng.random(m) ** k) for n, m, k in ((200, 1800, 1), (1000, 1000, 2), (30, 7, 3))]
    cases += [(np.round(rng.random(500), 2), np.round(rng.random(400), 2)),  # ties
              ([0.5] * 10, [0.5] * 20), ([0.1, 0.2], [0.8, 0.9])]  # fmt: skip
    for a, b in cases:
        assert ks_statistic(list(a), list(b)) == _hand_written_ks(a, b)
