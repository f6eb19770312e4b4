"""`mlops train`: load data, train every selected model type, gate, promote, record.

Everything that can refuse (config, model types, data, the champion's integrity) is checked
before anything is written under models/ or metadata/.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from typing import Any

from mlops import data, gate, gha, jsonio, registry
from mlops.config import Config
from mlops.errors import BadInput, CheckFailed

MAX_SEED = 2**32 - 1


@dataclass
class TrainOptions:
    model_types: list[str] | None = None
    seed: int | None = None
    no_download: bool = False
    force_retrain: bool = False
    allow_invalid_data: bool = False
    track: bool = True


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
        rest, test = train_test_split(idx, test_size=cfg.training.test_size, random_state=seed, stratify=prepared.y)
        val_share = cfg.training.validation_size / (1.0 - cfg.training.test_size)
        if cfg.training.validation_size > 0:
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


def _evaluate(pipeline: Any, X: Any, y: Any, cfg: Config, seed: int, slices: bool) -> dict[str, Any]:
    from mlops import metrics as M
    from mlops.profile import positive_scores

    proba = positive_scores(pipeline, X)
    out = {
        "metrics": M.classification_metrics(y, proba, cfg.training.ece_bins),
        "intervals": M.bootstrap_intervals(
            y, proba, iterations=cfg.training.bootstrap_iterations, seed=seed, bins=cfg.training.ece_bins
        ),
        "reliability": M.reliability_table(y, proba, cfg.training.ece_bins),
        "curves": M.curves(y, proba),
        "proba": proba,
    }
    if slices:
        out["slices"] = M.slice_metrics(X, y, proba, list(cfg.dataset.slices), cfg.training.ece_bins)
    return out


def _champion(cfg: Config, prepared: data.Prepared, parts: dict[str, Any], seed: int) -> dict[str, Any] | None:
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
    return info


def run(cfg: Config, opts: TrainOptions) -> dict[str, Any]:

    from mlops import audit

    repo = cfg.repo
    seed = cfg.training.seed if opts.seed is None else opts.seed
    if not 0 <= seed <= MAX_SEED:  # numpy and scikit-learn take seeds in [0, 2**32)
        raise BadInput("--seed", f"{seed} is outside 0..{MAX_SEED}", "pass a seed in that range")
    types = resolve_model_types(cfg, opts.model_types)
    audit.check_can_record(repo)  # a missing signing key refuses now, not after reports are written
    if opts.track:
        from mlops.tracking import preflight

        preflight(repo)
    registry.recover(repo)
    started = jsonio.utc_now()
    when = jsonio.format_utc(started)
    commit = repo.git_commit()

    dataset = data.acquire(cfg, no_download=opts.no_download)
    where = repo.rel(dataset.path)
    table = data.read_table(dataset.path, where)
    prepared = data.prepare(cfg, table, where)
    gha.info(f"data: {dataset.source} {where} sha256={dataset.sha256[:12]} rows={len(prepared.y)}")
    parts = split(prepared, cfg, seed)
    champion = _champion(cfg, prepared, parts, seed)

    validation = _validate(cfg, dataset, opts, table)
    del table

    bg = _Background(cfg, opts, when, _base_tags(commit, dataset, seed))
    done = False
    try:
        outcome = _train_all(cfg, opts, types, seed, when, commit, dataset, prepared, parts, champion, validation, bg)
        done = True
        return outcome
    finally:
        bg.close()  # the workers have stopped writing
        if not done:
            registry.recover(repo)  # no staged model folder of a failed run is left for a commit to pick up


def _base_tags(commit: str, dataset: data.DatasetFile, seed: int) -> dict[str, str]:
    return {
        "mlops.commit": commit,
        "mlops.dataset_sha256": dataset.sha256,
        "mlops.dataset_source": dataset.source,
        "mlops.synthetic": str(dataset.source == "synthetic").lower(),
        "mlops.seed": str(seed),
    }


class _Background:
    """Two worker threads, so that fitting is the only work the main thread does between fits.

    `assess` evaluates each fitted model on the held-out splits and gates it while the next
    model fits (scoring and most metric work run in C with the GIL released). `record` writes
    the model's skops file and logs it to MLflow. Every MLflow call happens on that one thread:
    MLflow keeps the active-run stack per thread, so the parent run opened there is the parent
    of the nested runs logged there.
    """

    def __init__(self, cfg: Config, opts: TrainOptions, when: str, tags: dict[str, str]):
        from concurrent.futures import ThreadPoolExecutor

        self.cfg, self.tags = cfg, tags
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlops-record")
        self.assess_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlops-assess")
        self.pending: list[Any] = []
        self.assessed: list[Any] = []
        self.tracker: Any = None
        self.run_id: str | None = None
        self.finished = False
        self.opening = self.pool.submit(self._open, when) if opts.track else None
        if self.opening:
            self.pending.append(self.opening)
        self.assessed.append(self.assess_pool.submit(_warm_up_cards))

    def _open(self, when: str) -> None:
        from mlops.tracking import Tracker, redact

        name = self.cfg.dataset.name
        try:
            tracker = Tracker(self.cfg.repo, experiment=name, registered_model=f"{name}-classifier")
        except Exception as exc:  # noqa: BLE001 - sqlalchemy, HTTP and file errors all mean the same here
            uri = redact(self.cfg.repo.tracking_uri())
            raise BadInput(
                "MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI") else uri,
                f"cannot open the MLflow store {uri} ({type(exc).__name__}: {str(exc)[:160]})",
                "fix MLFLOW_TRACKING_URI or the store, or pass --no-tracking for a local experiment",
            ) from None
        self.tracker = tracker
        run = self.tracker.mlflow.start_run(
            experiment_id=self.tracker.experiment_id, run_name=f"train-{when}", tags=self.tags
        )
        self.run_id = run.info.run_id

    def assess_and_persist(self, r: dict[str, Any], assess: Any, seed: int, sample: Any) -> None:
        """assess(r) on the assess thread; when it succeeds, r's files and MLflow run on the record thread."""
        assessed = self.assess_pool.submit(assess, r)
        self.assessed.append(assessed)
        self.pending.append(self.pool.submit(self._persist_if_assessed, assessed, r, seed, sample))

    def _persist_if_assessed(self, assessed: Any, r: dict[str, Any], seed: int, sample: Any) -> None:
        if self.opening and self.tracker is None:
            return  # the store did not open: write nothing; check_open() reports it
        if assessed.result():
            self._persist(r, seed, sample)

    def check_open(self) -> None:
        """Raise now if the MLflow store failed to open, rather than after every fit."""
        if self.opening and self.opening.done() and self.opening.exception():
            raise self.opening.exception()

    def _persist(self, r: dict[str, Any], seed: int, sample: Any) -> None:
        staged = registry.stage(self.cfg.repo, r["version"])
        r["model_sha256"], r["trusted"] = registry.dump_model(r["pipeline"], staged / registry.MODEL_FILE)
        r["staged"] = staged
        if self.tracker is None:
            return
        params = {"model_type": r["model_type"], "seed": seed}
        params.update({f"model.{k}": v for k, v in r["pipeline"].named_steps["model"].get_params().items()})
        r["mlflow"] = self.tracker.log_candidate(
            model_type=r["model_type"],
            version=r["version"],
            params=params,
            metrics={k: v for k, v in r["metrics"].items() if isinstance(v, (int, float))},
            tags={**self.tags, "mlops.version": r["version"], "mlops.model_type": r["model_type"]},
            pipeline=r["pipeline"],
            trusted_types=r["trusted"],
            sample=sample,
            proba=r["proba"][: len(sample)],
        )
        r["mlflow"]["tracking_uri"] = _redact(self.tracker.uri)
        r["mlflow"]["parent_run_id"] = self.run_id

    def on_assess_thread(self, fn: Any, *args: Any) -> Any:
        """Run fn on the assess thread; returns its future."""
        future = self.assess_pool.submit(fn, *args)
        self.assessed.append(future)
        return future

    def wait_assessed(self) -> None:
        for future in self.assessed:
            future.result()  # re-raises what failed in the worker
        self.assessed = []

    def wait(self) -> None:
        for future in self.pending:
            future.result()  # re-raises what failed in the worker
        self.pending = []

    def finish(
        self, challenger: dict[str, Any] | None, promoted: dict[str, Any] | None, why: str, regression: bool, n: int
    ) -> None:
        """Aliases and the parent run's outcome; called once the repository holds the outcome."""

        def _finish() -> None:
            if self.tracker is None:
                return
            if challenger:
                self.tracker.set_alias("challenger", challenger["mlflow"]["model_version"])
            else:  # no candidate passed the gate: no model challenges the champion
                self.tracker.delete_alias("challenger")
            if promoted:
                self.tracker.set_alias("champion", promoted["mlflow"]["model_version"])
            self.tracker.log_parent(
                {"candidates": float(n), "promoted": float(bool(promoted)), "regression": float(regression)},
                {"mlops.promoted_version": promoted["version"] if promoted else "", "mlops.decision": why},
            )
            self.tracker.mlflow.end_run()

        self.wait()
        self.pool.submit(_finish).result()
        self.finished = True

    def close(self) -> None:
        try:
            for future in self.assessed + self.pending:
                future.exception()
            if self.tracker is not None and not self.finished:
                self.pool.submit(self.tracker.mlflow.end_run, "FAILED").result()
        finally:
            self.assess_pool.shutdown(wait=True)
            self.pool.shutdown(wait=True)


