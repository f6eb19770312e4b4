"""Training fanned out over processes: `mlops train --shard I/N --out DIR` and `mlops gate --candidates DIR…`.

A shard (I of N, 1-based) fits the model types dealt to it (the configured order, every N-th from the I-th)
and writes each one's skops file and manifest to DIR/<version>/, and DIR/shard.json listing every file with
its sha256. With a study storage (config /hpo/storage or OPTUNA_STORAGE), every shard also runs its share
of every type's trials: the shard that fits a type first waits for the other workers' trials of it.

The fan-in gate reads the folders, refuses any file whose sha256 differs from shard.json (exit 2, nothing
written), loads the data with the shards' seed (it must have the shards' sha256), re-scores every candidate
and the champion on the same test split, gates, promotes, and writes gate records, cards and audit entries
once, exactly as one `mlops train` would.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from mlops import gha, jsonio, registry, train
from mlops.config import Config
from mlops.errors import BadInput

SHARD_FILE = "shard.json"
_SPEC = re.compile(r"^(\d+)/(\d+)$")


def parse_spec(text: str) -> tuple[int, int]:
    """'I/N' with 1 <= I <= N -> (I - 1, N): the 0-based index the rest of the code uses."""
    found = _SPEC.match(text.strip())
    if not found or not 1 <= int(found[1]) <= int(found[2]):
        raise BadInput("--shard", f"{text!r} is not a shard I/N with 1 <= I <= N", "pass e.g. --shard 1/2")
    return int(found[1]) - 1, int(found[2])


def dealt(names: list[str], shard: tuple[int, int]) -> list[str]:
    """The model types a shard fits: every N-th of the selected types, from its own index."""
    index, width = shard
    return names[index::width]


def run_shard(cfg: Config, opts: train.TrainOptions, out: Path) -> dict[str, Any]:
    """Train this shard's share into `out`; nothing under models/ changes and nothing is promoted."""
    assert opts.shard is not None
    where = str(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInput(where, "the output folder exists and is not empty", "pass a new or empty --out folder")
    inputs = train._load(cfg, opts)
    names = list(inputs.types)
    mine = dealt(names, opts.shard)
    tracking = train._open_tracking(cfg, inputs) if opts.track else None
    spec = f"{opts.shard[0] + 1}/{opts.shard[1]}"
    done = False
    try:
        if tracking is not None:
            run_name = f"shard-{spec.replace('/', 'of')}-{inputs.when}"  # the gate's run is train-<time>
            tracking.tracker.mlflow.set_tags(
                {"mlops.shard": spec, "mlops.model_types": ",".join(mine), "mlflow.runName": run_name}
            )
        entries, failures = [], []
        for name in gha.progress(names, f"shard {spec}", total=len(names)):
            module = inputs.types[name]
            if name not in mine:
                if inputs.tuning is not None and inputs.tuning.shares_trials:
                    train.tune(cfg, inputs, name, module)  # this worker's share of the type's trials only
                continue
            fitted = train.fit(cfg, inputs, name, module)
            if isinstance(fitted, train.Failure):
                failures.append({"model_type": name, "version": fitted.version, "error": fitted.error})
                continue
            entries.append(_write_candidate(cfg, inputs, out, name, module, fitted, tracking))
        record = _shard_record(inputs, spec, entries, failures, out, tracking)
        jsonio.write_json(out / SHARD_FILE, record)
        if tracking is not None:
            tracking.tracker.mlflow.end_run()
        done = True
        return record
    finally:
        if not done and tracking is not None:
            tracking.tracker.mlflow.end_run("FAILED")


def _write_candidate(
    cfg: Config, inputs: train.Inputs, out: Path, name: str, module: Any, fitted: tuple, tracking: Any
) -> dict[str, Any]:
    from mlops.profile import positive_scores

    version, pipeline, fit_seconds, tuned = fitted
    sample = inputs.parts["X_test"].head(5)  # the MLflow signature's example input; nothing is scored here
    shell = train.Candidate(
        model_type=name, version=version, description=getattr(module, "DESCRIPTION", ""), pipeline=pipeline,
        fit_seconds=fit_seconds, metrics={}, validation_metrics=None, intervals={}, slices={}, reliability=[],
        curves={}, proba=positive_scores(pipeline, sample), gate=None, tuned=tuned,
    )  # fmt: skip
    folder = out / version
    folder.mkdir(parents=True)
    stored = train.store(cfg, shell, inputs.seed, tracking, sample, folder=folder)
    manifest = {
        "version": version,
        "model_type": name,
        "description": shell.description,
        "model_file": registry.MODEL_FILE,
        "model_sha256": stored.model_sha256,
        "skops_trusted_types": stored.trusted_types,
        "fit_seconds": round(fit_seconds, 3),
        "hpo": tuned.summary if tuned is not None else None,
        "hpo_params": tuned.params if tuned is not None else None,
        "hpo_trials": tuned.trials if tuned is not None else None,
        "mlflow": stored.mlflow,
    }
    jsonio.write_json(folder / registry.MANIFEST, manifest)
    gha.info(f"{name}: {version} written to {folder}")
    return {"version": version, "model_type": name}


def _shard_record(
    inputs: train.Inputs, spec: str, entries: list, failures: list, out: Path, tracking: Any
) -> dict[str, Any]:
    files = {}
    for entry in entries:
        for leaf in (registry.MODEL_FILE, registry.MANIFEST):
            rel = f"{entry['version']}/{leaf}"
            files[rel] = registry.sha256_file(out / rel)
    return {
        "shard": spec,
        "time": inputs.when,
        "commit": inputs.commit,
        "seed": inputs.seed,
        "dataset": {"sha256": inputs.dataset.sha256, "source": inputs.dataset.source},
        "model_types": list(inputs.types),
        "candidates": entries,
        "failures": failures,
        "files": files,
        "mlflow_parent_run_id": tracking.run_id if tracking is not None else None,
    }


def read_folder(folder: Path) -> dict[str, Any]:
    """A shard's shard.json, with every file it lists checked against its sha256 (BadInput otherwise)."""
    path = folder / SHARD_FILE
    if not path.is_file():
        raise BadInput(str(path), "missing", "pass folders written by `mlops train --shard I/N --out DIR`")
    record = jsonio.read_json(path, "shard record")
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict):
        raise BadInput(f"{path}: /files", "expected an object of file sha256s", "rerun the shard")
    for rel, expected in sorted(record["files"].items()):
        target = (folder / rel).resolve()
        if folder.resolve() not in target.parents:
            raise BadInput(f"{path}: /files/{rel}", "points outside the folder", "rerun the shard")
        if not target.is_file():
            raise BadInput(str(folder / rel), "listed in shard.json but missing", "download the whole artifact")
        actual = registry.sha256_file(target)
        if actual != expected:
            raise BadInput(
                str(folder / rel),
                f"sha256 {actual[:12]}… does not match shard.json's {str(expected)[:12]}…",
                "the file changed after the shard wrote it: rerun the shard",
            )
    for entry in record.get("candidates", []):
        for leaf in (registry.MODEL_FILE, registry.MANIFEST):
            if f"{entry['version']}/{leaf}" not in record["files"]:
                raise BadInput(f"{path}: /files", f"{entry['version']}/{leaf} is not listed", "rerun the shard")
    return record


