"""Hyper-parameter search with Optuna: a budgeted study per model type, cross-validated on the training split.

- The search space is `SEARCH_SPACE` beside each factory in training/model_types/<type>.py; the budget is
  config/training.json /hpo (trials and/or seconds, folds; per-type overrides); the metric is the gate's
  primary metric. `plan` checks all of it (and opens the study storage) before anything is written.
- `tune` runs this process's share of a type's study: TPE with a fixed seed, each trial a stratified k-fold
  cross-validation on the training split only (the test split the gate scores is never passed here),
  pruned on the running mean of its folds (MedianPruner). The tuned parameters are kept only when their CV
  score is at least the default parameters' CV score, so the tuned candidate is never worse on CV.
- Several processes given one storage URL (config /hpo/storage or OPTUNA_STORAGE, e.g. PostgreSQL) are
  workers of one study: `mlops train --shard I/N` runs its share of each type's trials, tagged with its
  worker id, so a rerun after a crash resumes (finished trials count) instead of starting over.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops import gha
from mlops.errors import BadInput

KINDS = ("float", "int", "categorical")
FINISHED = ("COMPLETE", "PRUNED")
WAIT_SECONDS = 900.0  # how long the shard that fits a type waits for the other workers' trials of it
DONE_MARK = "worker-done:"  # study user attribute + worker ("1/2"): that worker's share of the trials has ended


@dataclass(frozen=True)
class Budget:
    trials: int | None
    seconds: float | None
    folds: int


@dataclass(frozen=True)
class Plan:
    """What `tune` needs, checked up front: budgets, the storage, this worker's place among the shards."""

    metric: str
    budgets: dict[str, Budget]
    storage_url: str | None  # None: in-process (each process its own studies)
    storage: Any = field(repr=False, compare=False)
    shard: tuple[int, int] = (0, 1)

    @property
    def shares_trials(self) -> bool:
        """Workers share a type's trials only through a storage, and only with a trial budget to divide."""
        return self.storage_url is not None and self.shard[1] > 1

    def worker(self) -> str:
        return f"{self.shard[0] + 1}/{self.shard[1]}"  # as --shard spells it


@dataclass(frozen=True)
class Tuned:
    """A type's tuning outcome: the parameters its final fit uses, the study summary, its trials."""

    params: dict[str, Any]
    summary: dict[str, Any]
    trials: list[dict[str, Any]]


def settings(cfg: Any) -> tuple[Any, Any]:
    """config/training.json /hpo and /matrix (mlops.config.Hpo, Matrix) with the schema's defaults."""
    return cfg.training.hpo, cfg.training.matrix


def plan(
    cfg: Any, types: dict[str, Any], *, enabled: bool | None, trials: int | None, shard: tuple[int, int] | None
) -> Plan | None:
    """None when tuning is off; otherwise every search space, budget and the storage checked (BadInput)."""
    hpo, _ = settings(cfg)
    if not (hpo.enabled if enabled is None else enabled):
        return None
    if trials is not None and trials < 1:
        raise BadInput("--trials", f"{trials} is not a positive number of trials", "pass --trials 1 or more")
    for name in hpo.per_type:
        if name not in types and name not in _known_types():
            raise BadInput(f"config/training.json: /hpo/per_type/{name}", "unknown model type", "remove or rename it")
    budgets = {}
    for name, module in types.items():
        check_space(name, module)
        own = hpo.per_type.get(name, {})
        budget = Budget(
            trials=trials if trials is not None else own.get("trials", hpo.trials),
            seconds=own.get("seconds", hpo.seconds),
            folds=own.get("folds", hpo.folds),
        )
        if budget.trials is None and budget.seconds is None:
            raise BadInput(
                f"config/training.json: /hpo (model type {name})",
                "neither trials nor seconds bounds the search",
                "set /hpo/trials or /hpo/seconds, or pass --trials N",
            )
        budgets[name] = budget
    url = os.environ.get("OPTUNA_STORAGE") or hpo.storage or None
    storage = open_storage(url) if url else None
    return Plan(cfg.training.primary_metric, budgets, url, storage, shard or (0, 1))


