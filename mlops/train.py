"""`mlops train`: load data, train every selected model type, gate, promote, record.

A run reads as load -> compute -> decide -> record, each once:

- `_load`: options, model types, data, the split, the champion re-evaluated on this split, data
  validation. Everything that can refuse is checked here, before anything is written under
  models/ or metadata/.
- `_fit_and_assess`: fit one model type, score it on the held-out splits and gate it; a type that
  fails to fit or to score is a `Failure` and does not sink the others.
- `decide`: rank the candidates and choose the one to promote (`gate.decide_promotion`).
- `_record`: model files and MLflow runs, the reference profile, gate records and manifests, the
  audit log, candidates/ and current/, the cards. MLflow learns the outcome last.

All of it runs on the calling thread. The fits keep every core busy (the forests and gradient
boosting use all of them), so bookkeeping on other threads slowed the fits by about what it
saved: benchmarks/train_overhead.py measured no gain (docs/training.md).
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops import data, gate, gha, jsonio, registry
from mlops.config import Config
from mlops.errors import BadInput, CheckFailed

MAX_SEED = 2**32 - 1
# What a gate record keeps of the champion: `metrics` re-scored on this run's test split (what the gate
# compares), `stored_metrics` from its own manifest, `scored_on` the split and its rows.
CHAMPION_KEYS = ("version", "model_type", "metrics", "comparable", "reason", "scored_on", "stored_metrics",
                 "dataset_sha256")  # fmt: skip


@dataclass
class TrainOptions:
    model_types: list[str] | None = None
    seed: int | None = None
    no_download: bool = False
    force_retrain: bool = False
    allow_invalid_data: bool = False
    track: bool = True
    since: str | None = None  # the production source's window (UTC ISO-8601); other sources ignore it
    until: str | None = None
    hpo: bool | None = None  # --hpo/--no-hpo; None: config/training.json /hpo/enabled
    trials: int | None = None  # --trials N: every type's trial budget
    shard: tuple[int, int] | None = None  # --shard I/N (mlops/shards.py); None: one process does everything


@dataclass(frozen=True)
class Inputs:
    """What `_load` read and checked: everything the run computes from."""

    seed: int
    types: dict[str, Any]
    when: str
    commit: str
    dataset: data.DatasetFile
    prepared: data.Prepared
    parts: dict[str, Any]
    champion: dict[str, Any] | None
    validation: dict[str, Any]
    tuning: Any = None  # an mlops.hpo.Plan when tuning is on


@dataclass(frozen=True)
class Failure:
    """A model type that failed to fit or to score: it gets no model files and no gate record."""

    model_type: str
    version: str
    error: str


@dataclass(frozen=True, eq=False)  # compared by identity: it holds a pipeline and score arrays
class Candidate:
    """One fitted model type, scored on the held-out splits and gated."""

    model_type: str
    version: str
    description: str
    pipeline: Any
    fit_seconds: float
    metrics: dict[str, Any]
    validation_metrics: dict[str, Any] | None
    intervals: dict[str, Any]
    slices: dict[str, Any]
    reliability: list[dict[str, Any]]
    curves: dict[str, Any]
    proba: Any  # positive-class scores on the test split
    gate: gate.GateResult
    tuned: Any = None  # mlops.hpo.Tuned: the study's summary and trials, when the type was tuned


@dataclass(frozen=True)
class Decision:
    """The run's verdict: its best candidate, the best one that passed, and what is promoted and why."""

    best_overall: Candidate
    challenger: Candidate | None
    promoted: Candidate | None
    reason: str
    regression: bool

    def of(self, candidate: Candidate) -> str:
        """The decision a candidate's gate record, manifest and summary row show."""
        if candidate is self.promoted:
            return "promoted"
        return "candidate" if candidate.gate.passed else "rejected"


@dataclass(frozen=True)
class Stored:
    """Where one candidate's model went: its staged folder, the file's sha256, its MLflow run."""

    folder: Path
    model_sha256: str
    trusted_types: list[str]
    mlflow: dict[str, Any] | None


@dataclass(frozen=True)
class Tracking:
    """This run's MLflow store and parent run, and the tags every run of it carries."""

    tracker: Any
    run_id: str
    tags: dict[str, str]


