"""Running the checks on one dataset (`validate`) and what `mlops train` calls first."""

from __future__ import annotations

import time
from typing import Any

from mlops import gha, jsonio
from mlops.config import Config
from mlops.validation.checks import check_class_balance, check_freshness, check_missing, check_pii, check_size
from mlops.validation.columns import ColumnMemo
from mlops.validation.contract import check_contract
from mlops.validation.duplicates import check_duplicates
from mlops.validation.leak import check_label_leak
from mlops.validation.report import write_reports
from mlops.validation.results import CHECKS, FAIL, SKIP, WARN, CheckResult, ValidationResult
from mlops.validation.shift import _snapshot_and_sample, check_shift


def validate(cfg: Config, dataset: Any, table: Any = None) -> ValidationResult:
    """Run every enabled check on a dataset file (read here unless `table` is given); writes nothing."""
    from mlops import data

    started = time.perf_counter()
    where = cfg.repo.rel(dataset.path)
    if table is None:
        table = data.read_table(dataset.path, where)

    def shift() -> CheckResult:
        snap, sample = _snapshot_and_sample(cfg, table, dataset.sha256)
        holder["snapshot"] = snap
        return check_shift(cfg, snap, sample)

    holder: dict[str, Any] = {"snapshot": None}
    memo = ColumnMemo()  # pc.unique of text columns, shared by the contract and PII checks
    plan = {
        "freshness": lambda: check_freshness(cfg, dataset, table),
        "size": lambda: check_size(cfg, table),
        "class_balance": lambda: check_class_balance(cfg, table),
        "missing_values": lambda: check_missing(cfg, table),
        "schema_contract": lambda: check_contract(cfg, table, memo),
        "duplicates": lambda: check_duplicates(cfg, table),
        "label_leak": lambda: check_label_leak(cfg, table),
        "distribution_shift": shift,
        "pii": lambda: check_pii(cfg, table, memo),
    }
    disabled = "disabled in config/validation.json"
    checks = [
        plan[name]() if getattr(cfg.validation, name).enabled else CheckResult(name, SKIP, disabled) for name in CHECKS
    ]
    snapshot = holder["snapshot"]
    return ValidationResult(
        dataset=cfg.dataset.name,
        where=where,
        sha256=dataset.sha256,
        source=dataset.source,
        rows=table.num_rows,
        columns=table.num_columns,
        validated_at=jsonio.format_utc(jsonio.utc_now()),
        checks=checks,
        seconds=time.perf_counter() - started,
        provenance={
            "fetched_at": getattr(dataset, "fetched_at", None),
            "updated_at": getattr(dataset, "updated_at", None),
            "detail": getattr(dataset, "detail", ""),
            "fallback_reason": getattr(dataset, "fallback_reason", None),
        },
        snapshot=snapshot,
    )


def validate_for_training(cfg: Config, dataset_file: Any, table: Any = None) -> ValidationResult:
    """Validate the data `mlops train` is about to use and record the report; the caller decides to refuse."""
    result = write_reports(cfg, validate(cfg, dataset_file, table))
    for c in result.checks:
        if c.status in (FAIL, WARN):
            gha.warn(f"data validation: {c.name}: {c.summary}")
    return result
