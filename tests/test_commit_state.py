"""scripts/commit-state (mlops.commit_state): state-only commits, bounded retried pushes, pull-request mode."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlops import config
from mlops.commit_state import backoff, commit_state
from mlops.errors import BadInput, CheckFailed
from mlops.repo import Repo
from tests.support.fake_github import FakeGitHub
from tests.support.repo import make_repo
from tests.support.workflow_harness import GIT_ENV, ROOT, clone, remote_files, remote_log

# config/gitops.json's `commit` with every value at the schema's default, then overridden per test.
DEFAULTS = config.fill(
    config.GitopsConfig, json.loads((ROOT / "config/schemas/gitops.schema.json").read_text()), {}
).commit
FAST = dataclasses.replace(DEFAULTS, max_attempts=4, backoff_base_seconds=0.0, backoff_max_seconds=0.0)


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture
def remote(tmp_path) -> Path:
    seed = make_repo(tmp_path / "seed", git=True)
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(seed, "push", "-q", str(bare), "main:main")
    return bare


def _push_other(remote: Path, tmp_path: Path, rel: str, text: str, name: str = "other") -> None:
    other = clone(remote, tmp_path / name)
    (other / rel).parent.mkdir(parents=True, exist_ok=True)
    (other / rel).write_text(text)
    git(other, "add", rel)
    git(other, "commit", "-qm", f"other: {rel}")
    git(other, "push", "-q", "origin", "main")


def test_commits_only_state_folders_and_leaves_other_work_alone(remote, tmp_path, capsys):
    ws = clone(remote, tmp_path / "ws")
    (ws / "models" / "current").mkdir(parents=True)
    (ws / "models" / "current" / "manifest.json").write_text("{}\n")
    (ws / "metadata" / "cards").mkdir(parents=True)
    (ws / "metadata" / "cards" / "v.md").write_text("# card\n")
    (ws / "config" / "training.json").write_text('{"edited": true}\n')  # someone's unrelated edit
    (ws / "notes.txt").write_text("scratch\n")
    git(ws, "add", "notes.txt")  # staged by hand, not state: must stay staged and uncommitted
    result = commit_state(Repo.at(ws), "training: run 1", FAST)
    assert result["committed"] and result["attempts"] == 1
    assert sorted(result["files"]) == ["metadata/cards/v.md", "models/current/manifest.json"]
    assert remote_log(remote)[0] == "training: run 1"
    assert "notes.txt" not in remote_files(remote)
    status = subprocess.run(["git", "status", "--porcelain"], cwd=ws, capture_output=True, text=True).stdout
    assert set(status.splitlines()) == {"A  notes.txt", " M config/training.json"}
    assert "pushed to main in 1 attempt(s)" in capsys.readouterr().out


def test_nothing_to_commit_is_success(remote, tmp_path, monkeypatch):
    ws = clone(remote, tmp_path / "ws")
    out = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    assert commit_state(Repo.at(ws), "monitoring: run 2", FAST) == {"committed": False, "files": []}
    assert out.read_text() == "committed=false\n"
    assert remote_log(remote) == ["init"]


def test_a_concurrent_push_is_fetched_rebased_and_the_retry_wins(remote, tmp_path):
    ws = clone(remote, tmp_path / "ws")
    _push_other(remote, tmp_path, "docs/x.md", "landed first\n")
    (ws / "metadata").mkdir(exist_ok=True)
    (ws / "metadata" / "report.md").write_text("state\n")
    result = commit_state(Repo.at(ws), "monitoring: run 3", FAST)
    assert result["attempts"] == 2
    assert remote_log(remote) == ["monitoring: run 3", "other: docs/x.md", "init"]


def test_a_conflicting_push_stops_with_the_commit_kept_locally(remote, tmp_path):
    ws = clone(remote, tmp_path / "ws")
    _push_other(remote, tmp_path, "metadata/report.md", "theirs\n")
    (ws / "metadata").mkdir(exist_ok=True)
    (ws / "metadata" / "report.md").write_text("ours\n")
    with pytest.raises(CheckFailed, match=r"the state commit conflicts with origin/main .*kept locally at HEAD"):
        commit_state(Repo.at(ws), "training: run 4", FAST)
    assert git(ws, "log", "-1", "--format=%s") == "training: run 4"
    assert not (ws / ".git" / "rebase-merge").exists() and not (ws / ".git" / "rebase-apply").exists()
    assert remote_log(remote)[0] == "other: metadata/report.md"


def test_retries_are_bounded(remote, tmp_path):
    hook = remote / "hooks" / "pre-receive"
    count = tmp_path / "attempts"
    hook.write_text(f"#!/bin/sh\necho x >> {count}\necho 'busy' >&2\nexit 1\n")
    hook.chmod(0o755)
    ws = clone(remote, tmp_path / "ws")
    (ws / "models").mkdir(exist_ok=True)
    (ws / "models" / "deployment.json").write_text("{}\n")
    with pytest.raises(
        CheckFailed, match=r"could not push to origin/main after 4 attempts .*raise commit.max_attempts"
    ):
        commit_state(Repo.at(ws), "deploy: run 5", FAST)
    assert len(count.read_text().splitlines()) == 4


# What github.com answers a direct push to a protected branch (pre-receive output, then git's verdict).
GH006 = (
    "echo 'error: GH006: Protected branch update failed for refs/heads/main.' >&2\n"
    "echo 'error: Changes must be made through a pull request.' >&2\n"
)


def test_a_protected_branch_is_recognised_at_once_and_names_the_mode(remote, tmp_path):
    hook = remote / "hooks" / "pre-receive"
    count = tmp_path / "attempts"
    hook.write_text(f"#!/bin/sh\necho x >> {count}\n{GH006}exit 1\n")
    hook.chmod(0o755)
    ws = clone(remote, tmp_path / "ws")
    (ws / "models").mkdir(exist_ok=True)
    (ws / "models" / "deployment.json").write_text("{}\n")
    with pytest.raises(CheckFailed) as caught:
        commit_state(Repo.at(ws), "deploy: run 6", FAST)
    message = str(caught.value)
    assert "\n" not in message and "origin/main is protected" in message
    assert "commit.mode to pull-request in config/gitops.json" in message and "max_attempts" not in message
    assert len(count.read_text().splitlines()) == 1  # no retry: it can never succeed
    assert remote_log(remote) == ["init"]
    # Through the script (config/gitops.json's default max_attempts): exit 1 and one line on stderr.
    (ws / "models" / "deployment.json").write_text('{"next": true}\n')
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MLOPS_"))}, **GIT_ENV}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "commit-state"), "--message", "deploy: run 7"],
        cwd=ws, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "commit.mode to pull-request" in errors[0], proc.stderr
    assert len(count.read_text().splitlines()) == 2  # one push per run


def test_backoff_is_full_jitter_under_a_doubling_cap():
    settings = dataclasses.replace(DEFAULTS, backoff_base_seconds=1.0, backoff_max_seconds=5.0)
    rng = random.Random(1)
    for attempt, cap in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)):
        draws = [backoff(attempt, settings, rng) for _ in range(200)]
        assert all(0 <= d <= cap for d in draws)
        assert max(draws) > 0.8 * cap  # spread over the whole range, not a fixed delay
    assert len({round(backoff(3, settings, rng), 6) for _ in range(20)}) > 15


def test_empty_message_is_bad_input(remote, tmp_path):
    ws = clone(remote, tmp_path / "ws")
    with pytest.raises(BadInput, match=r"--message: empty; say what produced the state"):
        commit_state(Repo.at(ws), "  ", FAST)


def test_script_exit_codes(remote, tmp_path):
    ws = clone(remote, tmp_path / "ws")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}, **GIT_ENV}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    script = str(ROOT / "scripts" / "commit-state")
    ok = subprocess.run([script, "-m", "x"], cwd=ws, env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and "nothing to commit" in ok.stdout
    (ws / "config" / "gitops.json").write_text('{"commit": {"mode": "force-push"}}')
    bad = subprocess.run([script, "-m", "x"], cwd=ws, env=env, capture_output=True, text=True)
    assert bad.returncode == 2
    assert re.match(r"error: config/gitops.json: /commit/mode: expected one of \"push\", \"pull-request\"", bad.stderr)


def _pr_env(monkeypatch, fake: FakeGitHub, run: str) -> None:
    for key, value in {**fake.env(), "GITHUB_RUN_ID": run}.items():
        monkeypatch.setenv(key, value)


PR_MODE = dataclasses.replace(DEFAULTS, mode="pull-request", pr_branch_prefix="mlops-state/")


def test_pull_request_mode_opens_one_pull_request_with_auto_merge_and_updates_it(
    remote, tmp_path, monkeypatch, capsys, fake
):
    fake.repo().allow_auto_merge = True
    _pr_env(monkeypatch, fake, "77")
    ws = clone(remote, tmp_path / "ws")
    (ws / "metadata").mkdir(exist_ok=True)
    (ws / "metadata" / "r.md").write_text("x\n")
    result = commit_state(Repo.at(ws), "deploy: full run 77", PR_MODE)
    # The same run commits again (deploy.yml's rollback): same branch, the same pull request, updated.
    (ws / "metadata" / "r.md").write_text("y\n")
    again = commit_state(Repo.at(ws), "rollback: deploy run 77 failed", PR_MODE)
    assert result["branch"] == again["branch"] == "mlops-state/77-1"
    assert result["pull_request"].endswith("/acme/model/pull/1") and again["pull_request"] == result["pull_request"]
    assert (result["pull_request_action"], again["pull_request_action"]) == ("opened", "updated")
    assert result["auto_merge"] == again["auto_merge"] == "enabled"
    (pull,) = fake.pulls()
    assert (pull["head"]["ref"], pull["base"]["ref"], pull["state"]) == ("mlops-state/77-1", "main", "open")
    assert pull["title"] == "rollback: deploy run 77 failed" and "checks wait until a person approves" in pull["body"]
    assert pull["auto_merge"]["merge_method"] == "merge"
    assert fake.count("POST", r"/graphql$") == 1  # already enabled on the update: not asked twice
    assert remote_log(remote) == ["init"]  # main untouched
    assert remote_log(remote, "mlops-state/77-1")[:2] == ["rollback: deploy run 77 failed", "deploy: full run 77"]
    out = capsys.readouterr().out
    assert "pull request" in out and "opened from mlops-state/77-1; auto-merge enabled" in out


def test_pull_request_mode_without_auto_merge_leaves_the_pull_request_for_a_person(remote, tmp_path, monkeypatch, fake):
    # allow_auto_merge is off, GitHub's default
    _pr_env(monkeypatch, fake, "78")
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "out"))
    ws = clone(remote, tmp_path / "ws")
    (ws / "models").mkdir(exist_ok=True)
    (ws / "models" / "deployment.json").write_text("{}\n")
    result = commit_state(Repo.at(ws), "monitoring: run 78", PR_MODE)
    assert result["auto_merge"].startswith("off (the repository does not allow auto-merge")
    (pull,) = fake.pulls(state="open")
    assert pull["auto_merge"] is None and fake.count("POST", r"/graphql$") == 0
    outputs = (tmp_path / "out").read_text()
    assert "pull_request=" + result["pull_request"] in outputs and "auto_merge=off" in outputs
    assert remote_log(remote) == ["init"]


def test_pull_request_mode_when_actions_may_not_open_pull_requests(remote, tmp_path, monkeypatch, fake):
    from tests.support.fake_github import Fault

    fake.inject(
        Fault(status=403, message="GitHub Actions is not permitted to create or approve pull requests."),
        route=r"/pulls$",
        method="POST",
    )
    _pr_env(monkeypatch, fake, "79")
    ws = clone(remote, tmp_path / "ws")
    (ws / "metadata").mkdir(exist_ok=True)
    (ws / "metadata" / "r.md").write_text("x\n")
    with pytest.raises(CheckFailed) as caught:
        commit_state(Repo.at(ws), "training: run 79", PR_MODE)
    message = str(caught.value)
    assert "\n" not in message and "pushed mlops-state/79-1 but could not open its pull request (HTTP 403" in message
    assert "Allow GitHub Actions to create and approve pull requests" in message
    assert remote_log(remote, "mlops-state/79-1")[0] == "training: run 79"  # the state is safe on the branch
    assert remote_log(remote) == ["init"]