def resolve_model_types(cfg: Config, requested: list[str] | None) -> dict[str, Any]:
    from training.model_types import available

    known = available()
    names = requested if requested else list(cfg.training.model_types)
    where = "--model-types" if requested else "config/training.json: /model_types"
    for name in names:
        if name not in known:
            raise BadInput(where, f"unknown model type {name!r}", f"known types: {', '.join(known)}")
    if not names:
        raise BadInput(where, "no model types selected", f"choose from: {', '.join(known)}")
    return {name: known[name] for name in names}


def split(prepared: data.Prepared, cfg: Config, seed: int) -> dict[str, Any]:
    """Stratified train/validation/test split with a fixed seed."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(prepared.y))
    try:
        rest, test = train_test_split(idx, test_size=cfg.training.split.test, random_state=seed, stratify=prepared.y)
        val_share = cfg.training.split.validation / (1.0 - cfg.training.split.test)
        if cfg.training.split.validation > 0:
            train, val = train_test_split(rest, test_size=val_share, random_state=seed, stratify=prepared.y[rest])
        else:
            train, val = rest, rest[:0]
    except ValueError as exc:
        raise BadInput(
            "data", f"cannot make a stratified split ({exc})", "provide more rows of the minority class"
        ) from None
    X, y = prepared.X, prepared.y
    return {
        "X_train": X.iloc[train].reset_index(drop=True), "y_train": y[train],
        "X_val": X.iloc[val].reset_index(drop=True), "y_val": y[val],
        "X_test": X.iloc[test].reset_index(drop=True), "y_test": y[test],
    }  # fmt: skip


def run(cfg: Config, opts: TrainOptions) -> dict[str, Any]:
    """Train, gate, promote and record; returns the run's outcome (what the command prints and outputs).

    Too few labelled production rows is an outcome, not a failure: recorded by `_record_waiting`."""
    from mlops.production_data import WaitingForLabels

    try:
        inputs = _load(cfg, opts)
    except WaitingForLabels as waiting:
        return _record_waiting(cfg, waiting)
    tracking = _open_tracking(cfg, inputs) if opts.track else None
    return conclude(cfg, opts, inputs, tracking, lambda: [
        _fit_and_assess(cfg, inputs, name, module)
        for name, module in gha.progress(inputs.types.items(), "training", total=len(inputs.types))
    ])  # fmt: skip


def conclude(
    cfg: Config,
    opts: TrainOptions,
    inputs: Inputs,
    tracking: Tracking | None,
    produce: Any,
    stored: dict[str, Stored] | None = None,
) -> dict[str, Any]:
    """`produce()` -> the candidates and failures; then decide, record and tell MLflow. A failure anywhere
    leaves the parent run FAILED and no staged model folder behind. `stored`: models already written
    (the fan-in gate's, from the shards)."""
    done = False
    try:
        results = produce()
        decision = decide(results, inputs.champion, inputs.dataset.sha256, cfg.training.primary_metric,
                          opts.force_retrain)  # fmt: skip
        outcome, stored = _record(cfg, opts, inputs, results, decision, tracking, stored)
        if tracking is not None:
            # MLflow learns the outcome only once the repository holds it: a failure above leaves
            # the parent run FAILED and the aliases where they were.
            _finish_tracking(tracking, decision, stored, sum(isinstance(r, Candidate) for r in results))
        done = True
        return outcome
    finally:
        if not done:
            try:
                if tracking is not None:
                    tracking.tracker.mlflow.end_run("FAILED")
            finally:
                registry.recover(cfg.repo)  # no staged model folder of a failed run is left for a commit


def _load(cfg: Config, opts: TrainOptions) -> Inputs:
    from mlops import audit

    repo = cfg.repo
    seed = cfg.training.seed if opts.seed is None else opts.seed
    if not 0 <= seed <= MAX_SEED:  # numpy and scikit-learn take seeds in [0, 2**32)
        raise BadInput("--seed", f"{seed} is outside 0..{MAX_SEED}", "pass a seed in that range")
    types = resolve_model_types(cfg, opts.model_types)
    from mlops import hpo

    tuning = hpo.plan(cfg, types, enabled=opts.hpo, trials=opts.trials, shard=opts.shard)
    audit.check_can_record(repo)  # a missing signing key refuses now, not after reports are written
    if opts.track:
        from mlops.tracking import preflight

        preflight(repo)
    registry.recover(repo)
    when = jsonio.format_utc(jsonio.utc_now())
    commit = repo.git_commit()

    dataset = data.acquire(cfg, no_download=opts.no_download, since=opts.since, until=opts.until)
    where = repo.rel(dataset.path)
    table = data.read_table(dataset.path, where)
    prepared = data.prepare(cfg, table, where)
    gha.info(f"data: {dataset.source} {where} sha256={dataset.sha256[:12]} rows={len(prepared.y)}")
    parts = split(prepared, cfg, seed)
    champion = _champion(cfg, prepared, parts)
    validation = _validate(cfg, dataset, opts, table)
    return Inputs(seed, types, when, commit, dataset, prepared, parts, champion, validation, tuning)


def _champion(cfg: Config, prepared: data.Prepared, parts: dict[str, Any]) -> dict[str, Any] | None:
    """The current model (models/current) re-scored on this run's test split (None when there is none):
    the gate compares candidate and champion on the same rows; its stored metrics are kept beside."""
    manifest = registry.current_manifest(cfg.repo)
    if manifest is None:
        return None
    pipeline, manifest = registry.load_model(cfg.repo.current, cfg.repo)  # integrity first: exit 2 on mismatch
    info: dict[str, Any] = {
        "version": manifest["version"],
        "model_type": manifest.get("model_type"),
        "dataset_sha256": manifest.get("dataset", {}).get("sha256"),
        "stored_metrics": manifest.get("metrics"),
    }
    features = manifest.get("features", {})
    if sorted(features.get("numeric", [])) != sorted(prepared.numeric) or sorted(
        features.get("categorical", [])
    ) != sorted(prepared.categorical):
        info.update(comparable=False, reason="its features differ from this data's", metrics=manifest.get("metrics"))
        return info
    from mlops.metrics import classification_metrics
    from mlops.profile import positive_scores

    proba = positive_scores(pipeline, parts["X_test"])
    info.update(comparable=True, metrics=classification_metrics(parts["y_test"], proba, cfg.training.ece_bins))
    info["scored_on"] = {"split": "test", "rows": int(len(parts["y_test"]))}
    return info


def _validate(cfg: Config, dataset: data.DatasetFile, opts: TrainOptions, table: Any) -> dict[str, Any]:
    from mlops.validation import validate_for_training

    result = validate_for_training(cfg, dataset, table=table)
    summary = {
        "passed": bool(result.passed),
        "failures": list(result.failures),
        "report": cfg.repo.rel(result.report_path) if getattr(result, "report_path", None) else None,
        "overridden": False,
    }
    if not result.passed:
        if not opts.allow_invalid_data:
            raise CheckFailed(
                f"{cfg.repo.rel(dataset.path)}: data failed validation ({'; '.join(map(str, result.failures))[:300]}); "
                "fix the data, or pass --allow-invalid-data to train anyway (recorded in the manifest and card)"
            )
        gha.warn("training on data that failed validation (--allow-invalid-data)")
        summary["overridden"] = True
    return summary


def _base_tags(commit: str, dataset: data.DatasetFile, seed: int) -> dict[str, str]:
    return {
        "mlops.commit": commit,
        "mlops.dataset_sha256": dataset.sha256,
        "mlops.dataset_source": dataset.source,
        "mlops.synthetic": str(dataset.source == "synthetic").lower(),
        "mlops.seed": str(seed),
    }


def _open_tracking(cfg: Config, inputs: Inputs) -> Tracking:
    """Open the MLflow store and start this run's parent run (ended by `_finish_tracking` or as FAILED)."""
    from mlops.tracking import Tracker, redact

    name = cfg.dataset.name
    try:
        tracker = Tracker(cfg.repo, experiment=name, registered_model=f"{name}-classifier")
    except Exception as exc:  # noqa: BLE001 - sqlalchemy, HTTP and file errors all mean the same here
        uri = redact(cfg.repo.tracking_uri())
        raise BadInput(
            "MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI") else uri,
            f"cannot open the MLflow store {uri} ({type(exc).__name__}: {str(exc)[:160]})",
            "fix MLFLOW_TRACKING_URI or the store, or pass --no-tracking for a local experiment",
        ) from None
    tags = _base_tags(inputs.commit, inputs.dataset, inputs.seed)
    parent = tracker.mlflow.start_run(experiment_id=tracker.experiment_id, run_name=f"train-{inputs.when}", tags=tags)
    return Tracking(tracker, parent.info.run_id, tags)


