"""Dataset validation: freshness, size, class balance, missing values, schema contract,
duplicates, label leaks, distribution shift and PII, on one pyarrow Table.

`validate()` computes and writes nothing; `write_reports()` records the outcome (JSON +
Markdown under metadata/reports/validation/<dataset>/, the snapshot profile of the last
validated data, an audit event); the CLI (mlops/commands/data_cmd.py) adds alerts, the step
summary and $GITHUB_OUTPUT; `validate_for_training()` is what `mlops train` calls.

Every check works column-at-a-time with pyarrow.compute; the only row-wise work (duplicate
rows) hashes columns with numpy and confirms the few colliding rows exactly. See
docs/validation.md for the rules.

Where each part lives:
- `results`: CheckResult, ValidationResult and the status names;
- `settings`: the thresholds config/validation.json leaves to other files, the contract and report paths
  (each check reads its own typed section, `cfg.validation.<check>`);
- `columns`: column helpers shared by the checks;
- `checks` (freshness, size, class balance, missing values, PII), `contract`, `duplicates`,
  `leak`, `shift`: the checks;
- `run`: `validate` and `validate_for_training`;
- `report`: the reports, the audit event and the alerts.
"""

from __future__ import annotations

from mlops.validation.checks import check_class_balance, check_freshness, check_missing, check_pii, check_size
from mlops.validation.columns import (
    ColumnMemo,
    _distinct_count,
    _min_max,
    _nan_count,
    _sorted_floats,
    _take_sorted,
    type_name,
)
from mlops.validation.contract import check_contract, infer_contract, load_contract
from mlops.validation.duplicates import _repeated_rows, _row_hashes, check_duplicates
from mlops.validation.leak import _distinct_over_half, _pure, check_label_leak
from mlops.validation.report import open_alerts, raise_alerts, render_markdown, write_reports
from mlops.validation.results import CHECKS, FAIL, PASS, SKIP, WARN, CheckResult, ValidationResult
from mlops.validation.run import validate, validate_for_training
from mlops.validation.settings import contract_path, reports_dir
from mlops.validation.shift import SNAPSHOT_LEVELS, SNAPSHOT_NAME, _snapshot_and_sample, check_shift

__all__ = [
    "CHECKS",
    "FAIL",
    "PASS",
    "SKIP",
    "SNAPSHOT_LEVELS",
    "SNAPSHOT_NAME",
    "WARN",
    "CheckResult",
    "ColumnMemo",
    "ValidationResult",
    "_distinct_count",
    "_distinct_over_half",
    "_min_max",
    "_nan_count",
    "_pure",
    "_repeated_rows",
    "_row_hashes",
    "_snapshot_and_sample",
    "_sorted_floats",
    "_take_sorted",
    "check_class_balance",
    "check_contract",
    "check_duplicates",
    "check_freshness",
    "check_label_leak",
    "check_missing",
    "check_pii",
    "check_shift",
    "check_size",
    "contract_path",
    "infer_contract",
    "load_contract",
    "open_alerts",
    "raise_alerts",
    "render_markdown",
    "reports_dir",
    "type_name",
    "validate",
    "validate_for_training",
    "write_reports",
]
