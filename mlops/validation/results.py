"""What a validation produces: one CheckResult per check and the ValidationResult around them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHECKS = (
    "freshness",
    "size",
    "class_balance",
    "missing_values",
    "schema_contract",
    "duplicates",
    "label_leak",
    "distribution_shift",
    "pii",
)
PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
MAX_ROWS_SHOWN = 5


@dataclass
class CheckResult:
    name: str
    status: str  # pass | fail | warn | skip
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "summary": self.summary, "details": self.details}


@dataclass
class ValidationResult:
    dataset: str
    where: str
    sha256: str
    source: str
    rows: int
    columns: int
    validated_at: str
    checks: list[CheckResult]
    seconds: float = 0.0
    provenance: dict[str, Any] = field(default_factory=dict)
    report_path: Path | None = None
    markdown_path: Path | None = None
    snapshot: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    @property
    def failures(self) -> list[str]:
        return [f"{c.name}: {c.summary}" for c in self.checks if c.status == FAIL]

    @property
    def warnings(self) -> list[str]:
        return [f"{c.name}: {c.summary}" for c in self.checks if c.status == WARN]

    @property
    def stale(self) -> bool:
        return any(c.name == "freshness" and c.details.get("stale") for c in self.checks)

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "path": self.where,
            "sha256": self.sha256,
            "source": self.source,
            "provenance": self.provenance,
            "rows": self.rows,
            "columns": self.columns,
            "validated_at": self.validated_at,
            "seconds": round(self.seconds, 3),
            "passed": self.passed,
            "stale": self.stale,
            "failures": self.failures,
            "warnings": self.warnings,
            "checks": [c.as_dict() for c in self.checks],
        }
