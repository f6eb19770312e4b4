"""config/validation.json as one typed value, and the paths it names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.config import Config, resolve
from mlops.validation.results import CHECKS


@dataclass(frozen=True)
class Settings:
    """config/validation.json with the schema's defaults and the seed's thresholds applied."""

    enabled: dict[str, bool]
    max_age_days: int
    timestamp_column: str | None
    when_unknown: str
    minimum_rows: int
    minority_share_min: float
    missing_max_share: float
    missing_per_column: dict[str, float]
    contract_path: str
    contract_when_missing: str
    max_categories: int
    duplicates_max_share: float
    leak_ignore: tuple[str, ...]
    shift_action: str
    shift_distance: float
    shift_max_share: float
    sample_rows: int
    pii_action: str
    pii_kinds: tuple[str, ...]
    pii_ignore: tuple[str, ...]
    alerts: bool

    @classmethod
    def from_config(cls, cfg: Config) -> Settings:
        from mlops.pii import KINDS

        raw = cfg.section("validation")

        def sec(name: str) -> dict[str, Any]:
            return raw.get(name, {})

        return cls(
            enabled={name: bool(sec(name).get("enabled", True)) for name in CHECKS},
            max_age_days=int(sec("freshness").get("max_age_days", cfg.schedule.datasets.refresh_interval_days)),
            timestamp_column=sec("freshness").get("timestamp_column", cfg.dataset.timestamp_column),
            when_unknown=sec("freshness").get("when_unknown", "warn"),
            minimum_rows=int(sec("size").get("minimum_rows", cfg.schedule.datasets.minimum_samples)),
            minority_share_min=float(sec("class_balance").get("minority_share_min", 0.05)),
            missing_max_share=float(sec("missing_values").get("max_share", 0.2)),
            missing_per_column=dict(sec("missing_values").get("per_column", {})),
            contract_path=sec("schema_contract").get("path", "datasets/{name}.schema.json"),
            contract_when_missing=sec("schema_contract").get("when_missing", "warn"),
            max_categories=int(sec("schema_contract").get("max_categories", 50)),
            duplicates_max_share=float(sec("duplicates").get("max_share", 0.01)),
            leak_ignore=tuple(sec("label_leak").get("ignore_columns", ())),
            shift_action=sec("distribution_shift").get("action", "warn"),
            shift_distance=float(sec("distribution_shift").get("distance_threshold", 0.1)),
            shift_max_share=float(
                sec("distribution_shift").get(
                    "max_shifted_share", cfg.schedule.performance_thresholds.drift_alert_threshold
                )
            ),
            sample_rows=int(sec("distribution_shift").get("sample_rows", 50_000)),
            pii_action=sec("pii").get("action", "block"),
            pii_kinds=tuple(sec("pii").get("kinds", KINDS)),
            pii_ignore=tuple(sec("pii").get("ignore_columns", ())),
            alerts=bool(raw.get("alerts", {}).get("enabled", True)),
        )


def contract_path(cfg: Config, settings: Settings | None = None) -> Path:
    settings = settings or Settings.from_config(cfg)
    return resolve(cfg.repo, settings.contract_path.replace("{name}", cfg.dataset.name))


def reports_dir(cfg: Config) -> Path:
    return cfg.repo.reports / "validation" / cfg.dataset.name