def _known_types() -> dict[str, Any]:
    from training.model_types import available

    return available()


def check_space(name: str, module: Any) -> dict[str, Any]:
    """The type's SEARCH_SPACE, refused (BadInput) when missing, empty, malformed or naming an unknown parameter."""
    where = f"training/model_types/{Path(getattr(module, '__file__', name + '.py')).name}: SEARCH_SPACE"
    space = getattr(module, "SEARCH_SPACE", None)
    if not isinstance(space, dict) or not space:
        raise BadInput(where, "the search space is missing or empty", "declare at least one parameter, or --no-hpo")
    known = module.build([], [], 0).named_steps["model"].get_params()
    for key, spec in space.items():
        if key not in known:
            close = ", ".join(sorted(known)[:12])
            raise BadInput(f"{where}/{key}", "not a parameter of the model step", f"use one of: {close}")
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in KINDS:
            raise BadInput(f"{where}/{key}", f"type {kind!r} is not one of {', '.join(KINDS)}", "fix the entry")
        if kind == "categorical":
            if not isinstance(spec.get("choices"), list) or not spec["choices"]:
                raise BadInput(f"{where}/{key}", "a categorical entry needs a non-empty 'choices' list", "add them")
        elif not (isinstance(spec.get("low"), (int, float)) and isinstance(spec.get("high"), (int, float))) or not (
            spec["low"] < spec["high"]
        ):
            raise BadInput(f"{where}/{key}", "needs numbers 'low' < 'high'", "fix the bounds")
    return space


def open_storage(url: str) -> Any:
    """An Optuna RDB storage (tables created on first use); an unreachable one is BadInput naming it."""
    import optuna

    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": 10}
    from sqlalchemy.exc import OperationalError

    for attempt in range(4):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except Exception as exc:  # noqa: BLE001 - driver, DNS and SQL errors all mean the same here
            # Workers starting together race to create Optuna's tables (a duplicate key, or a deadlock the
            # server breaks): the loser finds them made. Not reaching the server at all is not retried.
            answered = getattr(getattr(exc, "orig", None), "pgcode", None) is not None
            if attempt == 3 or (isinstance(exc, OperationalError) and not answered):
                raise storage_error(url, exc, "cannot open") from None
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


def storage_error(url: str, exc: BaseException, doing: str) -> BadInput:
    from mlops.tracking import redact

    where = "OPTUNA_STORAGE" if os.environ.get("OPTUNA_STORAGE") else "config/training.json: /hpo/storage"
    detail = " ".join(str(exc).split())[:160]
    return BadInput(
        where,
        f"{doing} the Optuna study storage {redact(url)} ({type(exc).__name__}: {detail})",
        "start the database or fix the URL, then rerun: a study resumes where it stopped",
    )


def suggest(trial: Any, space: dict[str, Any]) -> dict[str, Any]:
    params = {}
    for key, spec in space.items():
        if spec["type"] == "categorical":
            params[key] = trial.suggest_categorical(key, spec["choices"])
        elif spec["type"] == "int":
            params[key] = trial.suggest_int(key, spec["low"], spec["high"], step=spec.get("step", 1),
                                            log=spec.get("log", False))  # fmt: skip
        else:
            params[key] = trial.suggest_float(key, spec["low"], spec["high"], log=spec.get("log", False))
    return params


