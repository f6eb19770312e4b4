"""Tuning (mlops/hpo.py) without a database: in-process studies. Shards and the fan-in gate: tests/test_shards.py;
PostgreSQL and a real `mlflow server`: tests/test_services.py."""

import hashlib
import json

import pytest

from tests.support.cli import run
from tests.support.repo import make_repo, tree_snapshot

FAST = {
    "dataset": {"synthetic": {"rows": 2000, "seed": 11}},
    "training": {"bootstrap_iterations": 0},
    "training_schedule": {"datasets": {"minimum_samples": 1000}},
}


def _row_hashes(frame) -> list[str]:
    return [hashlib.sha256(repr(tuple(row)).encode()).hexdigest() for row in frame.itertuples(index=False)]


@pytest.mark.slow
def test_tuning_on_fair_data_sees_only_training_rows_and_never_loses_on_cv(tmp_path, monkeypatch):
    """Fair (1978) from the statsmodels wheel: every fit of every trial (and of the defaults' CV and the final
    fit) sees training-split rows only; the study summary compares tuned and default CV scores per type."""
    import sklearn.pipeline

    from mlops import config, data
    from mlops.repo import Repo
    from mlops.train import split
    from tests.support.public_data import configure_fair

    repo = make_repo(tmp_path / "r", training={"bootstrap_iterations": 0})
    configure_fair(repo)
    seen: list[set[str]] = []
    real_fit = sklearn.pipeline.Pipeline.fit

    def recording_fit(self, X, y=None, **kw):
        seen.append(set(_row_hashes(X)))
        return real_fit(self, X, y, **kw)

    monkeypatch.setattr(sklearn.pipeline.Pipeline, "fit", recording_fit)
    types = "logistic_regression,hist_gradient_boosting"
    r = run(repo, "train", "--no-download", "--no-tracking", "--hpo", "--trials", "5", "--model-types", types)
    assert r.code == 0, r.err

    cfg = config.load(Repo.at(repo))
    dataset = data.acquire(cfg, no_download=True)
    prepared = data.prepare(cfg, data.read_table(dataset.path, "fair"), "fair")
    parts = split(prepared, cfg, cfg.training.seed)
    train_rows = set(_row_hashes(parts["X_train"]))
    # The survey's coded answers repeat: rows that occur only outside the training split are the ones to watch.
    test_only = set(_row_hashes(parts["X_test"])) - train_rows
    assert len(test_only) > 300
    # 2 types x (5 trials x 3 folds, at most, pruned ones fewer + 3 default-CV folds + the final fit)
    assert 2 * (3 + 1) + 5 < len(seen) <= 2 * (5 * 3 + 3 + 1)
    assert all(not (rows & test_only) for rows in seen)
    assert all(rows <= train_rows for rows in seen)

    for name in types.split(","):
        record = json.loads(next((repo / "metadata/gates").glob(f"*-{name}-*.json")).read_text())
        hpo = record["hpo"]
        assert hpo["metric"] == "f1" and hpo["folds"] == 3 and hpo["trials"] == 5
        assert hpo["complete"] + hpo["pruned"] + hpo["failed"] == 5
        assert 0 < hpo["default_cv"] < 1 and hpo["best_cv"] is not None
        # the candidate's parameters are the tuned ones only when they beat the defaults on CV
        assert hpo["chosen"] == ("tuned" if hpo["best_cv"] > hpo["default_cv"] else "default")
        assert max(hpo["best_cv"], hpo["default_cv"]) >= hpo["default_cv"]
        folder = "current" if record["decision"] == "promoted" else f"candidates/{record['version']}"
        manifest = json.loads((repo / "models" / folder / "manifest.json").read_text())
        assert manifest["hpo"] == hpo


def _tune(data, trials=None, seconds=None, name="logistic_regression", seed=7):
    from mlops import hpo
    from training.model_types import available

    module = available()[name]
    plan = hpo.Plan("f1", {name: hpo.Budget(trials, seconds, 3)}, None, None)
    return hpo.tune(plan, name, module, data, seed, "t", "key")


@pytest.fixture(scope="module")
def small_data():
    from mlops import synthetic

    frame = synthetic.generate(rows=1200, seed=3)
    y = frame.pop(synthetic.LABEL).to_numpy()
    numeric = [c for c in frame.columns if frame[c].dtype.kind in "if"]
    categorical = [c for c in frame.columns if c not in numeric]
    return {"X_train": frame, "y_train": y, "numeric": numeric, "categorical": categorical}


def test_same_seed_one_worker_same_best_parameters(small_data):
    first, second = _tune(small_data, trials=6), _tune(small_data, trials=6)
    assert first.summary["best_params"] == second.summary["best_params"]
    assert first.summary["best_cv"] == second.summary["best_cv"]
    other = _tune(small_data, trials=6, seed=8)
    assert other.summary["sampler"] == "TPE(seed=8)" and first.summary["sampler"] == "TPE(seed=7)"


@pytest.mark.slow
def test_a_seconds_budget_ends_the_search_within_t_plus_one_trial(small_data):
    budget = 1.0
    tuned = _tune(small_data, seconds=budget)
    durations = [t["seconds"] for t in tuned.trials if t["seconds"] is not None]
    # no trial limit: only the clock stops it, after T and before T plus the trial running at T
    assert tuned.summary["search_seconds"] >= budget
    assert tuned.summary["budget"] == {"trials": None, "seconds": budget}
    assert tuned.summary["search_seconds"] <= budget + max(durations) + 0.5