def _warm_up_cards() -> None:
    from mlops import cards

    try:
        cards.warm_up()
    except Exception:  # noqa: BLE001 - only a head start; writing the cards reports any real problem
        pass


def _train_all(cfg, opts, types, seed, when, commit, dataset, prepared, parts, champion, validation, bg):  # fmt: skip
    import numpy as np

    def assess(r: dict[str, Any]) -> bool:
        """Held-out metrics and the gate of one fitted model; False (and r["error"]) when that fails."""
        try:
            evaluated = _evaluate(r["pipeline"], parts["X_test"], parts["y_test"], cfg, seed, slices=True)
            val_metrics = None
            if len(parts["y_val"]):
                from mlops.metrics import classification_metrics
                from mlops.profile import positive_scores

                val_proba = positive_scores(r["pipeline"], parts["X_val"])
                val_metrics = classification_metrics(parts["y_val"], val_proba, cfg.training.ece_bins)
        except Exception as exc:  # noqa: BLE001 - one failing type must not sink the others
            gha.warn(f"{r['model_type']}: evaluation failed: {type(exc).__name__}: {exc}")
            r["error"] = f"{type(exc).__name__}: {exc}"
            return False
        r.update(evaluated, validation_metrics=val_metrics)
        r["gate"] = gate.evaluate(
            evaluated["metrics"],
            accuracy_min=cfg.schedule.thresholds.accuracy_min,
            ece_max=cfg.schedule.thresholds.ece_max,
            primary_metric=cfg.training.primary_metric,
            tolerance=cfg.training.tolerance,
            champion_metrics=champion["metrics"] if champion and champion.get("comparable") else None,
        )
        return True

    results: list[dict[str, Any]] = []
    sample = parts["X_test"].head(5)
    for name, module in gha.progress(types.items(), "training", total=len(types)):
        version = registry.new_version(when, name, dataset.sha256, str(seed), commit)
        began = time.perf_counter()
        try:
            np.random.seed(seed)  # for any third-party code that still reads the global RNG
            pipeline = module.build(prepared.numeric, prepared.categorical, seed)
            pipeline.fit(parts["X_train"], parts["y_train"])
            _single_threaded_predict(pipeline)
            fit_seconds = time.perf_counter() - began
        except Exception as exc:  # noqa: BLE001 - one failing type must not sink the others
            gha.warn(f"{name}: training failed: {type(exc).__name__}: {exc}")
            results.append({"model_type": name, "version": version, "error": f"{type(exc).__name__}: {exc}"})
            continue
        result = {
            "model_type": name,
            "version": version,
            "pipeline": pipeline,
            "description": getattr(module, "DESCRIPTION", ""),
            "fit_seconds": fit_seconds,
            "dataset_sha256": dataset.sha256,
        }
        results.append(result)
        bg.check_open()
        bg.assess_and_persist(result, assess, seed, sample)  # while the next model fits

    bg.wait_assessed()
    trained = [r for r in results if "error" not in r]
    if not trained:
        raise CheckFailed("no model type trained successfully: " + "; ".join(r["error"] for r in results))
    primary = cfg.training.primary_metric
    ranked = sorted(trained, key=lambda r: (r["metrics"][primary], r["metrics"]["roc_auc"] or 0.0), reverse=True)
    best_overall = ranked[0]
    passing = [r for r in ranked if r["gate"].passed]
    best = passing[0] if passing else None
    promote, why = gate.decide_promotion(best, champion=champion, primary_metric=primary, force=opts.force_retrain)
    # The run regresses when its best candidate falls below the champion beyond tolerance;
    # a weaker model type in the same run is not a regression of the system.
    regression = bool(best_overall["gate"].regression)
    promoted = best if promote else None
    # The reference profile (its permutation importance scores ~130k rows) overlaps the last MLflow logging.
    profile = bg.on_assess_thread(_build_profile, promoted, prepared, parts, seed) if promoted else None
    bg.wait()  # every model file written and logged: the manifests carry their MLflow ids
    outcome = _record(cfg, opts, seed, when, commit, dataset, prepared, parts, champion, validation, results,
                      best_overall, promoted, why, regression, bg.run_id, profile)  # fmt: skip
    # MLflow learns the outcome only once the repository holds it: a failure above leaves the
    # parent run FAILED and the aliases where they were.
    bg.finish(best, promoted, why, regression, len(trained))
    return outcome