def cv_score(
    module: Any, params: dict[str, Any], data: dict[str, Any], folds: int, metric: str, seed: int, trial: Any = None
) -> float:
    """Mean `metric` over stratified folds of the training split; reports each fold's running mean to `trial`
    and raises optuna.TrialPruned when the pruner says so."""
    import numpy as np
    from sklearn.metrics import get_scorer
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    X, y = data["X_train"], data["y_train"]
    scorer = get_scorer(metric)
    scores: list[float] = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for step, (fit_rows, score_rows) in enumerate(splitter.split(np.zeros(len(y)), y)):
        pipeline = module.build(data["numeric"], data["categorical"], seed)
        pipeline.set_params(**{f"model__{k}": v for k, v in params.items()})
        if pipeline.named_steps["model"].get_params().get("n_jobs") not in (None, 1):
            pipeline.set_params(model__n_jobs=1)  # one core per trial: reproducible, and shards run side by side
        with threadpool_limits(1):  # OpenMP/BLAS too (gradient boosting): busy-waiting threads on shared cores
            pipeline.fit(X.iloc[fit_rows], y[fit_rows])
        scores.append(float(scorer(pipeline, X.iloc[score_rows], y[score_rows])))
        if trial is not None:
            import optuna

            trial.report(float(np.mean(scores)), step)
            if step < folds - 1 and trial.should_prune():
                raise optuna.TrialPruned()
    return float(np.mean(scores))


def study_name(prefix: str, name: str, space: dict[str, Any], budget: Budget, metric: str, key: str) -> str:
    """Same data, seed, space, folds and metric: the same study, so a rerun resumes it."""
    digest = hashlib.sha256(
        json.dumps([key, space, budget.folds, metric], sort_keys=True, default=str).encode()
    ).hexdigest()
    return f"{prefix}-{name}-{digest[:12]}"


def tune(plan: Plan, name: str, module: Any, data: dict[str, Any], seed: int, prefix: str, key: str) -> Tuned:
    """Run this worker's share of the type's study and return the parameters its final fit uses.

    `data` holds X_train, y_train, numeric and categorical: the training split and nothing else."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    budget, space = plan.budgets[name], module.SEARCH_SPACE
    index, width = plan.shard
    study_id = study_name(prefix, name, space, budget, plan.metric, key)
    began = time.monotonic()
    try:
        study = optuna.create_study(
            study_name=study_id,
            storage=plan.storage,
            sampler=optuna.samplers.TPESampler(seed=(seed + index) % 2**32),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
            direction="maximize",
            load_if_exists=True,
        )
        ran = _optimize(plan, study, budget, module, space, data, seed)
        searched = time.monotonic() - began
        if plan.shares_trials:
            study.set_user_attr(DONE_MARK + plan.worker(), True)  # this worker's share has ended
            _wait_for_workers(study, budget.trials, width, name)
        trials = study.get_trials(deepcopy=False)
    except (KeyboardInterrupt, BadInput):
        raise
    except Exception as exc:  # noqa: BLE001 - the storage failing mid-study: one line naming it, exit 2
        if plan.storage_url is None:
            raise
        raise storage_error(plan.storage_url, exc, f"lost {name}'s study in") from None
    default_cv = cv_score(module, {}, data, budget.folds, plan.metric, seed)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    best = max(complete, key=lambda t: (t.value, -t.number)) if complete else None
    tuned = best is not None and best.value > default_cv
    summary = {
        "study": study_id,
        "storage": _redacted(plan.storage_url),
        "sampler": f"TPE(seed={(seed + index) % 2**32})",
        "pruner": "median of earlier trials' running fold means",
        "metric": plan.metric,
        "folds": budget.folds,
        "budget": {"trials": budget.trials, "seconds": budget.seconds},
        "worker": plan.worker(),
        "trials": len(trials),
        "complete": len(complete),
        "pruned": sum(t.state.name == "PRUNED" for t in trials),
        "failed": sum(t.state.name == "FAIL" for t in trials),
        "trials_this_run": ran,
        "best_cv": best.value if best else None,
        "best_trial": best.number if best else None,
        "best_params": dict(best.params) if best else None,
        "default_cv": default_cv,
        "chosen": "tuned" if tuned else "default",
        "cv_gain": (best.value - default_cv) if best else 0.0,
        "search_seconds": round(searched, 3),  # this worker's trials (and waiting for the other workers')
        "seconds": round(time.monotonic() - began, 3),
    }
    best_text = f"{best.value:.4f}" if best else "-"
    gha.info(f"{name}: {len(complete)} trial(s) complete; best CV {plan.metric} {best_text}, "
             f"default {default_cv:.4f}: {summary['chosen']} parameters")  # fmt: skip
    log = [{"number": t.number, "state": t.state.name, "value": t.value, "params": dict(t.params),
            "worker": t.user_attrs.get("worker"),
            "seconds": t.duration.total_seconds() if t.duration else None} for t in trials]  # fmt: skip
    return Tuned(dict(best.params) if tuned else {}, summary, log)


def _optimize(plan: Plan, study: Any, budget: Budget, module: Any, space: dict, data: dict, seed: int) -> int:
    """This worker's remaining trials (its quota minus its finished trials of earlier runs); returns how many ran."""
    index, width = plan.shard
    worker = plan.worker()
    quota = budget.trials
    if quota is not None and plan.shares_trials:
        quota = quota // width + (1 if index < quota % width else 0)
    done = sum(
        t.state.name in FINISHED and t.user_attrs.get("worker") == worker for t in study.get_trials(deepcopy=False)
    )
    remaining = None if quota is None else max(0, quota - done)
    if remaining == 0:
        return 0

    def objective(trial: Any) -> float:
        trial.set_user_attr("worker", worker)
        return cv_score(module, suggest(trial, space), data, budget.folds, plan.metric, seed, trial)

    before = len(study.get_trials(deepcopy=False))
    study.optimize(objective, n_trials=remaining, timeout=budget.seconds, catch=(ValueError, ArithmeticError))
    return len(study.get_trials(deepcopy=False)) - before


