from __future__ import annotations

import os

import pytest

from tests.support.fake_github import FakeGitHub
from tests.support.repo import make_repo


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    # Tests never see a real token, Actions variables or a tracking server from the caller's shell.
    for key in list(os.environ):
        if key.startswith(("GITHUB_", "MLFLOW_", "KAGGLE_", "MLOPS_")) or key in {"CI", "RUNNER_TEMP"}:
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")


@pytest.fixture
def repo(tmp_path):
    """A temp repository with this checkout's config/."""
    return make_repo(tmp_path / "repo")


@pytest.fixture
def fake():
    """A fake GitHub REST server on loopback that knows the workflows the project dispatches."""
    server = FakeGitHub(workflows=("ml-training.yml", "deploy.yml")).start()
    try:
        yield server
    finally:
        server.stop()
