"""A small trained repository (real training, real MLflow on a temp sqlite file) shared by card and lineage tests."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.repo import ROOT, make_repo

FAST = {
    "dataset": {"synthetic": {"rows": 4000, "seed": 11}},
    "training": {"bootstrap_iterations": 50},
    "training_schedule": {"datasets": {"minimum_samples": 1000}},  # 4000 rows keep tests fast and still validate
}
TYPES = "logistic_regression,hist_gradient_boosting"
_ENV_PREFIXES = ("GITHUB_", "MLFLOW_", "KAGGLE_", "MLOPS_")


def shared(tmp_path_factory: pytest.TempPathFactory, name: str, build) -> dict:
    """build(folder) -> dict with a "repo" path, run once per test session and copied for each xdist worker.

    Training is the slow part of these tests; with `pytest -n 2` each worker would otherwise train its own
    copy. Each worker gets a private copy because tests edit files and restore them.
    """
    from filelock import FileLock

    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp)
        if not os.environ.get("PYTEST_XDIST_WORKER"):
            return build(tmp_path_factory.mktemp(name))
        root = tmp_path_factory.getbasetemp().parent  # one folder per session, shared by its workers
        src = root / f"shared-{name}"
        with FileLock(str(root / f"shared-{name}.lock")):
            if not (src / "result.json").exists():
                shutil.rmtree(src, ignore_errors=True)
                src.mkdir()
                info = build(src)
                (src / "result.json").write_text(
                    json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in info.items()})
                )
        info = json.loads((src / "result.json").read_text())
        mine = tmp_path_factory.mktemp(name)
        repo = Path(info["repo"])
        shutil.copytree(repo, mine / repo.relative_to(src), symlinks=True)
        return {**info, "repo": mine / repo.relative_to(src)}


def clean_env(mp: pytest.MonkeyPatch) -> None:
    """What tests/conftest.py does per test, for module-scoped fixtures that run before it."""
    for key in list(os.environ):
        if key.startswith(_ENV_PREFIXES) or key in {"CI", "RUNNER_TEMP"}:
            mp.delenv(key, raising=False)


def train(repo: Path, *args: str, types: str = TYPES) -> dict:
    r = run(repo, "train", "--no-download", "--model-types", types, *args)
    assert r.code == 0, r.err
    return json.loads((repo / "models/current/manifest.json").read_text())


def trained_twice(tmp: Path) -> dict:
    """Train twice: the first run promotes a champion, the second run's candidates are compared with it."""
    repo = make_repo(tmp, git=True, **FAST)
    first = train(repo, types="logistic_regression")
    train(repo, types="hist_gradient_boosting")  # weaker here: a regression against the champion
    second = sorted(p.name for p in (repo / "models/candidates").iterdir())
    return {"repo": repo, "champion": first["version"], "second_run": second}


def with_code(tmp: Path, **overrides: dict) -> Path:
    """A git repo holding config/ and a copy of the mlops/ and training/ packages: a fork in miniature."""
    repo = make_repo(tmp, **{**FAST, **overrides})
    for pkg in ("mlops", "training"):
        shutil.copytree(ROOT / pkg, repo / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    import subprocess

    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "fork"],
        check=True,
    )
    return repo
