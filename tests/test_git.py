import subprocess

import pytest

from mlops import git
from mlops.errors import BadInput


def test_run_returns_the_completed_process_and_never_raises_on_exit_code(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    ok = git.run(tmp_path, "rev-parse", "--is-inside-work-tree")
    assert ok.returncode == 0 and ok.stdout.strip() == "true"
    bad = git.run(tmp_path, "rev-parse", "HEAD")  # no commit yet
    assert bad.returncode != 0 and bad.stderr


def test_run_binary_and_input(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    out = git.run(tmp_path, "hash-object", "--stdin", input=b"abc\n", text=False)
    assert out.stdout.strip() == b"8baef1b4abc478178b004d62031cf7fe6db6f903"  # `echo abc | git hash-object --stdin`


def test_run_never_prompts_for_credentials_and_passes_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "1")
    # A shell alias prints the environment git hands its children.
    out = git.run(tmp_path, "-c", "alias.pe=!printenv GIT_TERMINAL_PROMPT SOME", "pe", env={"SOME": "value"})
    assert out.stdout.split() == ["0", "value"]


def test_missing_git_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on PATH
    with pytest.raises(BadInput, match=r"cannot run git rev-parse .*; install git and run inside a checkout"):
        git.run(tmp_path, "rev-parse", "HEAD")