def _fit_and_assess(cfg: Config, inputs: Inputs, name: str, module: Any) -> Candidate | Failure:
    """Tune (when on) and fit one model type on the training split, score it on the held-out splits, gate it."""
    fitted = fit(cfg, inputs, name, module)
    if isinstance(fitted, Failure):
        return fitted
    return assess(cfg, inputs, name, module, *fitted)


def tune(cfg: Config, inputs: Inputs, name: str, module: Any) -> Any:
    """The type's study (mlops.hpo) on the training split only; None when tuning is off."""
    if inputs.tuning is None:
        return None
    from mlops import hpo

    parts, prepared = inputs.parts, inputs.prepared
    train_only = {"X_train": parts["X_train"], "y_train": parts["y_train"], "numeric": prepared.numeric,
                  "categorical": prepared.categorical}  # fmt: skip
    key = f"{inputs.dataset.sha256}-{inputs.seed}"
    return hpo.tune(inputs.tuning, name, module, train_only, inputs.seed, cfg.dataset.name, key)


def fit(cfg: Config, inputs: Inputs, name: str, module: Any) -> tuple[str, Any, float, Any] | Failure:
    """(version, fitted pipeline, fit seconds, tuning outcome) or a Failure. The study storage failing is
    not a type's failure: it ends the run (BadInput, exit 2)."""
    import numpy as np

    parts, seed = inputs.parts, inputs.seed
    version = registry.new_version(inputs.when, name, inputs.dataset.sha256, str(seed), inputs.commit)
    try:
        tuned = tune(cfg, inputs, name, module)
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001 - a type whose search cannot run fails alone, like a failed fit
        gha.warn(f"{name}: tuning failed: {type(exc).__name__}: {exc}")
        return Failure(name, version, f"tuning: {type(exc).__name__}: {exc}")
    began = time.perf_counter()
    try:
        np.random.seed(seed)  # for any third-party code that still reads the global RNG
        pipeline = module.build(inputs.prepared.numeric, inputs.prepared.categorical, seed)
        if tuned is not None and tuned.params:
            pipeline.set_params(**{f"model__{k}": v for k, v in tuned.params.items()})
        pipeline.fit(parts["X_train"], parts["y_train"])
        _single_threaded_predict(pipeline)
        return version, pipeline, time.perf_counter() - began, tuned
    except Exception as exc:  # noqa: BLE001 - one failing type must not sink the others
        gha.warn(f"{name}: training failed: {type(exc).__name__}: {exc}")
        return Failure(name, version, f"{type(exc).__name__}: {exc}")