@pytest.mark.parametrize(
    ("space", "problem"),
    [({}, "the search space is missing or empty"), ({"Cee": {"type": "float", "low": 0.1, "high": 1.0}}, "Cee")],
)
def test_a_bad_search_space_is_one_line_exit_2_nothing_written(tmp_path, monkeypatch, space, problem):
    from training.model_types import logistic_regression

    repo = make_repo(tmp_path / "r", **FAST)
    monkeypatch.setattr(logistic_regression, "SEARCH_SPACE", space)
    before = tree_snapshot(repo)
    r = run(repo, "train", "--no-download", "--hpo", "--model-types", "logistic_regression")
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "training/model_types/logistic_regression.py: SEARCH_SPACE" in lines[0]
    assert problem in lines[0]
    assert tree_snapshot(repo) == before and not (repo / ".mlflow").exists()


def test_an_unreachable_storage_is_one_line_exit_2(tmp_path, monkeypatch):
    from mlops.services import free_port

    repo = make_repo(tmp_path / "r", **FAST)
    url = f"postgresql+psycopg2://someone:secret@127.0.0.1:{free_port()}/optuna"
    monkeypatch.setenv("OPTUNA_STORAGE", url)
    before = tree_snapshot(repo)
    r = run(repo, "train", "--no-download", "--hpo", "--model-types", "logistic_regression")
    assert r.code == 2, r.err
    line = r.err.strip()
    assert len(line.splitlines()) == 1 and line.startswith("error: OPTUNA_STORAGE: cannot open the Optuna study")
    assert "127.0.0.1" in line and "secret" not in line  # named, without its password
    assert tree_snapshot(repo) == before


def test_a_budget_without_trials_or_seconds_and_an_unknown_per_type_entry_are_refused(tmp_path):
    unbounded = make_repo(tmp_path / "a", **{**FAST, "training": {"hpo": {"trials": None, "seconds": None}}})
    r = run(unbounded, "train", "--no-download", "--hpo", "--model-types", "logistic_regression")
    assert r.code == 2 and "config/training.json: /hpo (model type logistic_regression)" in r.err
    assert "neither trials nor seconds" in r.err and len(r.err.strip().splitlines()) == 1
    # --trials bounds it again; a per-type entry for a type that does not exist is a typo, not a no-op
    typo = make_repo(tmp_path / "b", **{**FAST, "training": {"hpo": {"per_type": {"logistic_regresion": {}}}}})
    r = run(typo, "train", "--no-download", "--hpo", "--trials", "2", "--model-types", "logistic_regression")
    assert r.code == 2 and "/hpo/per_type/logistic_regresion: unknown model type" in r.err


class _Driver(Exception):
    """A DBAPI error as psycopg2 raises it: `pgcode` is set when the server answered, None when it was not reached."""

    def __init__(self, pgcode):
        super().__init__(f"driver error {pgcode}")
        self.pgcode = pgcode


@pytest.mark.parametrize(
    ("pgcode", "calls", "opens"),
    [("40P01", 2, True), ("23505", 2, True), (None, 1, False)],  # a deadlock, a duplicate key; no server
)
def test_opening_the_storage_retries_a_table_creation_race_but_not_an_unreachable_server(
    monkeypatch, pgcode, calls, opens
):
    import optuna
    from sqlalchemy.exc import IntegrityError, OperationalError

    from mlops import hpo
    from mlops.errors import BadInput

    seen = []

    def storage(url, engine_kwargs=None):
        seen.append(url)
        if len(seen) == 1:
            kind = IntegrityError if pgcode == "23505" else OperationalError
            raise kind("CREATE TABLE studies", {}, _Driver(pgcode))
        return "storage"

    monkeypatch.setattr(optuna.storages, "RDBStorage", storage)
    monkeypatch.setattr(hpo.time, "sleep", lambda _s: None)
    url = "postgresql+psycopg2://u:secret@127.0.0.1:1/optuna"
    if opens:
        assert hpo.open_storage(url) == "storage"
    else:
        with pytest.raises(BadInput) as err:
            hpo.open_storage(url)
        assert "cannot open the Optuna study storage" in str(err.value) and "secret" not in str(err.value)
    assert len(seen) == calls


def test_a_worker_stops_waiting_once_every_worker_has_ended_its_share_even_with_trials_missing(tmp_path, monkeypatch):
    # A seconds budget (or failed trials) can leave fewer finished trials than the budget's count: the
    # workers' end marks, not the count, end the wait (before this, the fitting shard waited 15 minutes).
    import time

    import optuna

    from mlops import hpo

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    for value in (0.5, 0.6):
        study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=value))
    warned = []
    monkeypatch.setattr(hpo.gha, "warn", warned.append)
    monkeypatch.setattr(hpo, "WAIT_SECONDS", 1.0)

    study.set_user_attr(hpo.DONE_MARK + "1/2", True)
    began = time.monotonic()
    hpo._wait_for_workers(study, 6, 2, "lr")  # one worker still searching: waits, then warns
    assert time.monotonic() - began >= 1.0 and len(warned) == 1 and "1 of 2 workers done" in warned[0]

    study.set_user_attr(hpo.DONE_MARK + "2/2", True)
    began = time.monotonic()
    hpo._wait_for_workers(study, 6, 2, "lr")  # 2 of 6 trials, but both workers have ended: no wait
    assert time.monotonic() - began < 0.5 and len(warned) == 1