def _consistent(records: list[tuple[Path, dict[str, Any]]]) -> tuple[int, str]:
    (first_dir, first), seen = records[0], {}
    for folder, record in records:
        for key in ("seed", "dataset"):
            if record.get(key) != first.get(key):
                raise BadInput(
                    f"{folder / SHARD_FILE}: /{key}",
                    f"differs from {first_dir / SHARD_FILE}'s",
                    "fan in shards of one training run only",
                )
        for entry in record.get("candidates", []) + record.get("failures", []):
            if entry["model_type"] in seen:
                raise BadInput(
                    f"{folder / SHARD_FILE}",
                    f"model type {entry['model_type']} also comes from {seen[entry['model_type']]}",
                    "pass each shard's folder once",
                )
            seen[entry["model_type"]] = folder
    return first["seed"], first["dataset"]["sha256"]


def fan_in(cfg: Config, folders: list[Path], opts: train.TrainOptions) -> dict[str, Any]:
    """Gate the shards' candidates together: one decision, one promotion, cards and audit entries once."""
    if not folders:
        raise BadInput("--candidates", "no folder given", "pass the shards' output folders")
    records = [(folder, read_folder(folder)) for folder in folders]
    seed, dataset_sha = _consistent(records)
    types = [e["model_type"] for _, r in records for e in r.get("candidates", []) + r.get("failures", [])]
    if not types:
        raise BadInput("--candidates", "the shards hold no candidate", "rerun the shards")
    opts.seed, opts.model_types, opts.hpo, opts.shard = seed, types, False, None
    inputs = train._load(cfg, opts)
    if inputs.dataset.sha256 != dataset_sha:
        raise BadInput(
            f"{folders[0] / SHARD_FILE}: /dataset/sha256",
            f"the shards trained on {dataset_sha[:12]}…, this data is {inputs.dataset.sha256[:12]}…",
            "run the gate on the data the shards trained on (same source, window and commit)",
        )
    tracking = train._open_tracking(cfg, inputs) if opts.track else None
    if tracking is not None:
        _adopt_shard_runs(tracking, records)
    stored: dict[str, train.Stored] = {}
    return train.conclude(
        cfg, opts, inputs, tracking, lambda: _rescored(cfg, inputs, records, stored, tracking), stored
    )