def assess(
    cfg: Config, inputs: Inputs, name: str, module: Any, version: str, pipeline: Any, fit_seconds: float, tuned: Any
) -> Candidate | Failure:
    """Score a fitted pipeline on the held-out splits and gate it against the thresholds and the champion."""
    parts, seed, champion = inputs.parts, inputs.seed, inputs.champion
    try:
        evaluated = _evaluate(pipeline, parts["X_test"], parts["y_test"], cfg, seed)
        validation_metrics = _evaluate_on_validation(pipeline, parts, cfg)
    except Exception as exc:  # noqa: BLE001 - one failing type must not sink the others
        gha.warn(f"{name}: evaluation failed: {type(exc).__name__}: {exc}")
        return Failure(name, version, f"{type(exc).__name__}: {exc}")
    verdict = gate.evaluate(
        evaluated["metrics"],
        accuracy_min=cfg.schedule.performance_thresholds.accuracy_min,
        ece_max=cfg.schedule.performance_thresholds.ece_max,
        primary_metric=cfg.training.primary_metric,
        tolerance=cfg.training.promotion.primary_metric_tolerance,
        champion_metrics=champion["metrics"] if champion and champion.get("comparable") else None,
    )
    return Candidate(
        model_type=name, version=version, description=getattr(module, "DESCRIPTION", ""), pipeline=pipeline,
        fit_seconds=fit_seconds, validation_metrics=validation_metrics, gate=verdict, tuned=tuned, **evaluated,
    )  # fmt: skip


def _single_threaded_predict(pipeline: Any) -> None:
    # Threaded forests sum tree probabilities in whatever order threads finish, so the last
    # bits of predict_proba vary run to run; one thread makes metrics bit-reproducible.
    estimator = pipeline.steps[-1][1]
    if "n_jobs" in estimator.get_params():
        estimator.set_params(n_jobs=1)