def _wait_for_workers(study: Any, total: int | None, width: int, name: str) -> None:
    """Wait until every worker's trials of the type have finished: the budget's trials are all finished,
    or every worker has marked its share ended (a seconds budget, or trials that failed, can leave fewer)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        finished = sum(t.state.name in FINISHED for t in study.get_trials(deepcopy=False))
        ended = sum(key.startswith(DONE_MARK) for key in study.user_attrs)
        if (total is not None and finished >= total) or ended >= width:
            return
        if time.monotonic() > deadline:
            gha.warn(f"{name}: {finished} trial(s) finished, {ended} of {width} workers done after "
                     f"{WAIT_SECONDS:.0f} s; using them")  # fmt: skip
            return
        time.sleep(0.5)


def _redacted(url: str | None) -> str:
    if url is None:
        return "in-process"
    from mlops.tracking import redact

    return redact(url)


def log_trials(tracker: Any, type_run_id: str, tuned: Tuned, tags: dict[str, str]) -> None:
    """Each trial of the study as a nested MLflow run under its model type's run."""
    from mlflow.entities import Metric, Param

    client, metric = tracker.client, tuned.summary["metric"]
    now = int(time.time() * 1000)
    for t in tuned.trials:
        run = client.create_run(
            tracker.experiment_id,
            run_name=f"trial-{t['number']}",
            tags={**tags, "mlflow.parentRunId": type_run_id, "optuna.study": tuned.summary["study"],
                  "optuna.trial": str(t["number"]), "optuna.state": t["state"], "optuna.worker": str(t["worker"])},
        )  # fmt: skip
        metrics = [Metric(f"cv_{metric}", float(t["value"]), now, 0)] if t["value"] is not None else []
        params = [Param(k, str(v)[:500]) for k, v in t["params"].items()]
        client.log_batch(run.info.run_id, metrics=metrics, params=params)
        status = {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}.get(t["state"], "FAILED")
        client.set_terminated(run.info.run_id, status)
