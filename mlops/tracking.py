"""MLflow tracking: one parent run per `mlops train`, a nested run per model type, models logged
in skops format and registered, aliases `champion` and `challenger` (not the deprecated stages)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from mlops.repo import Repo

INPUT_EXAMPLE_ROWS = 5
DIGEST_CHARS = 36  # the longest dataset digest MLflow's stores accept


def _quiet() -> None:
    for name in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # mlflow imports GitPython; no warning without git


def redact(uri: str) -> str:
    """A tracking URI safe to write into committed files (no credentials)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.password or parts.username:
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return uri


def preflight(repo: Repo) -> None:
    """Refuse a sqlite tracking URI whose file cannot be created or written, before any work starts.

    Opening the store means importing MLflow (seconds), which `mlops train` does only once the
    data is read and checked; this cheap check moves the common mistakes (a path through a file,
    a read-only folder) ahead of anything written. Other stores are checked on opening.
    """
    from urllib.parse import unquote

    from mlops.errors import BadInput

    uri = repo.tracking_uri()
    if not uri.startswith("sqlite:///"):
        return
    path = Path(unquote(uri[len("sqlite:///") :].split("?", 1)[0]))
    if not path.is_absolute():
        path = Path.cwd() / path
    where = "MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI") else repo.rel(path)
    fix = "point MLFLOW_TRACKING_URI at a writable sqlite file, or pass --no-tracking for a local experiment"
    if path.exists():
        if not path.is_file() or not os.access(path, os.R_OK | os.W_OK):
            raise BadInput(where, f"{path} is not a readable and writable sqlite file", fix)
        return
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise BadInput(where, f"cannot create {path}: {folder} is not a writable folder", fix)