def _evaluate(pipeline: Any, X: Any, y: Any, cfg: Config, seed: int) -> dict[str, Any]:
    """Held-out metrics, bootstrap intervals, reliability, curves and slices on the test split."""
    from mlops import metrics as M
    from mlops.profile import positive_scores

    proba = positive_scores(pipeline, X)
    bins = cfg.training.ece_bins
    return {
        "metrics": M.classification_metrics(y, proba, bins),
        "intervals": M.bootstrap_intervals(
            y, proba, iterations=cfg.training.bootstrap_iterations, seed=seed, bins=bins
        ),
        "reliability": M.reliability_table(y, proba, bins),
        "curves": M.curves(y, proba),
        "proba": proba,
        "slices": M.evaluated_slices(cfg, X, y, proba, seed),  # with intervals and intersections (issue 16)
    }


def _evaluate_on_validation(pipeline: Any, parts: dict[str, Any], cfg: Config) -> dict[str, Any] | None:
    if not len(parts["y_val"]):
        return None
    from mlops.metrics import classification_metrics
    from mlops.profile import positive_scores

    return classification_metrics(parts["y_val"], positive_scores(pipeline, parts["X_val"]), cfg.training.ece_bins)


def decide(
    results: list[Candidate | Failure],
    champion: dict[str, Any] | None,
    dataset_sha256: str,
    primary: str,
    force: bool,
) -> Decision:
    """Rank the candidates on the primary metric and choose the one to promote, if any."""
    trained = [r for r in results if isinstance(r, Candidate)]
    if not trained:
        raise CheckFailed("no model type trained successfully: " + "; ".join(r.error for r in results))
    ranked = sorted(trained, key=lambda c: (c.metrics[primary], c.metrics["roc_auc"] or 0.0), reverse=True)
    passing = [c for c in ranked if c.gate.passed]
    best = passing[0] if passing else None
    promote, why = gate.decide_promotion(
        {"metrics": best.metrics, "dataset_sha256": dataset_sha256} if best else None,
        champion=champion, primary_metric=primary, force=force,
    )  # fmt: skip
    # The run regresses when its best candidate falls below the champion beyond tolerance;
    # a weaker model type in the same run is not a regression of the system.
    return Decision(ranked[0], best, best if promote else None, why, bool(ranked[0].gate.regression))


def _record(
    cfg: Config,
    opts: TrainOptions,
    inputs: Inputs,
    results: list[Candidate | Failure],
    decision: Decision,
    tracking: Tracking | None,
    stored: dict[str, Stored] | None = None,
) -> tuple[dict[str, Any], dict[str, Stored]]:
    """Write everything the run decided; returns the outcome and where each candidate's model went."""
    repo, promoted = cfg.repo, decision.promoted
    trained = [r for r in results if isinstance(r, Candidate)]
    sample = inputs.parts["X_test"].head(5)
    if stored is None:
        stored = {c.version: store(cfg, c, inputs.seed, tracking, sample) for c in trained}
    profile = _build_profile(promoted, inputs.prepared, inputs.parts, inputs.seed) if promoted else None
    manifests = {}
    for c in trained:
        gate_path = repo.gates / f"{c.version}.json"
        jsonio.write_json(gate_path, _gate_record(cfg, opts, inputs, c, decision, stored[c.version]))
        manifests[c.version] = _manifest(cfg, opts, inputs, c, decision, stored[c.version], repo.rel(gate_path))
        jsonio.write_json(stored[c.version].folder / registry.MANIFEST, manifests[c.version])
    if promoted:
        jsonio.write_json(stored[promoted.version].folder / registry.PROFILE, profile)
    outcome = _outcome(cfg, inputs, results, decision, tracking)
    _audit(repo, "training_run", {k: outcome[k] for k in ("time", "commit", "seed", "best_version", "decision",
                                                          "promoted_version", "regression", "mlflow_parent_run_id")}
           | {"dataset_sha256": inputs.dataset.sha256, "dataset_source": inputs.dataset.source,
              "candidates": [c["version"] for c in outcome["candidates"]]})  # fmt: skip
    for c in trained:
        _audit(repo, "gate_decision", {"version": c.version, "passed": c.gate.passed, "decision": decision.of(c),
                                       "reasons": c.gate.reasons, "regression": c.gate.regression})  # fmt: skip
    for c in trained:
        if c is not promoted:
            registry.place_candidate(repo, stored[c.version].folder, c.version)
    if promoted:
        previous = registry.promote(repo, stored[promoted.version].folder)
        entry = _audit(repo, "promotion", {"version": promoted.version, "previous": previous, "reason": decision.reason,
                                           "model_sha256": stored[promoted.version].model_sha256,
                                           "dataset_sha256": inputs.dataset.sha256})  # fmt: skip
        if previous:
            _audit(repo, "archive", {"version": previous, "replaced_by": promoted.version})
        outcome["previous_version"] = previous
        outcome["promotion_audit_seq"] = entry.get("seq") if entry else None
    from mlops import cards

    cards.write_for_versions(cfg, [c.version for c in trained])
    outcome["diff_markdown"] = _diff(manifests[decision.best_overall.version], inputs.champion, inputs.dataset.sha256)
    return outcome, stored


