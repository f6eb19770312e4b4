"""The promotion gate: absolute thresholds from config and the comparison with the champion.

A candidate passes when accuracy >= accuracy_min, ECE <= ece_max and, when a comparable
champion exists, candidate[primary] >= champion[primary] - tolerance (both measured on the
same test split in the same run). Passing is necessary, not sufficient, for promotion: see
`decide_promotion`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class GateResult:
    passed: bool
    checks: list[dict[str, Any]]
    reasons: list[str]
    regression: bool
    champion_delta: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def evaluate(
    metrics: dict[str, Any],
    *,
    accuracy_min: float,
    ece_max: float,
    primary_metric: str,
    tolerance: float,
    champion_metrics: dict[str, Any] | None,
) -> GateResult:
    checks = [
        _check("accuracy_min", metrics["accuracy"], ">=", accuracy_min),
        _check("ece_max", metrics["ece"], "<=", ece_max),
    ]
    regression = False
    delta = None
    if champion_metrics is not None and champion_metrics.get(primary_metric) is not None:
        floor = champion_metrics[primary_metric] - tolerance
        check = _check(f"champion_{primary_metric}", metrics[primary_metric], ">=", floor)
        check["champion_value"] = champion_metrics[primary_metric]
        check["tolerance"] = tolerance
        checks.append(check)
        delta = metrics[primary_metric] - champion_metrics[primary_metric]
        regression = not check["passed"]
    reasons = [c["reason"] for c in checks if not c["passed"]]
    return GateResult(all(c["passed"] for c in checks), checks, reasons, regression, delta)


def _check(name: str, value: float, op: str, threshold: float) -> dict[str, Any]:
    passed = value >= threshold if op == ">=" else value <= threshold
    label = name.replace("champion_", "champion-relative ")
    return {
        "name": name,
        "value": value,
        "op": op,
        "threshold": threshold,
        "passed": bool(passed),
        "reason": f"{label}: {value:.4f} {'meets' if passed else 'fails'} {op} {threshold:.4f}",
    }


def decide_promotion(
    best: dict[str, Any] | None,
    *,
    champion: dict[str, Any] | None,
    primary_metric: str,
    force: bool,
) -> tuple[bool, str]:
    """Promote the best passing candidate when there is no champion, the data changed, it is
    strictly better on the primary metric, or --force-retrain asks to replace an equal champion."""
    if best is None:
        return False, "no candidate passed the gate"
    if champion is None:
        return True, "no current model: the best passing candidate becomes the first champion"
    if not champion.get("comparable", True):
        return True, f"champion not comparable ({champion.get('reason')}); candidate passed the absolute thresholds"
    mine, theirs = best["metrics"][primary_metric], champion["metrics"][primary_metric]
    if mine > theirs:
        return True, f"{primary_metric} {mine:.4f} beats the champion's {theirs:.4f}"
    if champion.get("dataset_sha256") != best.get("dataset_sha256"):
        return True, f"new data; {primary_metric} {mine:.4f} within tolerance of the champion's {theirs:.4f}"
    if force:
        return True, "--force-retrain: equal champion on the same data replaced"
    return False, f"no improvement on the same data ({primary_metric} {mine:.4f} vs champion {theirs:.4f})"