def _single_threaded_predict(pipeline: Any) -> None:
    # Threaded forests sum tree probabilities in whatever order threads finish, so the last
    # bits of predict_proba vary run to run; one thread makes metrics bit-reproducible.
    estimator = pipeline.steps[-1][1]
    if "n_jobs" in estimator.get_params():
        estimator.set_params(n_jobs=1)


def _validate(cfg: Config, dataset: data.DatasetFile, opts: TrainOptions, table: Any) -> dict[str, Any] | None:
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


def _record(cfg, opts, seed, when, commit, dataset, prepared, parts, champion, validation, results,
            best_overall, promoted, why, regression, run_id, profile) -> dict[str, Any]:  # fmt: skip
    import sklearn

    repo = cfg.repo
    trained = [r for r in results if "error" not in r]
    outcome = {
        "time": when,
        "commit": commit,
        "seed": seed,
        "promoted": bool(promoted),
        "promoted_version": promoted["version"] if promoted else None,
        "best_version": best_overall["version"],
        "decision": why,
        "regression": regression,
        "mlflow_parent_run_id": run_id,
        "dataset": dataset.record(repo.root),
        "candidates": [],
    }
    for r in results:
        if "error" in r:
            outcome["candidates"].append({"model_type": r["model_type"], "version": r["version"], "error": r["error"]})
            continue
        decision = "promoted" if r is promoted else ("candidate" if r["gate"].passed else "rejected")
        gate_record = {
            "version": r["version"],
            "model_type": r["model_type"],
            "time": when,
            "commit": commit,
            "dataset": {"sha256": dataset.sha256, "source": dataset.source},
            "primary_metric": cfg.training.primary_metric,
            "tolerance": cfg.training.tolerance,
            "thresholds": {
                "accuracy_min": cfg.schedule.thresholds.accuracy_min,
                "ece_max": cfg.schedule.thresholds.ece_max,
            },
            "candidate": {"metrics": r["metrics"]},
            "champion": (
                {k: champion.get(k) for k in ("version", "model_type", "metrics", "comparable", "reason")}
                if champion
                else None
            ),
            "checks": r["gate"].checks,
            "passed": r["gate"].passed,
            "reasons": r["gate"].reasons,
            "regression": r["gate"].regression,
            "champion_delta": r["gate"].champion_delta,
            "best_of_run": r is best_overall,
            "decision": decision,
            "promotion_reason": why if r is (promoted or best_overall) else None,
            "force_retrain": opts.force_retrain,
            "mlflow_run_id": r.get("mlflow", {}).get("run_id"),
        }
        gate_path = repo.gates / f"{r['version']}.json"
        jsonio.write_json(gate_path, gate_record)
        manifest = {
            "version": r["version"],
            "model_type": r["model_type"],
            "description": r["description"],
            "created_at": when,
            "commit": commit,
            "seed": seed,
            "model_file": registry.MODEL_FILE,
            "model_sha256": r["model_sha256"],
            "skops_trusted_types": r["trusted"],
            "dataset": {
                **dataset.record(repo.root),
                "rows": int(len(prepared.y)),
                "split": {k: int(len(parts[f"y_{k}"])) for k in ("train", "val", "test")},
            },  # fmt: skip
            "features": {
                "numeric": prepared.numeric,
                "categorical": prepared.categorical,
                "dropped_empty": prepared.dropped_empty,
            },
            "label": {"name": cfg.dataset.label, "positive": prepared.positive_label, "classes": prepared.classes},
            "metrics": r["metrics"],
            "validation_metrics": r["validation_metrics"],
            "intervals": r["intervals"],
            "slices": r["slices"],
            "reliability": r["reliability"],
            "curves": r["curves"],
            "gate": {"record": repo.rel(gate_path), "passed": r["gate"].passed, "decision": decision},
            "mlflow": r.get("mlflow"),
            "data_validation": validation,
            "overrides": {"allow_invalid_data": opts.allow_invalid_data, "force_retrain": opts.force_retrain},
            "fit_seconds": round(r["fit_seconds"], 3),
            "environment": {"python": platform.python_version(), "scikit-learn": sklearn.__version__},
        }
        jsonio.write_json(r["staged"] / registry.MANIFEST, manifest)
        r["manifest"] = manifest
        outcome["candidates"].append(
            {"model_type": r["model_type"], "version": r["version"], "decision": decision,
             "metrics": r["metrics"], "gate_record": repo.rel(gate_path), "regression": r["gate"].regression}
        )  # fmt: skip

    if promoted:
        jsonio.write_json(promoted["staged"] / registry.PROFILE, profile.result())
    _audit(repo, "training_run", {k: outcome[k] for k in ("time", "commit", "seed", "best_version", "decision",
                                                           "promoted_version", "regression", "mlflow_parent_run_id")}
           | {"dataset_sha256": dataset.sha256, "dataset_source": dataset.source,
              "candidates": [c["version"] for c in outcome["candidates"]]})  # fmt: skip
    for r in trained:
        _audit(repo, "gate_decision", {"version": r["version"], "passed": r["gate"].passed,
                                        "decision": r["manifest"]["gate"]["decision"], "reasons": r["gate"].reasons,
                                        "regression": r["gate"].regression})  # fmt: skip
    for r in trained:
        if r is not promoted:
            registry.place_candidate(repo, r["staged"], r["version"])
    if promoted:
        previous = registry.promote(repo, promoted["staged"])
        entry = _audit(repo, "promotion", {"version": promoted["version"], "previous": previous, "reason": why,
                                            "model_sha256": promoted["model_sha256"],
                                            "dataset_sha256": dataset.sha256})  # fmt: skip
        if previous:
            _audit(repo, "archive", {"version": previous, "replaced_by": promoted["version"]})
        outcome["previous_version"] = previous
        outcome["promotion_audit_seq"] = entry.get("seq") if entry else None
    _cards(cfg, outcome, results)
    outcome["diff_markdown"] = _diff(best_overall, champion, dataset.sha256)
    return outcome