def store(
    cfg: Config, c: Candidate, seed: int, tracking: Tracking | None, sample: Any, folder: Path | None = None
) -> Stored:
    """Write the candidate's skops file in `folder` (default: its staging folder) and log it to MLflow:
    a nested run under the parent, the study's trials nested under that (when tuned)."""
    folder = folder or registry.stage(cfg.repo, c.version)
    sha256, trusted = registry.dump_model(c.pipeline, folder / registry.MODEL_FILE)
    if tracking is None:
        return Stored(folder, sha256, trusted, None)
    from mlops.tracking import redact

    params = {"model_type": c.model_type, "seed": seed}
    params.update({f"model.{k}": v for k, v in c.pipeline.named_steps["model"].get_params().items()})
    logged = tracking.tracker.log_candidate(
        model_type=c.model_type,
        version=c.version,
        params=params,
        metrics={k: v for k, v in c.metrics.items() if isinstance(v, (int, float))},
        tags={**tracking.tags, "mlops.version": c.version, "mlops.model_type": c.model_type},
        pipeline=c.pipeline,
        trusted_types=trusted,
        sample=sample,
        proba=c.proba[: len(sample)],
    )
    if c.tuned is not None:
        from mlops.hpo import log_trials

        log_trials(tracking.tracker, logged["run_id"], c.tuned, {**tracking.tags, "mlops.model_type": c.model_type})
    mlflow = {**logged, "tracking_uri": redact(tracking.tracker.uri), "parent_run_id": tracking.run_id}
    return Stored(folder, sha256, trusted, mlflow)


def _gate_record(
    cfg: Config, opts: TrainOptions, inputs: Inputs, c: Candidate, decision: Decision, stored: Stored
) -> dict[str, Any]:
    """metadata/gates/<version>.json: every input value, threshold and reason of one candidate's gate."""
    champion, thresholds = inputs.champion, cfg.schedule.performance_thresholds
    return {
        "version": c.version,
        "model_type": c.model_type,
        "time": inputs.when,
        "commit": inputs.commit,
        "dataset": {"sha256": inputs.dataset.sha256, "source": inputs.dataset.source}
        | ({"window": inputs.dataset.production["window"]} if inputs.dataset.production else {}),
        "primary_metric": cfg.training.primary_metric,
        "tolerance": cfg.training.promotion.primary_metric_tolerance,
        "thresholds": {"accuracy_min": thresholds.accuracy_min, "ece_max": thresholds.ece_max},
        "candidate": {"metrics": c.metrics, "scored_on": {"split": "test", "rows": int(len(inputs.parts["y_test"]))}},
        "champion": ({k: champion.get(k) for k in CHAMPION_KEYS} if champion else None),
        "checks": c.gate.checks,
        "passed": c.gate.passed,
        "reasons": c.gate.reasons,
        "regression": c.gate.regression,
        "champion_delta": c.gate.champion_delta,
        "best_of_run": c is decision.best_overall,
        "decision": decision.of(c),
        # the promoted model's record carries the reason; with no promotion, the run's best does
        "promotion_reason": decision.reason if c is (decision.promoted or decision.best_overall) else None,
        "force_retrain": opts.force_retrain,
        "mlflow_run_id": (stored.mlflow or {}).get("run_id"),
        # the Optuna study behind the candidate's parameters (docs/training.md, Tuning); None: defaults, untuned
        "hpo": c.tuned.summary if c.tuned is not None else None,
    }


