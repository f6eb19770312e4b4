"""Config is data: each config/<name>.json is validated once, at the boundary, against
config/schemas/<name>.schema.json, then passed down as typed objects.

Unknown keys warn instead of failing (a newer config on an older checkout still runs);
every other violation is one BadInput line: file, JSON pointer, expected, found, fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.errors import BadInput
from mlops.jsonio import read_json
from mlops.repo import Repo

REQUIRED = ("training-schedule", "dataset", "training")


def _pointer(path: Any) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else "/"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def describe_violation(error: Any) -> tuple[str, str]:
    """Turn a jsonschema ValidationError into ('expected ...', 'found ...')."""
    v, want, got = error.validator, error.validator_value, error.instance
    expected = {
        "type": lambda: f"a value of type {want if isinstance(want, str) else ' or '.join(want)}",
        "enum": lambda: "one of " + ", ".join(_short(w) for w in want),
        "const": lambda: f"exactly {_short(want)}",
        "minimum": lambda: f"a number >= {want}",
        "maximum": lambda: f"a number <= {want}",
        "exclusiveMinimum": lambda: f"a number > {want}",
        "exclusiveMaximum": lambda: f"a number < {want}",
        "pattern": lambda: f"a string matching {want}",
        "minItems": lambda: f"at least {want} item(s)",
        "maxItems": lambda: f"at most {want} item(s)",
        "minLength": lambda: f"at least {want} character(s)",
        "uniqueItems": lambda: "no repeated items",
    }.get(v)
    if v == "required":
        missing = [k for k in want if isinstance(got, dict) and k not in got]
        return f"the key {_short(missing[0] if missing else want)}", "it missing"
    if expected is None:
        return error.message, _short(got)
    return expected(), _short(got)


@dataclass(frozen=True)
class Thresholds:
    accuracy_min: float
    ece_max: float
    drift_alert_threshold: float


@dataclass(frozen=True)
class Schedule:
    default_schedule: str
    candidates_retention_days: int
    production_retention_days: int
    thresholds: Thresholds
    refresh_interval_days: int
    minimum_samples: int


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    source: str
    label: str
    positive_label: Any = None
    categorical: tuple[str, ...] = ()
    drop_columns: tuple[str, ...] = ()
    timestamp_column: str | None = None
    slices: tuple[str, ...] = ()
    local_path: str | None = None
    kaggle_dataset: str | None = None
    kaggle_file: str | None = None
    synthetic_rows: int = 24000
    synthetic_seed: int = 7


@dataclass(frozen=True)
class TrainingConfig:
    model_types: tuple[str, ...]
    seed: int
    primary_metric: str
    ece_bins: int
    bootstrap_iterations: int
    test_size: float
    validation_size: float
    tolerance: float
    deploy_after_promotion: bool


@dataclass(frozen=True)
class Config:
    repo: Repo
    raw: dict[str, dict[str, Any]]
    schedule: Schedule
    dataset: DatasetConfig
    training: TrainingConfig

    def section(self, name: str) -> dict[str, Any]:
        """Raw, schema-validated content of config/<name>.json ({} when that file is absent)."""
        return self.raw.get(name, {})


def _days(text: str) -> int:
    return int(text.rstrip("d"))


def validate_file(repo: Repo, name: str) -> dict[str, Any]:
    """Validate config/<name>.json against its schema; return its data."""
    import jsonschema

    path = repo.config_dir / f"{name}.json"
    rel = repo.rel(path)
    schema_path = repo.schemas_dir / f"{name}.schema.json"
    data = read_json(path, "config file", rel)
    if not schema_path.exists():
        raise BadInput(repo.rel(schema_path), f"no JSON Schema for {rel}", f"add config/schemas/{name}.schema.json")
    schema = read_json(schema_path, "schema")
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: (list(e.absolute_path), e.validator))
    if errors:
        err = errors[0]
        if err.validator == "additionalProperties":
            # A misspelt key would otherwise leave its setting at the default without a word.
            import difflib

            known = sorted(err.schema.get("properties", {}))
            key = sorted(set(err.instance) - set(known))[0]
            close = difflib.get_close_matches(key, known, n=1)
            raise BadInput(
                f"{rel}: {_pointer([*err.absolute_path, key])}",
                f"unknown key (known here: {', '.join(known)})",
                f"rename it to {close[0]!r}" if close else "remove it, or add it to the schema if code reads it",
            )
        expected, found = describe_violation(err)
        raise BadInput(
            f"{rel}: {_pointer(err.absolute_path)}",
            f"expected {expected}, found {found}",
            f"fix {rel} and run `mlops config check`",
        )
    return data


def config_names(repo: Repo) -> list[str]:
    names = {p.name[: -len(".json")] for p in repo.config_dir.glob("*.json")}
    return sorted(names | set(REQUIRED))


def load(repo: Repo) -> Config:
    """Load and validate every config file once; nothing else reads config/ directly."""
    raw: dict[str, dict[str, Any]] = {}
    if not repo.config_dir.is_dir():
        raise BadInput(str(repo.config_dir), "no config/ folder here", "run from the repository root or pass --repo")
    for name in config_names(repo):
        raw[name] = validate_file(repo, name)
    s, d, t = raw["training-schedule"], raw["dataset"], raw["training"]
    thresholds = Thresholds(**{k: float(v) for k, v in s["performance_thresholds"].items()})
    schedule = Schedule(
        default_schedule=s["default_schedule"],
        candidates_retention_days=_days(s["model_retention"]["candidates"]),
        production_retention_days=_days(s["model_retention"]["production"]),
        thresholds=thresholds,
        refresh_interval_days=int(s["datasets"]["refresh_interval_days"]),
        minimum_samples=int(s["datasets"]["minimum_samples"]),
    )
    dataset = DatasetConfig(
        name=d["name"],
        source=d["source"],
        label=d["label"],
        positive_label=d.get("positive_label"),
        categorical=tuple(d.get("categorical", ())),
        drop_columns=tuple(d.get("drop_columns", ())),
        timestamp_column=d.get("timestamp_column"),
        slices=tuple(d.get("slices", ())),
        local_path=d.get("local", {}).get("path"),
        kaggle_dataset=d.get("kaggle", {}).get("dataset"),
        kaggle_file=d.get("kaggle", {}).get("file"),
        synthetic_rows=int(d.get("synthetic", {}).get("rows", 24000)),
        synthetic_seed=int(d.get("synthetic", {}).get("seed", 7)),
    )
    training = TrainingConfig(
        model_types=tuple(t["model_types"]),
        seed=int(t["seed"]),
        primary_metric=t["primary_metric"],
        ece_bins=int(t.get("ece_bins", 10)),
        bootstrap_iterations=int(t.get("bootstrap_iterations", 200)),
        test_size=float(t["split"]["test"]),
        validation_size=float(t["split"]["validation"]),
        tolerance=float(t["promotion"]["primary_metric_tolerance"]),
        deploy_after_promotion=bool(t["promotion"].get("deploy_after_promotion", False)),
    )
    return Config(repo=repo, raw=raw, schedule=schedule, dataset=dataset, training=training)


def resolve(repo: Repo, relative: str) -> Path:
    path = Path(relative)
    return path if path.is_absolute() else repo.root / path
