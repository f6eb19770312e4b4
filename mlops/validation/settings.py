"""What config/validation.json leaves to other files, and the paths it names.

The checks read their own typed section, `cfg.validation.<check>` (mlops.config, defaults from
config/schemas/validation.schema.json). Four thresholds that the schema leaves unset fall back
to the files that already hold them: the data's age and size limits and the drift share to
training-schedule.json, the timestamp column to dataset.json.
"""

from __future__ import annotations

from pathlib import Path

from mlops.config import Config, resolve


def max_age_days(cfg: Config) -> int:
    value = cfg.validation.freshness.max_age_days
    return cfg.schedule.datasets.refresh_interval_days if value is None else value


def timestamp_column(cfg: Config) -> str | None:
    value = cfg.validation.freshness.timestamp_column
    return cfg.dataset.timestamp_column if value is None else value


def minimum_rows(cfg: Config) -> int:
    value = cfg.validation.size.minimum_rows
    return cfg.schedule.datasets.minimum_samples if value is None else value


def max_shifted_share(cfg: Config) -> float:
    value = cfg.validation.distribution_shift.max_shifted_share
    return cfg.schedule.performance_thresholds.drift_alert_threshold if value is None else value


def contract_path(cfg: Config) -> Path:
    return resolve(cfg.repo, cfg.validation.schema_contract.path.replace("{name}", cfg.dataset.name))


def reports_dir(cfg: Config) -> Path:
    return cfg.repo.reports / "validation" / cfg.dataset.name