def _manifest(
    cfg: Config, opts: TrainOptions, inputs: Inputs, c: Candidate, decision: Decision, stored: Stored, gate_rel: str
) -> dict[str, Any]:
    """manifest.json beside the model file: what it is, what it was trained on, how it scored."""
    import sklearn

    prepared, parts = inputs.prepared, inputs.parts
    return {
        "version": c.version,
        "model_type": c.model_type,
        "description": c.description,
        "created_at": inputs.when,
        "commit": inputs.commit,
        "seed": inputs.seed,
        "model_file": registry.MODEL_FILE,
        "model_sha256": stored.model_sha256,
        "skops_trusted_types": stored.trusted_types,
        "dataset": {
            **inputs.dataset.record(cfg.repo.root),
            "rows": int(len(prepared.y)),
            "split": {k: int(len(parts[f"y_{k}"])) for k in ("train", "val", "test")},
        },
        "features": {
            "numeric": prepared.numeric,
            "categorical": prepared.categorical,
            "dropped_empty": prepared.dropped_empty,
        },
        "label": {"name": cfg.dataset.label, "positive": prepared.positive_label, "classes": prepared.classes},
        "metrics": c.metrics,
        "validation_metrics": c.validation_metrics,
        "intervals": c.intervals,
        "slices": c.slices,
        "reliability": c.reliability,
        "curves": c.curves,
        "gate": {"record": gate_rel, "passed": c.gate.passed, "decision": decision.of(c)},
        "mlflow": stored.mlflow,
        "data_validation": inputs.validation,
        "overrides": {"allow_invalid_data": opts.allow_invalid_data, "force_retrain": opts.force_retrain},
        "fit_seconds": round(c.fit_seconds, 3),
        "hpo": c.tuned.summary if c.tuned is not None else None,
        "environment": {"python": platform.python_version(), "scikit-learn": sklearn.__version__},
    }


def _outcome(
    cfg: Config, inputs: Inputs, results: list[Candidate | Failure], decision: Decision, tracking: Tracking | None
) -> dict[str, Any]:
    """The run as the command prints it, writes it to the step summary and the PR report reads it."""
    repo, promoted = cfg.repo, decision.promoted
    candidates: list[dict[str, Any]] = []
    for r in results:
        if isinstance(r, Failure):
            candidates.append({"model_type": r.model_type, "version": r.version, "error": r.error})
            continue
        candidates.append(
            {"model_type": r.model_type, "version": r.version, "decision": decision.of(r), "metrics": r.metrics,
             "gate_record": repo.rel(repo.gates / f"{r.version}.json"), "regression": r.gate.regression,
             "hpo": r.tuned.summary if r.tuned is not None else None}
        )  # fmt: skip
    return {
        "time": inputs.when,
        "commit": inputs.commit,
        "seed": inputs.seed,
        "promoted": bool(promoted),
        "promoted_version": promoted.version if promoted else None,
        "best_version": decision.best_overall.version,
        "decision": decision.reason,
        "regression": decision.regression,
        "mlflow_parent_run_id": tracking.run_id if tracking else None,
        "dataset": inputs.dataset.record(repo.root),
        "candidates": candidates,
    }


def _finish_tracking(tracking: Tracking, decision: Decision, stored: dict[str, Stored], trained: int) -> None:
    """Aliases and the parent run's outcome; called once the repository holds the outcome."""
    tracker, promoted = tracking.tracker, decision.promoted
    if decision.challenger:
        tracker.set_alias("challenger", stored[decision.challenger.version].mlflow["model_version"])
    else:  # no candidate passed the gate: no model challenges the champion
        tracker.delete_alias("challenger")
    if promoted:
        tracker.set_alias("champion", stored[promoted.version].mlflow["model_version"])
    tracker.log_parent(
        {"candidates": float(trained), "promoted": float(bool(promoted)), "regression": float(decision.regression)},
        {"mlops.promoted_version": promoted.version if promoted else "", "mlops.decision": decision.reason},
    )
    tracker.mlflow.end_run()


def _diff(best_manifest: dict[str, Any], champion: dict[str, Any] | None, dataset_sha: str) -> str | None:
    from mlops.cards import metrics_diff_markdown

    other = None
    if champion and champion.get("comparable"):
        # the champion re-evaluated on this run's test split: the fair, same-data comparison
        other = {"version": champion["version"], "metrics": champion["metrics"], "dataset": {"sha256": dataset_sha}}
    return metrics_diff_markdown(best_manifest, other)


def _build_profile(promoted: Candidate, prepared: data.Prepared, parts: dict[str, Any], seed: int) -> dict:
    """The promoted model's reference profile (monitoring compares production windows with it)."""
    from mlops.profile import build_reference_profile

    profile = build_reference_profile(
        promoted.pipeline, parts["X_train"], parts["X_test"], parts["y_test"],
        prepared.numeric, prepared.categorical, promoted.metrics, seed, test_scores=promoted.proba,
    )  # fmt: skip
    profile.setdefault("version", promoted.version)
    return profile


