"""mlops retention: exactly the expired, undeployed model folders go, and the audit log says which."""

from __future__ import annotations

import json

import pytest

from mlops import config, retention
from mlops.repo import Repo
from tests.support.cli import run
from tests.support.repo import tree_snapshot

NOW = "2026-11-22T06:00:00Z"
SHA = "ab" * 32


def _version(stamp: str, kind: str = "hist_gradient_boosting", tail: str = "0") -> str:
    return f"{stamp}-{kind}-{tail * 8}"


def _model(folder, version: str, created_at: str | None) -> None:
    folder.mkdir(parents=True)
    manifest = {"version": version, "model_sha256": SHA}
    if created_at:
        manifest["created_at"] = created_at
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "model.skops").write_bytes(b"model")


# Ages on 2026-11-22 with 30-day candidates and 365-day archives (config/training-schedule.json).
CURRENT = _version("20261120T020000Z", tail="1")
OLD_CANDIDATE = _version("20261001T020000Z", tail="2")  # 52 days
NEW_CANDIDATE = _version("20261115T020000Z", tail="3")  # 7 days
CANARY_CANDIDATE = _version("20260901T020000Z", tail="4")  # 82 days, but canary
OLD_ARCHIVE = _version("20250601T020000Z", tail="5")  # 539 days
NEW_ARCHIVE = _version("20260601T020000Z", tail="6")  # 174 days
PROD_ARCHIVE = _version("20250101T020000Z", tail="7")  # 690 days, but production
ROLLBACK_ARCHIVE = _version("20250201T020000Z", tail="8")  # 659 days, the rollback target
NAME_ONLY = _version("20251001T020000Z", "random_forest", "9")  # no created_at: dated by its id (52 days)


@pytest.fixture
def fixture_repo(repo, monkeypatch):
    monkeypatch.setenv("MLOPS_NOW", NOW)
    r = Repo.at(repo)
    _model(r.current, CURRENT, "2026-11-20T02:00:00Z")
    for v, when in ((OLD_CANDIDATE, "2026-10-01T02:00:00Z"), (NEW_CANDIDATE, "2026-11-15T02:00:00Z"),
                    (CANARY_CANDIDATE, "2026-09-01T02:00:00Z")):  # fmt: skip
        _model(r.candidates / v, v, when)
    _model(r.candidates / NAME_ONLY, NAME_ONLY, None)
    for v, when in ((OLD_ARCHIVE, "2025-06-01T02:00:00Z"), (NEW_ARCHIVE, "2026-06-01T02:00:00Z"),
                    (PROD_ARCHIVE, "2025-01-01T02:00:00Z"), (ROLLBACK_ARCHIVE, "2025-02-01T02:00:00Z")):  # fmt: skip
        _model(r.archived / v, v, when)
    state = {
        "format": 1,
        "production": {"version": PROD_ARCHIVE, "model_sha256": SHA, "since": "2025-03-01T00:00:00Z"},
        "canary": {"version": CANARY_CANDIDATE, "sha256": SHA, "traffic": 0.1},
        "shadow": None,
        "history": [
            {
                "time": "2025-02-02T00:00:00Z",
                "action": "deploy-full",
                "from": None,
                "to": ROLLBACK_ARCHIVE,
                "reason": "first",
                "actor": "t",
            },
            {
                "time": "2025-03-01T00:00:00Z",
                "action": "deploy-full",
                "from": ROLLBACK_ARCHIVE,
                "to": PROD_ARCHIVE,
                "reason": "second",
                "actor": "t",
            },
        ],  # fmt: skip
        "updated_at": "2025-03-01T00:00:00Z",
    }
    r.deployment_state.write_text(json.dumps(state))
    return repo


def _left(repo) -> set[str]:
    r = Repo.at(repo)
    return {p.name for parent in (r.candidates, r.archived) if parent.is_dir() for p in parent.iterdir()}


def test_removes_exactly_the_expired_undeployed_versions(fixture_repo):
    r = run(fixture_repo, "retention")
    assert r.code == 0, r.err
    assert _left(fixture_repo) == {NEW_CANDIDATE, CANARY_CANDIDATE, NEW_ARCHIVE, PROD_ARCHIVE, ROLLBACK_ARCHIVE}
    assert (Repo.at(fixture_repo).current / "manifest.json").exists()
    assert "retention: 3 model folder(s) deleted" in r.out
    events = [json.loads(line) for p in sorted((fixture_repo / "metadata" / "audit").glob("entries-*.jsonl"))
              for line in p.read_text().splitlines()]  # fmt: skip
    (event,) = [e for e in events if e["type"] == "retention_prune"]
    removed = {item["version"]: item["kind"] for item in event["payload"]["removed"]}
    assert removed == {OLD_CANDIDATE: "candidate", NAME_ONLY: "candidate", OLD_ARCHIVE: "archived"}
    assert set(event["payload"]["protected"]) == {CANARY_CANDIDATE, PROD_ARCHIVE, ROLLBACK_ARCHIVE}


def test_reasons_name_the_protecting_role(fixture_repo, monkeypatch):
    monkeypatch.setenv("MLOPS_NOW", NOW)
    items = {i.version: i for i in retention.plan(config.load(Repo.at(fixture_repo)))}
    assert items[CANARY_CANDIDATE].why == "deployment.json canary"
    assert items[PROD_ARCHIVE].why == "deployment.json production"
    assert items[ROLLBACK_ARCHIVE].why == "deployment.json rollback target"
    assert items[OLD_CANDIDATE].why == "52.2 days old > model_retention.candidates 30d"
    assert items[NEW_ARCHIVE].action == "keep"


def test_dry_run_changes_nothing_and_lists_what_would_go(fixture_repo):
    before = tree_snapshot(fixture_repo)
    r = run(fixture_repo, "retention", "--dry-run")
    assert r.code == 0, r.err
    assert tree_snapshot(fixture_repo) == before
    assert "retention: 3 model folder(s) would be deleted (dry run: nothing changed)" in r.out
    assert not (fixture_repo / "metadata" / "audit").exists() or not list(
        (fixture_repo / "metadata" / "audit").glob("entries-*.jsonl")
    )


def test_nothing_expired_records_nothing(repo, monkeypatch):
    monkeypatch.setenv("MLOPS_NOW", NOW)
    r0 = Repo.at(repo)
    _model(r0.candidates / NEW_CANDIDATE, NEW_CANDIDATE, "2026-11-15T02:00:00Z")
    r = run(repo, "retention")
    assert r.code == 0 and "0 model folder(s) deleted" in r.out
    assert _left(repo) == {NEW_CANDIDATE}
    assert not list((repo / "metadata").rglob("entries-*.jsonl"))


def test_an_undatable_folder_is_kept(repo, monkeypatch):
    monkeypatch.setenv("MLOPS_NOW", NOW)
    (Repo.at(repo).candidates / "hand-made").mkdir(parents=True)
    r = run(repo, "retention")
    assert r.code == 0
    assert "undated" in r.out and _left(repo) == {"hand-made"}


def test_a_broken_deployment_state_stops_before_deleting(fixture_repo):
    Repo.at(fixture_repo).deployment_state.write_text('{"format": 1}')
    before = tree_snapshot(fixture_repo)
    r = run(fixture_repo, "retention")
    assert r.code == 2
    assert r.err.startswith("error: models/deployment.json: /: expected the key")
    assert tree_snapshot(fixture_repo) == before
