"""models/deployment.json as a value: plan, history replay, describe, and the checks on read and write."""

import json
import re

import pytest

from mlops import deployment_state as ds
from mlops.errors import BadInput
from mlops.repo import Repo
from tests.support.repo import make_repo

A = "20261122T020000Z-logistic_regression-0123abcd"
B = "20261129T020000Z-random_forest-4567cdef"
C = "20261206T020000Z-extra_trees-89abcdef"
SHA = {A: "a" * 64, B: "b" * 64, C: "c" * 64}


def _entry(action, src, dst, time="2026-12-01T00:00:00Z"):
    return {"time": time, "action": action, "from": src, "to": dst, "reason": "test", "actor": "t"}


def _deploy(state, mode, version, time="2026-12-01T00:00:00Z", traffic=0.1):
    action = {"full": "deploy-full", "canary": "deploy-canary", "shadow": "deploy-shadow"}[mode]
    src = state["production"]["version"] if state else None
    return ds.plan(state, mode, version, SHA[version], traffic, _entry(action, src, version, time))


def test_plan_first_full_then_canary_then_promote():
    s1 = _deploy(None, "full", A)
    assert ds.describe(s1) == {"production": A, "canary": None, "shadow": None}
    assert s1["production"] == {"version": A, "model_sha256": SHA[A], "since": "2026-12-01T00:00:00Z"}
    s2 = _deploy(s1, "canary", B, traffic=0.25)
    assert ds.describe(s2) == {"production": A, "canary": {"version": B, "traffic": 0.25}, "shadow": None}
    s3 = _deploy(s2, "full", B)  # full deployment of the canary ends the canary
    assert ds.describe(s3) == {"production": B, "canary": None, "shadow": None}
    assert [e["action"] for e in s3["history"]] == ["deploy-full", "deploy-canary", "deploy-full"]
    assert s1["history"] == [s1["history"][0]] and len(s2["history"]) == 2  # plan never mutates its input


def test_shadow_and_canary_of_one_version_replace_each_other():
    s = _deploy(_deploy(None, "full", A), "shadow", B)
    assert ds.describe(s)["shadow"] == B
    s = _deploy(s, "canary", B)
    assert ds.describe(s)["shadow"] is None and ds.describe(s)["canary"]["version"] == B
    s = _deploy(s, "shadow", B)
    assert ds.describe(s)["canary"] is None and ds.describe(s)["shadow"] == B
    assert ds.describe(None) == {"production": None, "canary": None, "shadow": None}


def test_previous_production_replays_history_as_a_stack():
    s = _deploy(_deploy(_deploy(None, "full", A), "full", B), "full", C)
    assert ds.previous_production(s) == B
    rolled = ds.with_entry(s, _entry("rollback", C, B), production={"version": B, "model_sha256": SHA[B]})
    assert ds.previous_production(rolled) == A  # the rollback popped C
    assert ds.previous_production(_deploy(None, "full", A)) is None


def test_with_entry_stamps_updated_at_and_copies():
    s = _deploy(None, "full", A)
    e = _entry("rollback", A, A, time="2026-12-02T00:00:00Z")
    new = ds.with_entry(s, e, canary=None)
    assert new["updated_at"] == "2026-12-02T00:00:00Z" and new["history"][-1] == e
    assert len(s["history"]) == 1


def test_entry_drops_extras_that_are_none(monkeypatch):
    monkeypatch.setenv("MLOPS_NOW", "2026-12-02T06:00:00Z")
    e = ds.entry("deploy-full", None, A, "why", "me", record="metadata/x.json", traffic=None)
    assert e == {"time": "2026-12-02T06:00:00Z", "action": "deploy-full", "from": None, "to": A,
                 "reason": "why", "actor": "me", "record": "metadata/x.json"}  # fmt: skip


def test_write_read_roundtrip_and_none_removes(tmp_path):
    repo = Repo.at(make_repo(tmp_path / "r"))
    assert ds.read_state(repo) is None
    with pytest.raises(BadInput, match=r"^models/deployment.json: nothing deployed; deploy first$"):
        ds.require_state(repo, "nothing deployed", "deploy first")
    s = _deploy(None, "full", A)
    ds.write_state(repo, s)
    assert ds.read_state(repo) == s
    assert repo.deployment_state.read_text() == json.dumps(s, indent=2, sort_keys=True) + "\n"
    ds.write_state(repo, None)
    assert not repo.deployment_state.exists()


def test_a_state_breaking_its_rules_is_never_written(tmp_path):
    repo = Repo.at(make_repo(tmp_path / "r"))
    good = _deploy(None, "full", A)
    ds.write_state(repo, good)
    bad = {**good, "canary": {"version": A, "sha256": SHA[A], "traffic": 0.1}}
    already = f"models/deployment.json: /canary/version: {A} is already production and cannot also be the canary"
    with pytest.raises(BadInput, match=f"^{re.escape(already)}; set /canary to null$"):
        ds.write_state(repo, bad)
    broken = {**good, "canary": {"version": B, "sha256": SHA[B], "traffic": 1.5}}
    message = (
        "models/deployment.json: /canary/traffic: expected a number < 1, found 1.5; fix it to match "
        "config/schemas/deployment-state.schema.json, or `git revert` the commit that broke it"
    )
    with pytest.raises(BadInput, match=f"^{re.escape(message)}$"):
        ds.write_state(repo, broken)
    assert ds.read_state(repo) == good