class Tracker:
    def __init__(self, repo: Repo, experiment: str, registered_model: str):
        _quiet()
        import mlflow

        _quiet()  # mlflow resets its logger level on import
        self.mlflow = mlflow
        self.repo = repo
        self.uri = repo.tracking_uri()
        self.registered_model = registered_model
        if self.uri.startswith("sqlite:///") and not os.environ.get("MLFLOW_TRACKING_URI"):
            repo.mlflow_dir.mkdir(parents=True, exist_ok=True)
        before = os.environ.get("MLFLOW_TRACKING_URI")
        mlflow.set_tracking_uri(self.uri)
        # set_tracking_uri also exports MLFLOW_TRACKING_URI; undo that so later commands in the
        # same process (the demo, tests) resolve their own repo's default store, not this one.
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before
        self.client = mlflow.MlflowClient(tracking_uri=self.uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            location = None
            if self.uri.startswith("sqlite:"):
                # Without this MLflow writes artifacts to ./mlruns of whatever the cwd is.
                location = (repo.mlflow_dir / "artifacts").resolve().as_uri()
            self.experiment_id = self._create_experiment(experiment, location)
        else:
            self.experiment_id = found.experiment_id
            self._warn_if_artifacts_elsewhere(found.artifact_location)

    def _create_experiment(self, name: str, location: str | None) -> str:
        """Create the experiment; when another process (a shard started at the same moment) made it between
        our lookup and now, use theirs: the server answers RESOURCE_ALREADY_EXISTS to the loser."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.create_experiment(name, artifact_location=location)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return self.client.get_experiment_by_name(name).experiment_id

    def _warn_if_artifacts_elsewhere(self, location: str) -> None:
        """A sqlite store copied from another folder keeps the absolute artifact path it was made with."""
        if not (self.uri.startswith("sqlite:") and location.startswith("file:")):
            return
        from urllib.parse import unquote, urlsplit

        here = (self.repo.mlflow_dir / "artifacts").resolve()
        there = Path(unquote(urlsplit(location).path))
        if there != here:
            from mlops import gha

            gha.warn(
                f"{self.repo.rel(self.repo.mlflow_dir)}: the MLflow store was made in another folder; "
                f"its artifacts go to {there}, not {here} (start a fresh store to change that)"
            )

    def log_candidate(
        self,
        *,
        model_type: str,
        version: str,
        params: dict[str, Any],
        metrics: dict[str, float],
        tags: dict[str, str],
        pipeline: Any,
        trusted_types: list[str],
        sample: Any,
        proba: Any,
    ) -> dict[str, str]:
        """Log one candidate in a nested run and register it; returns run id and model version.

        The logged model's pyfunc returns the positive-class score (mlops/mlflow_pyfunc.py), which is what
        its signature describes; `sample` (its first rows) is the input example.
        """
        import contextlib
        import io
        import tempfile

        import sklearn
        import skops
        from mlflow.models import infer_signature

        from mlops import registry

        mlflow = self.mlflow
        # MLflow prints "Registered model ... Created version ..." straight to stderr; keep CI logs readable.
        with (
            contextlib.redirect_stderr(io.StringIO()),
            tempfile.TemporaryDirectory() as tmp,
            mlflow.start_run(experiment_id=self.experiment_id, run_name=model_type, nested=True, tags=tags) as run,
        ):
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
            model_file = Path(tmp) / registry.MODEL_FILE
            sha256, _ = registry.dump_model(pipeline, model_file)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(Path(__file__).with_name("mlflow_pyfunc.py")),
                artifacts={"model": str(model_file)},
                model_config={"sha256": sha256, "trusted_types": list(trusted_types)},
                signature=infer_signature(sample, proba),
                input_example=sample.head(INPUT_EXAMPLE_ROWS),
                # Explicit requirements: MLflow's inference would spend seconds importing and probing.
                pip_requirements=[
                    f"mlflow=={mlflow.__version__}",
                    f"scikit-learn=={sklearn.__version__}",
                    f"skops=={skops.__version__}",
                ],
                tags={"mlops.version": version},
            )
            # Registering separately carries the version's tags in the one create call.
            registered = mlflow.register_model(
                info.model_uri, self.registered_model, tags={**tags, "mlops.version": version}
            ).version
            return {"run_id": run.info.run_id, "model_version": str(registered), "model_uri": info.model_uri}

    def set_alias(self, alias: str, model_version: str) -> None:
        self.client.set_registered_model_alias(self.registered_model, alias, model_version)

    def delete_alias(self, alias: str) -> None:
        """Remove an alias; nothing to do when it is not set."""
        if alias in (self.client.get_registered_model(self.registered_model).aliases or {}):
            self.client.delete_registered_model_alias(self.registered_model, alias)

    def log_parent(self, metrics: dict[str, float], tags: dict[str, str]) -> None:
        self.mlflow.log_metrics(metrics)
        self.mlflow.set_tags(tags)

    def version_for(self, mlops_version: str) -> str | None:
        """The registered model version carrying an mlops version id, if this store has it."""
        found = self.client.search_model_versions(
            f"name = '{self.registered_model}' and tags.`mlops.version` = '{mlops_version}'"
        )
        return str(found[0].version) if found else None


def log_records(repo: Repo, versions: list[str], dataset_name: str) -> None:
    """Attach each version's context to its MLflow run, once its files exist: the card (JSON, Markdown,
    MCT export, plots), the gate record, the reference profile (promoted versions) and the data set as a
    run input (`mlflow.log_input`: source and sha256 digest). A version trained with --no-tracking is skipped;
    a store that refuses warns and changes nothing else (the records are in git already)."""
    from mlops import gha, jsonio, registry

    todo = []
    for version in versions:
        try:
            folder = registry.find_version(repo, version)
        except Exception:  # noqa: BLE001 - a card for a version with no model folder has no run to attach to
            continue
        manifest = jsonio.read_json(folder / registry.MANIFEST, "model manifest")
        if (manifest.get("mlflow") or {}).get("run_id"):
            todo.append((folder, manifest))
    if not todo:
        return
    try:
        _quiet()
        import mlflow

        _quiet()
        client = mlflow.MlflowClient(tracking_uri=repo.tracking_uri())
        for folder, manifest in todo:
            _log_one(client, repo, folder, manifest, dataset_name)
    except Exception as exc:  # noqa: BLE001 - logging context must never fail a recorded training run
        gha.warn(f"MLflow: card, gate record and data set not logged to the runs ({type(exc).__name__}: {exc})")


def _log_one(client: Any, repo: Repo, folder: Path, manifest: dict[str, Any], dataset_name: str) -> None:
    import json

    from mlflow.entities import Dataset, DatasetInput, InputTag

    from mlops import registry

    run_id, version = manifest["mlflow"]["run_id"], manifest["version"]
    files = [(repo.cards / f"{version}.{ext}", "card") for ext in ("json", "md")]
    files += [(p, f"card/{version}") for p in sorted((repo.cards / version).glob("*")) if p.is_file()]
    files += [(repo.gates / f"{version}.json", "gate"), (folder / registry.PROFILE, "profile")]
    for path, where in files:
        if path.is_file():
            client.log_artifact(run_id, str(path), where)
    ds = manifest.get("dataset") or {}
    if not ds.get("sha256"):
        return
    source = ds.get("detail") or ds.get("path") or ds.get("source") or ""
    dataset = Dataset(
        name=dataset_name,
        digest=ds["sha256"][:DIGEST_CHARS],  # MLflow's column limit; the full sha256 is in source and tags
        source_type=ds.get("source") or "local",
        source=json.dumps({"uri": source, "sha256": ds["sha256"]}, sort_keys=True),
    )
    tags = [InputTag("mlflow.data.context", "training"), InputTag("mlops.dataset_sha256", ds["sha256"])]
    client.log_inputs(run_id, datasets=[DatasetInput(dataset, tags)])