def _adopt_shard_runs(tracking: Any, records: list) -> None:
    """Nest each shard's parent run under the gate's, so MLflow shows one training run: the gate's run, a
    run per shard, a run per type, its trials. A shard that logged to another store (its own sqlite)
    has no run here and is left alone."""
    from mlflow.exceptions import MlflowException

    for _folder, record in records:
        run_id = record.get("mlflow_parent_run_id")
        if not run_id:
            continue
        try:
            tracking.tracker.client.set_tag(run_id, "mlflow.parentRunId", tracking.run_id)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise


def _rescored(
    cfg: Config, inputs: train.Inputs, records: list, stored: dict[str, train.Stored], tracking: Any
) -> list[Any]:
    """Every shard's candidate re-scored and gated here; its model staged for the record. A shard that logged
    to MLflow (a shared tracking server) keeps its runs; otherwise the gate logs the model in its own store."""
    from mlops.hpo import Tuned

    results: list[Any] = []
    for folder, record in records:
        for entry in record.get("failures", []):
            results.append(train.Failure(entry["model_type"], entry["version"], entry["error"]))
        for entry in record.get("candidates", []):
            source = folder / entry["version"]
            pipeline, manifest = registry.load_model(source)
            name = manifest["model_type"]
            tuned = None
            if manifest.get("hpo"):
                tuned = Tuned(manifest.get("hpo_params") or {}, manifest["hpo"], manifest.get("hpo_trials") or [])
            result = train.assess(cfg, inputs, name, inputs.types[name], entry["version"], pipeline,
                                  manifest.get("fit_seconds", 0.0), tuned)  # fmt: skip
            results.append(result)
            staged = registry.stage(cfg.repo, entry["version"])
            if tracking is not None and not manifest.get("mlflow") and isinstance(result, train.Candidate):
                sample = inputs.parts["X_test"].head(5)
                stored[entry["version"]] = train.store(cfg, result, inputs.seed, tracking, sample, folder=staged)
                continue
            shutil.copy2(source / registry.MODEL_FILE, staged / registry.MODEL_FILE)
            mlflow = manifest.get("mlflow") if tracking is not None else None
            stored[entry["version"]] = train.Stored(
                staged, manifest["model_sha256"], manifest["skops_trusted_types"], mlflow
            )
    return results
