"""The team backend for real: a throwaway PostgreSQL cluster, `mlflow server` on it with proxied artifacts,
Optuna studies in the same cluster, shard processes running side by side (docs/team-backend.md)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.postgres import postgres_cluster, team_backend  # noqa: F401 - fixtures
from tests.support.repo import make_repo

FAST = {
    "dataset": {"synthetic": {"rows": 2000, "seed": 11}},
    "training": {"bootstrap_iterations": 0},
    "training_schedule": {"datasets": {"minimum_samples": 1000}},
}
MLOPS = str(Path(sys.executable).with_name("mlops"))
TYPES = "logistic_regression,extra_trees"  # far apart on this data: the promoted type is not a coin toss


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OPTUNA_", "GITHUB_", "MLOPS_"))}
    return {**env, "PYTHONWARNINGS": "ignore", **extra}


def _finished(url: str, worker: str | None = None) -> dict[str, list]:
    import optuna

    storage = optuna.storages.RDBStorage(url)
    out = {}
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        out[summary.study_name] = [
            t for t in study.get_trials() if worker is None or t.user_attrs.get("worker") == worker
        ]
    return out


def _wait_all(procs: list[subprocess.Popen], logs: list[Path], timeout: float) -> None:
    """Wait for every shard; the first to fail (or the clock) ends the wait, stops the others and fails the
    test with every shard's output, instead of leaving a partner waiting for trials that will never come."""
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        if any(p.returncode not in (None, 0) for p in procs):
            break
        time.sleep(0.5)
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=30)
    outputs = "\n".join(
        f"--- {log.name} (exit {p.returncode})\n{log.read_text()}" for p, log in zip(procs, logs, strict=True)
    )
    assert all(p.returncode == 0 for p in procs), outputs


@pytest.mark.slow
def test_two_shard_processes_share_one_study_per_type_and_the_gate_promotes_as_one_process(tmp_path, team_backend):  # noqa: F811
    """Against what `make services` starts: PostgreSQL and `mlflow server` on it."""
    import mlflow

    optuna_url = team_backend.optuna_url("shards")
    env = _env(MLFLOW_TRACKING_URI=team_backend.mlflow_uri, OPTUNA_STORAGE=optuna_url)
    repo = make_repo(tmp_path / "sharded", **FAST)
    outs = [tmp_path / "s1", tmp_path / "s2"]
    flags = ["--no-download", "--hpo", "--trials", "6", "--model-types", TYPES]
    logs = [tmp_path / "s1.log", tmp_path / "s2.log"]
    procs = []
    for i, (out, log) in enumerate(zip(outs, logs, strict=True), 1):
        with log.open("w") as sink:
            cmd = [MLOPS, "--repo", str(repo), "train", *flags, "--shard", f"{i}/2", "--out", str(out)]
            procs.append(subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT))
    _wait_all(procs, logs, timeout=300)

    # one study per type holds every trial of both workers: none lost, none run twice
    studies = _finished(optuna_url)
    assert sorted(name.split("-")[2] for name in studies) == sorted(TYPES.split(","))
    for trials in studies.values():
        assert sorted(t.number for t in trials) == list(range(6))
        assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
        assert sorted(t.user_attrs["worker"] for t in trials) == ["1/2"] * 3 + ["2/2"] * 3

    r = subprocess.run([MLOPS, "--repo", str(repo), "gate", "--no-download", "--candidates", *map(str, outs)],
                       env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0 and "promoted " in r.stdout, r.stdout + r.stderr
    current = json.loads((repo / "models/current/manifest.json").read_text())

    one = make_repo(tmp_path / "one", **FAST)
    single = run(one, "train", "--no-tracking", *flags)
    assert single.code == 0, single.err
    assert current["model_type"] == json.loads((one / "models/current/manifest.json").read_text())["model_type"]

    # MLflow: one training run (the gate's) at the top, a run per shard under it, a run per type under
    # its shard, the type's trials under that
    client = mlflow.MlflowClient(tracking_uri=team_backend.mlflow_uri)
    experiment = client.get_experiment_by_name("customer-churn")
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    by_id = {x.info.run_id: x for x in runs}
    parents = [x for x in runs if "mlops.shard" in x.data.tags]
    assert sorted(x.data.tags["mlops.shard"] for x in parents) == ["1/2", "2/2"]
    top = [x for x in runs if "mlflow.parentRunId" not in x.data.tags]
    assert len(top) == 1 and top[0].info.run_name.startswith("train-") and "mlops.shard" not in top[0].data.tags
    assert all(x.data.tags["mlflow.parentRunId"] == top[0].info.run_id for x in parents)
    assert sorted(x.info.run_name.rsplit("-", 3)[0] for x in parents) == ["shard-1of2", "shard-2of2"]
    type_runs = [x for x in runs if x.info.run_name in TYPES.split(",")]
    assert sorted(x.info.run_name for x in type_runs) == sorted(TYPES.split(","))
    for type_run in type_runs:
        assert "mlops.shard" in by_id[type_run.data.tags["mlflow.parentRunId"]].data.tags
        trials = [x for x in runs if x.data.tags.get("mlflow.parentRunId") == type_run.info.run_id]
        assert sorted(x.info.run_name for x in trials) == sorted(f"trial-{n}" for n in range(6))
    assert current["mlflow"]["run_id"] in {x.info.run_id for x in type_runs}
    champion = client.get_model_version_by_alias("customer-churn-classifier", "champion")
    assert str(champion.version) == current["mlflow"]["model_version"]


@pytest.mark.slow
def test_postgres_stopped_mid_study_is_exit_2_and_the_next_run_resumes(tmp_path, postgres_cluster):  # noqa: F811
    pg = postgres_cluster
    pg.create_database("resume")
    url = pg.url("resume")
    repo = make_repo(tmp_path / "r", **FAST)
    cmd = [MLOPS, "--repo", str(repo), "train", "--no-download", "--no-tracking", "--hpo", "--trials", "30",
           "--model-types", "logistic_regression", "--shard", "1/1"]  # fmt: skip
    proc = subprocess.Popen([*cmd, "--out", str(tmp_path / "first")], env=_env(OPTUNA_STORAGE=url),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            done = [t for ts in _finished(url).values() for t in ts if t.state.name in ("COMPLETE", "PRUNED")]
            if len(done) >= 3:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the study did not get going")
    finally:
        pg.stop()
        try:
            out, err = proc.communicate(timeout=120)
        finally:
            pg.start()
    assert proc.returncode == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors == err.strip().splitlines()[-1:]
    assert f"the Optuna study storage postgresql+psycopg2://127.0.0.1:{pg.port}/resume" in errors[0]
    assert not (repo / "models/current").exists() and not list((repo / "models").glob(".incoming-*"))
    assert not (tmp_path / "first" / "shard.json").exists()

    before = [t for ts in _finished(url).values() for t in ts if t.state.name in ("COMPLETE", "PRUNED")]
    assert 3 <= len(before) < 30
    again = subprocess.run([*cmd, "--out", str(tmp_path / "second")], env=_env(OPTUNA_STORAGE=url),
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    manifest = json.loads(next((tmp_path / "second").glob("*/manifest.json")).read_text())
    hpo = manifest["hpo"]
    assert hpo["trials_this_run"] == 30 - len(before)  # resumed: the finished trials counted, not rerun
    studies = _finished(url, worker="1/1")
    assert len(studies) == 1
    finished = [t for t in next(iter(studies.values())) if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 30