def _diff(best: dict[str, Any], champion: dict[str, Any] | None, dataset_sha: str) -> str | None:
    from mlops.cards import metrics_diff_markdown

    other = None
    if champion and champion.get("comparable"):
        # the champion re-evaluated on this run's test split: the fair, same-data comparison
        other = {"version": champion["version"], "metrics": champion["metrics"], "dataset": {"sha256": dataset_sha}}
    return metrics_diff_markdown(best["manifest"], other)


def _build_profile(promoted: dict[str, Any], prepared: data.Prepared, parts: dict[str, Any], seed: int) -> dict:
    from mlops.profile import build_reference_profile

    profile = build_reference_profile(
        promoted["pipeline"], parts["X_train"], parts["X_test"], parts["y_test"],
        prepared.numeric, prepared.categorical, promoted["metrics"], seed, test_scores=promoted["proba"],
    )  # fmt: skip
    profile.setdefault("version", promoted["version"])
    return profile


def _audit(repo, event_type: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    from mlops import audit

    return audit.record(repo, event_type, payload)


def _cards(cfg: Config, outcome: dict[str, Any], results: list[dict[str, Any]]) -> None:
    from mlops import cards

    cards.write_for_versions(cfg, [c["version"] for c in outcome["candidates"] if "error" not in c])


def _redact(uri: str) -> str:
    from mlops.tracking import redact

    return redact(uri)


def summary_markdown(outcome: dict[str, Any], primary: str) -> str:
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
    return head + table + (f"\n\n#### Best candidate against the champion\n\n{diff}" if diff else "")


def seconds_since(start: float) -> float:
    return time.perf_counter() - start


os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # mlflow imports GitPython; no warning without git
