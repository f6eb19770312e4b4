"""Config is data: each config/<name>.json is validated once, at the boundary, against
config/schemas/<name>.schema.json, then passed down as typed objects.

An unknown key is refused like any other violation (a misspelt setting would otherwise keep its
default without a word): one BadInput line naming the file, the JSON pointer, what was expected
and the fix. Defaults live only in the schemas.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.errors import BadInput
from mlops.jsonio import read_json
from mlops.repo import Repo

REQUIRED = ("training-schedule", "dataset", "training")


def json_pointer(path: Any) -> str:
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


def first_violation(schema: dict[str, Any], data: Any) -> Any:
    """The first jsonschema error of `data` (by JSON path), or None when it is valid."""
    import jsonschema

    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: (list(e.absolute_path), e.validator)
    )
    if not errors:
        return None
    err = errors[0]
    # "null or an object" fails as a whole; the useful line is the deepest failure inside the object branch.
    while err.validator in ("oneOf", "anyOf") and err.context:
        err = max(err.context, key=lambda e: (len(e.absolute_path), e.validator != "type"))
    return err


def require_valid(schema: dict[str, Any], data: Any, where: str, fix: str) -> None:
    """BadInput '<where>: <pointer>: expected ..., found ...; <fix>' for the first violation, if any."""
    err = first_violation(schema, data)
    if err is not None:
        expected, found = describe_violation(err)
        raise BadInput(f"{where}: {json_pointer(err.absolute_path)}", f"expected {expected}, found {found}", fix)


# ------------------------------------------------------------------------------ typed sections
# One frozen dataclass per config file (and per nested object), field names = the JSON keys.
# No field has a default here: `_fill` takes every absent value from the schema's `default`, so
# the schema is the one place a default is written (tests/test_config.py checks it). A field
# that is optional in the schema and has no `default` is None when absent; its description says
# which other setting it then follows.


@dataclass(frozen=True)
class AlertsDelivery:
    timeout_seconds: int
    max_attempts: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    max_wait_seconds: float
    per_page: int
    seconds_between_writes: float


@dataclass(frozen=True)
class AlertsRetrain:
    workflow: str
    ref: str
    cooldown_hours: float


@dataclass(frozen=True)
class AlertsConfig:
    delivery: AlertsDelivery
    resolve_after_clean_runs: int
    retrain: AlertsRetrain


@dataclass(frozen=True)
class LocalSource:
    path: str


@dataclass(frozen=True)
class KaggleSource:
    dataset: str
    file: str


@dataclass(frozen=True)
class SyntheticSource:
    rows: int
    seed: int


@dataclass(frozen=True)
class ProductionSource:
    window_hours: float
    min_labelled_rows: int
    mix_base: bool
    base_source: str


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    source: str
    label: str
    positive_label: str | int | bool | None
    categorical: tuple[str, ...]
    drop_columns: tuple[str, ...]
    timestamp_column: str | None
    slices: tuple[str, ...]
    local: LocalSource | None
    kaggle: KaggleSource | None
    synthetic: SyntheticSource
    production: ProductionSource


@dataclass(frozen=True)
class HealthCheck:
    requests: int
    latency_budget_ms_p95: float


@dataclass(frozen=True)
class CanaryAnalysis:
    min_requests: int
    max_score_ks: float
    max_positive_rate_delta: float
    max_error_rate_delta: float
    max_latency_ratio: float
    min_feedback: int
    max_accuracy_drop: float


@dataclass(frozen=True)
class DeploymentConfig:
    canary_traffic: float
    holdout_rows: int
    latency_budget_ms_p95: float
    latency_probe_rows: int
    health_check: HealthCheck
    canary_analysis: CanaryAnalysis


@dataclass(frozen=True)
class CommitConfig:
    mode: str
    max_attempts: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    paths: tuple[str, ...]
    pr_branch_prefix: str


@dataclass(frozen=True)
class GitopsConfig:
    commit: CommitConfig


@dataclass(frozen=True)
class Owner:
    name: str
    contact: str | None


@dataclass(frozen=True)
class IntendedUse:
    primary_uses: tuple[str, ...]
    primary_users: tuple[str, ...]
    out_of_scope: tuple[str, ...]


@dataclass(frozen=True)
class Factor:
    name: str
    slice: str


@dataclass(frozen=True)
class Factors:
    relevant: tuple[Factor, ...]
    intersections: tuple[tuple[str, ...], ...]
    min_slice_rows: int
    max_intersection_cells: int
    evaluation: str | None


@dataclass(frozen=True)
class EthicalConsideration:
    name: str
    mitigation_strategy: str


@dataclass(frozen=True)
class Condition:
    text: str
    metric: str
    op: str
    threshold: Any


@dataclass(frozen=True)
class ModelCardConfig:
    owners: tuple[Owner, ...]
    license: str | None
    license_name: str | None
    hub_dataset: str | None
    references: tuple[str, ...]
    intended_use: IntendedUse
    factors: Factors
    limitations: tuple[str, ...]
    tradeoffs: tuple[str, ...]
    ethical_considerations: tuple[EthicalConsideration, ...]
    caveats_and_recommendations: tuple[str, ...]
    conditional_recommendations: tuple[Condition, ...]


@dataclass(frozen=True)
class PredictionLog:
    predictions: str
    feedback: str


@dataclass(frozen=True)
class MonitoringConfig:
    window_hours: float
    min_rows: int
    min_feedback_rows: int
    roles: tuple[str, ...]
    drift_threshold: float
    p_value_threshold: float
    accuracy_drop_threshold: float
    evidently_report: bool
    evidently_sample_rows: int
    history_points: int
    retrain_on_drift: bool
    on_malformed: str
    log: PredictionLog


@dataclass(frozen=True)
class StoreConfig:
    uri: str
    part_max_rows: int
    part_max_age_seconds: float
    buffer_max_rows: int
    group_commit_ms: float
    wal_dir: str
    feedback_lookback_days: float


@dataclass(frozen=True)
class ModelRetention:
    candidates: str
    production: str

    @property
    def candidates_days(self) -> int:
        return int(self.candidates.rstrip("d"))

    @property
    def production_days(self) -> int:
        return int(self.production.rstrip("d"))


@dataclass(frozen=True)
class Thresholds:
    accuracy_min: float
    ece_max: float
    drift_alert_threshold: float


@dataclass(frozen=True)
class DatasetsPolicy:
    refresh_interval_days: int
    minimum_samples: int


@dataclass(frozen=True)
class Schedule:
    default_schedule: str
    model_retention: ModelRetention
    performance_thresholds: Thresholds
    datasets: DatasetsPolicy


@dataclass(frozen=True)
class Split:
    test: float
    validation: float


@dataclass(frozen=True)
class Promotion:
    primary_metric_tolerance: float
    deploy_after_promotion: bool


@dataclass(frozen=True)
class Hpo:
    """/hpo: Optuna tuning (mlops/hpo.py, docs/training.md)."""

    enabled: bool
    trials: int | None
    seconds: float | None
    folds: int
    storage: str | None
    per_type: dict[str, Any]


@dataclass(frozen=True)
class Matrix:
    """/matrix: the training workflow as plan -> shards -> gate (docs/workflows.md)."""

    enabled: bool
    width: int


@dataclass(frozen=True)
class TrainingConfig:
    model_types: tuple[str, ...]
    seed: int
    primary_metric: str
    ece_bins: int
    bootstrap_iterations: int
    split: Split
    promotion: Promotion
    hpo: Hpo
    matrix: Matrix


@dataclass(frozen=True)
class Check:
    enabled: bool


@dataclass(frozen=True)
class FreshnessCheck:
    enabled: bool
    max_age_days: int | None
    timestamp_column: str | None
    when_unknown: str


@dataclass(frozen=True)
class SizeCheck:
    enabled: bool
    minimum_rows: int | None


@dataclass(frozen=True)
class BalanceCheck:
    enabled: bool
    minority_share_min: float


@dataclass(frozen=True)
class MissingCheck:
    enabled: bool
    max_share: float
    per_column: dict[str, float]


@dataclass(frozen=True)
class ContractCheck:
    enabled: bool
    path: str
    when_missing: str
    max_categories: int


@dataclass(frozen=True)
class DuplicatesCheck:
    enabled: bool
    max_share: float


@dataclass(frozen=True)
class LeakCheck:
    enabled: bool
    ignore_columns: tuple[str, ...]


@dataclass(frozen=True)
class ShiftCheck:
    enabled: bool
    action: str
    distance_threshold: float
    max_shifted_share: float | None
    sample_rows: int


@dataclass(frozen=True)
class PiiCheck:
    enabled: bool
    action: str
    kinds: tuple[str, ...]
    ignore_columns: tuple[str, ...]


@dataclass(frozen=True)
class ValidationConfig:
    alerts: Check
    freshness: FreshnessCheck
    size: SizeCheck
    class_balance: BalanceCheck
    missing_values: MissingCheck
    schema_contract: ContractCheck
    duplicates: DuplicatesCheck
    label_leak: LeakCheck
    distribution_shift: ShiftCheck
    pii: PiiCheck


# config/<file>.json -> (attribute of Config, its dataclass)
SECTIONS: dict[str, tuple[str, type]] = {
    "alerts": ("alerts", AlertsConfig),
    "dataset": ("dataset", DatasetConfig),
    "deployment": ("deployment", DeploymentConfig),
    "gitops": ("gitops", GitopsConfig),
    "model-card": ("model_card", ModelCardConfig),
    "monitoring": ("monitoring", MonitoringConfig),
    "store": ("store", StoreConfig),
    "training": ("training", TrainingConfig),
    "training-schedule": ("schedule", Schedule),
    "validation": ("validation", ValidationConfig),
}


@dataclass(frozen=True)
class Config:
    repo: Repo
    files: tuple[str, ...]  # the config/<name>.json files found and validated (absent ones take defaults)
    alerts: AlertsConfig
    dataset: DatasetConfig
    deployment: DeploymentConfig
    gitops: GitopsConfig
    model_card: ModelCardConfig | None
    monitoring: MonitoringConfig
    store: StoreConfig
    training: TrainingConfig
    schedule: Schedule
    validation: ValidationConfig


def _deref(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """A schema node with its local `$ref` (#/$defs/...) merged under its own keys."""
    ref = node.get("$ref")
    if not ref:
        return node
    target: Any = root
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return {**_deref(target, root), **{k: v for k, v in node.items() if k != "$ref"}}


def _unwrap_optional(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1 else tp


def _convert(tp: Any, node: dict[str, Any], value: Any, root: dict[str, Any]) -> Any:
    tp = _unwrap_optional(tp)
    if value is None:
        return None
    if dataclasses.is_dataclass(tp):
        return fill(tp, node, value, root)
    if typing.get_origin(tp) is tuple:
        item_tp = typing.get_args(tp)[0]
        items = _deref(node.get("items", {}), root)
        return tuple(_convert(item_tp, items, v, root) for v in value)
    if tp is float and not isinstance(value, bool):
        return float(value)
    if tp is dict or typing.get_origin(tp) is dict:
        return dict(value)
    return value


def fill(cls: type, schema: dict[str, Any], data: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """Build `cls` from schema-valid `data`, taking every absent value from the schema's `default`.

    An absent nested object is built from its own properties' defaults when the schema declares
    none of them required, and is None otherwise (dataset.json's optional `local`/`kaggle`).
    """
    root = schema if root is None else root
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        node = _deref(schema["properties"][f.name], root)
        if f.name in data:
            value = data[f.name]
        elif "default" in node:
            value = copy.deepcopy(node["default"])
        elif node.get("type") == "object" and "properties" in node and not node.get("required"):
            value = {}
        else:
            value = None
        values[f.name] = _convert(hints[f.name], node, value, root)
    return cls(**values)


def validate_file(repo: Repo, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate config/<name>.json against its schema; return its data and the schema."""
    path = repo.config_dir / f"{name}.json"
    rel = repo.rel(path)
    schema_path = repo.schemas_dir / f"{name}.schema.json"
    data = read_json(path, "config file", rel)
    if not schema_path.exists():
        raise BadInput(repo.rel(schema_path), f"no JSON Schema for {rel}", f"add config/schemas/{name}.schema.json")
    schema = read_json(schema_path, "schema")
    err = first_violation(schema, data)
    if err is not None:
        if err.validator == "additionalProperties":
            # A misspelt key would otherwise leave its setting at the default without a word.
            import difflib

            known = sorted(err.schema.get("properties", {}))
            key = sorted(set(err.instance) - set(known))[0]
            close = difflib.get_close_matches(key, known, n=1)
            raise BadInput(
                f"{rel}: {json_pointer([*err.absolute_path, key])}",
                f"unknown key (known here: {', '.join(known)})",
                f"rename it to {close[0]!r}" if close else "remove it, or add it to the schema if code reads it",
            )
        expected, found = describe_violation(err)
        raise BadInput(
            f"{rel}: {json_pointer(err.absolute_path)}",
            f"expected {expected}, found {found}",
            f"fix {rel} and run `mlops config check`",
        )
    return data, schema


def config_names(repo: Repo) -> list[str]:
    names = {p.name[: -len(".json")] for p in repo.config_dir.glob("*.json")}
    return sorted(names | set(REQUIRED))


# (name, lowest, highest, names) of the five POSIX cron fields GitHub Actions accepts.
CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)


def _cron_number(text: str, low: int, names: tuple[str, ...]) -> int:
    if text.lower() in names:
        return names.index(text.lower()) + low
    if not text.isdigit():
        raise ValueError(text)
    return int(text)


def check_cron(expression: str, where: str) -> None:
    """Refuse a cron expression with a field out of its range (`61 2 * * 0`, `0 2 * * 9`)."""
    parts = expression.split()
    if len(parts) != 5:
        raise BadInput(where, f"{expression!r} has {len(parts)} fields, not 5", "write minute hour day month weekday")
    for text, (name, low, high, names) in zip(parts, CRON_FIELDS, strict=True):
        for item in text.split(","):
            spec, _, step = item.partition("/")
            try:
                bounds = [] if spec == "*" else [_cron_number(v, low, names) for v in spec.split("-", 1)]
                if step and (not step.isdigit() or int(step) < 1):
                    raise ValueError(step)
            except ValueError:
                raise BadInput(where, f"{name} field {text!r} of {expression!r} is not cron syntax",
                               f"use numbers {low}-{high}, ranges a-b, lists a,b and steps */n") from None  # fmt: skip
            if any(not low <= b <= high for b in bounds) or bounds != sorted(bounds):
                raise BadInput(where, f"{name} {item!r} of {expression!r} is outside {low}-{high}",
                               f"use a value from {low} to {high}")  # fmt: skip


def load(repo: Repo) -> Config:
    """Load and validate every config file once; nothing else reads config/ directly."""
    raw: dict[str, dict[str, Any]] = {}
    schemas: dict[str, dict[str, Any]] = {}
    if not repo.config_dir.is_dir():
        raise BadInput(str(repo.config_dir), "no config/ folder here", "run from the repository root or pass --repo")
    for name in config_names(repo):
        raw[name], schemas[name] = validate_file(repo, name)
    check_cron(raw["training-schedule"]["default_schedule"], "config/training-schedule.json: /default_schedule")
    sections = {}
    for name, (attr, cls) in SECTIONS.items():
        if name == "model-card" and name not in raw:
            sections[attr] = None  # no team text: cards are written without those sections
            continue
        schema = schemas.get(name) or read_json(repo.schemas_dir / f"{name}.schema.json", "schema")
        sections[attr] = fill(cls, schema, raw.get(name, {}))
    check_factors(sections["model_card"], sections["dataset"])
    return Config(repo=repo, files=tuple(sorted(raw)), **sections)


def check_factors(card: ModelCardConfig | None, dataset: DatasetConfig) -> None:
    """Every factor the card declares must be evaluated: it names a slice column of config/dataset.json."""
    if card is None:
        return
    if card.license == "other" and not card.license_name:
        raise BadInput("config/model-card.json: /license", "is `other` without /license_name",
                       "add /license_name (the Hub's name for the licence), or use an SPDX id")  # fmt: skip
    slices = tuple(dataset.slices)
    named = ", ".join(slices) or "none"
    fix = "add the column to /slices in config/dataset.json, or point the factor at one of them"
    for i, factor in enumerate(card.factors.relevant):
        if factor.slice not in slices:
            raise BadInput(f"config/model-card.json: /factors/relevant/{i}/slice",
                           f"factor {factor.name!r} names {factor.slice!r}, not a slice column (slices: {named})",
                           fix)  # fmt: skip
    for i, pair in enumerate(card.factors.intersections):
        for j, column in enumerate(pair):
            if column not in slices or column in pair[:j]:
                raise BadInput(f"config/model-card.json: /factors/intersections/{i}/{j}",
                               f"{column!r} is not a distinct slice column (slices: {named})", fix)  # fmt: skip


def resolve(repo: Repo, relative: str) -> Path:
    path = Path(relative)
    return path if path.is_absolute() else repo.root / path
