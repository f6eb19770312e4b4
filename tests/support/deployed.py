"""A trained repository with two versions of one model type, built once per test run and copied per test.

Real training and real MLflow (sqlite in the repo); the two versions are logistic regressions trained on
different seeds (different splits), so a canary of one against the other is a realistic, healthy canary.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from filelock import FileLock

from tests.support.cli import run
from tests.support.repo import make_repo

FAST = {
    "dataset": {"synthetic": {"rows": 4000, "seed": 7}},
    "training": {"bootstrap_iterations": 20},
    "training_schedule": {"datasets": {"minimum_samples": 1000}},
    # Latency budgets far above any runner's: tests that exercise a budget set a tiny one themselves.
    "deployment": {"latency_budget_ms_p95": 10000.0, "health_check": {"latency_budget_ms_p95": 10000.0}},
}
_ENV_PREFIXES = ("GITHUB_", "MLFLOW_", "KAGGLE_", "MLOPS_")


def _build(target: Path) -> dict:
    staging = target.with_name(target.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    repo = make_repo(staging, **FAST)
    first = run(repo, "train", "--no-download", "--model-types", "logistic_regression")
    assert first.code == 0, first.err
    v1 = json.loads((repo / "models/current/manifest.json").read_text())["version"]
    second = run(repo, "train", "--no-download", "--model-types", "logistic_regression", "--seed", "43")
    assert second.code == 0, second.err
    from mlops import registry
    from mlops.repo import Repo

    versions = sorted(registry.all_versions(Repo.at(repo)))
    v2 = next(v for v in versions if v != v1)
    info = {"v1": v1, "v2": v2}
    (repo / "versions.json").write_text(json.dumps(info))
    os.rename(staging, target)
    return info


def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared trained repository (built by the first xdist worker that asks, under a lock)."""
    base = tmp_path_factory.getbasetemp()
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    root = base.parent / f"deploy-template-{run_id}" if run_id else base / "deploy-template"
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock"):
        if not (root / "versions.json").exists():
            # mlflow.set_tracking_uri() exports MLFLOW_TRACKING_URI; left set, later deploys in this
            # process would move aliases in the template's store instead of their own copy's.
            saved = dict(os.environ)
            try:
                for key in list(os.environ):
                    if key.startswith(_ENV_PREFIXES) or key in {"CI", "RUNNER_TEMP"}:
                        del os.environ[key]
                _build(root)
            finally:
                os.environ.clear()
                os.environ.update(saved)
    return root


def copy_repo(template_root: Path, dest: Path, *, tracking: bool = True) -> tuple[Path, str, str]:
    """A private copy of the template; returns (repo, v1, v2)."""
    ignore = None if tracking else shutil.ignore_patterns(".mlflow")
    shutil.copytree(template_root, dest, ignore=ignore)
    info = json.loads((dest / "versions.json").read_text())
    return dest, info["v1"], info["v2"]


def set_config(repo: Path, name: str, patch: dict) -> None:
    """Merge a patch into config/<name>.json of a test repository."""
    from tests.support.repo import _merge

    path = repo / "config" / f"{name}.json"
    data = json.loads(path.read_text())
    _merge(data, patch)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def feature_rows(n: int, seed: int):
    """n rows of the synthetic distribution without the label (what a client sends)."""
    from mlops import synthetic

    return synthetic.generate(n, seed).drop(columns=[synthetic.LABEL])
