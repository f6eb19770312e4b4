"""mlops.commands.doctor_cmd: flags, the checklist and exit codes against the fake GitHub, bad input in one line.

The checks themselves are tested in tests/test_doctor.py."""

from __future__ import annotations

import shutil

import pytest

from mlops import doctor
from mlops.alerts.model import LABELS
from mlops.commands import doctor_cmd
from tests.commands.support import options, parse, usage_error
from tests.support.cli import run
from tests.support.fake_github import FakeGitHub
from tests.support.repo import ROOT, make_repo

WORKFLOWS = [wf.file for wf in doctor.read_workflows(ROOT)]
SECRETS = sorted({name for wf in doctor.read_workflows(ROOT) for name in wf.secrets})


@pytest.fixture
def checkout(tmp_path):
    """A temp repository with this project's config/ and its real .github/workflows/."""
    root = make_repo(tmp_path / "repo")
    shutil.copytree(ROOT / ".github" / "workflows", root / ".github" / "workflows")
    return root


@pytest.fixture
def gh(monkeypatch):
    server = FakeGitHub(workflows=tuple(WORKFLOWS)).start()
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    try:
        yield server
    finally:
        server.stop()


def test_flags_and_dispatch():
    assert options("doctor") == {"--help", "--repo", "--optional-secret"}
    args = parse("--repo", "/checkout", "doctor", "--repo", "acme/model", "--optional-secret", "A,B")
    assert (args.func, args.repo, args.github_repository) == (doctor_cmd.run_doctor, "/checkout", "acme/model")
    assert args.optional_secret == ["A,B"]


def test_a_fresh_fork_prints_each_problem_with_its_fix_and_exits_1(gh, checkout):
    gh.fresh_fork()
    r = run(checkout, "doctor")
    assert r.code == 1, r
    lines = r.out.splitlines()
    assert lines[0] == f"mlops doctor: acme/model at {gh.url}, checkout {checkout}"
    problems = [line for line in lines if line.startswith("[!!] ")]
    # Actions, one per workflow, Issues, labels, branch protection, one per secret the workflows use.
    assert len(problems) == 1 + len(WORKFLOWS) + 1 + 1 + 1 + len(SECRETS)
    assert all(("→" in line or "`" in line) for line in problems)  # each says what to click or set
    assert any(line.startswith("[!!] Issues: Issues are disabled") for line in problems)
    assert any("`gh workflow enable ml-training.yml`" in line for line in problems)
    assert any("set `commit.mode: pull-request` in config/gitops.json" in line for line in problems)
    assert any("`gh secret set MLOPS_AUDIT_SIGNING_KEY`" in line for line in problems)
    assert r.err == (
        f"error: doctor: {len(problems)} problems; fix the lines marked [!!] and run `mlops doctor` again\n"
    )


def test_a_ready_repository_exits_0(gh, checkout, tmp_path, monkeypatch):
    gh.ready_repository(labels=list(LABELS), secrets=SECRETS)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    r = run(checkout, "doctor")
    assert (r.code, r.err) == (0, ""), r
    assert "[!!]" not in r.out and r.out.endswith("ready: no problems found\n")
    assert "[ok] Workflows: all 6 active (3 scheduled)" in r.out
    assert summary.read_text().startswith("### mlops doctor: acme/model\n\n- [x] **Actions**")


def test_optional_secrets_turn_missing_ones_into_notes(gh, checkout):
    kaggle = [name for name in SECRETS if name.startswith("KAGGLE_")]
    gh.ready_repository(labels=list(LABELS), secrets=[s for s in SECRETS if s not in kaggle])
    assert run(checkout, "doctor").code == 1
    r = run(checkout, "doctor", "--optional-secret", ",".join(kaggle))
    assert r.code == 0, r
    assert r.out.count("[--] Secrets:") == len(kaggle)


@pytest.mark.parametrize(
    ("env", "argv", "line"),
    [
        (
            {"GITHUB_REPOSITORY": "acme/model"},
            [],
            "error: GITHUB_TOKEN: not set; doctor reads the repository's settings through the GitHub API; "
            "export GITHUB_TOKEN=$(gh auth token) (a repository admin's token)",
        ),
        (
            {"GITHUB_TOKEN": "t"},
            ["--repo", "acme"],
            "error: --repo: 'acme' is not owner/name; name it like acme/churn-model",
        ),
        (
            {"GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "a/b/c"},
            [],
            "error: GITHUB_REPOSITORY: 'a/b/c' is not owner/name; name it like acme/churn-model",
        ),
        (
            {"GITHUB_TOKEN": "t"},
            [],
            "error: GITHUB_REPOSITORY: no repository to check; pass --repo owner/name or set GITHUB_REPOSITORY",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(checkout, monkeypatch, env, argv, line):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert usage_error(checkout, "doctor", *argv) == line


def test_a_refused_token_is_one_line_exit_2(gh, checkout, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_wrongTOKEN0123456789")
    line = usage_error(checkout, "doctor")
    assert line.startswith("error: GITHUB_TOKEN: GitHub rejected the token (401 Bad credentials)")
    assert "wrongTOKEN" not in line


def test_no_config_folder_is_bad_input(gh):
    assert usage_error(None, "doctor").startswith("error: /nonexistent/mlops-command-tests/config: no config/ folder")