def _audit(repo: Any, event_type: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    from mlops import audit

    return audit.record(repo, event_type, payload)


def _record_waiting(cfg: Config, waiting: Any) -> dict[str, Any]:
    """The 'waiting for labels' outcome: metadata/gates/waiting-for-labels-<time>.json and a training_run
    audit entry; no model, no MLflow run, models/ untouched. The command exits 0 (docs/training.md)."""
    repo = cfg.repo
    when = jsonio.format_utc(jsonio.utc_now())
    path = repo.gates / f"waiting-for-labels-{when.replace('-', '').replace(':', '')}.json"
    current = registry.current_manifest(repo)
    record = {
        "outcome": "waiting_for_labels",
        "time": when,
        "commit": repo.git_commit(),
        "decision": str(waiting),
        "labelled_rows": waiting.labelled,
        "min_labelled_rows": waiting.needed,
        "dataset": {"source": "production", "production": waiting.lineage},
        "champion": {"version": current["version"]} if current else None,
        "promoted": False,
        "regression": False,
    }
    jsonio.write_json(path, record)
    lineage = waiting.lineage
    _audit(repo, "training_run", {
        "time": when, "commit": record["commit"], "outcome": "waiting_for_labels", "decision": record["decision"],
        "dataset_source": "production", "labelled_rows": waiting.labelled, "min_labelled_rows": waiting.needed,
        "window": lineage["window"], "store": lineage["store"], "record": repo.rel(path),
    })  # fmt: skip
    gha.warn(str(waiting))
    return {
        "outcome": "waiting_for_labels", "time": when, "commit": record["commit"], "promoted": False,
        "promoted_version": None, "best_version": None, "decision": record["decision"], "regression": False,
        "record": repo.rel(path), "labelled_rows": waiting.labelled, "min_labelled_rows": waiting.needed,
        "window": lineage["window"], "store": lineage["store"], "candidates": [],
    }  # fmt: skip


def summary_markdown(outcome: dict[str, Any], primary: str) -> str:
    if outcome.get("outcome") == "waiting_for_labels":
        w = outcome["window"]
        return (
            f"### Training run {outcome['time']}: waiting for labels\n\n"
            f"{outcome['labelled_rows']} labelled production row(s) for predictions {w['since']} .. {w['until']} "
            f"(feedback until {w['feedback_until']}) in `{outcome['store']}`; {outcome['min_labelled_rows']} needed "
            "(config/dataset.json /production/min_labelled_rows). Nothing was trained; the champion keeps serving. "
            f"Record: `{outcome['record']}`.\n"
        )
    rows = []
    for c in outcome["candidates"]:
        if "error" in c:
            rows.append((c["model_type"], c["version"], "-", "-", "-", "-", f"failed: {c['error'][:60]}"))
            continue
        m = c["metrics"]
        rows.append((c["model_type"], c["version"], m["accuracy"], m["f1"], m["roc_auc"] or 0.0, m["ece"],
                     c["decision"] + (" (regression)" if c["regression"] else "")))  # fmt: skip
    ds = outcome["dataset"]
    head = (
        f"### Training run {outcome['time']}\n\n"
        f"Data: **{ds['source']}** `{ds['path']}` (sha256 `{ds['sha256'][:12]}`)"
        + (f" — synthetic fallback: {ds['fallback_reason']}" if ds.get("fallback_reason") else "")
        + f"\n\nDecision: {outcome['decision']}. Primary metric: `{primary}`.\n\n"
    )
    table = gha.md_table(["model type", "version", "accuracy", "f1", "roc_auc", "ece", "gate"], rows)
    diff = outcome.get("diff_markdown")
    return (
        head
        + table
        + _tuning_markdown(outcome["candidates"])
        + (f"\n\n#### Best candidate against the champion\n\n{diff}" if diff else "")
    )


def _tuning_markdown(candidates: list[dict[str, Any]]) -> str:
    rows = []
    for c in candidates:
        h = c.get("hpo")
        if h:
            best = "-" if h["best_cv"] is None else f"{h['best_cv']:.4f}"
            rows.append((c["model_type"], h["trials"], h["pruned"], best, f"{h['default_cv']:.4f}", h["chosen"]))
    if not rows:
        return ""
    headers = ["model type", "trials", "pruned", "best CV", "default CV", "parameters"]
    return "\n\n#### Tuning (cross-validation on the training split)\n\n" + gha.md_table(headers, rows)
