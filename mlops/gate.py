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


# ---- a gate record as an alert ------------------------------------------------------------------


def _metric_map(value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and isinstance(value.get("metrics"), dict):
        return value["metrics"]
    return value if isinstance(value, dict) else {}


def alert_from_gate(cfg: Any, path: Any) -> Any:
    """The regression alert (an `mlops.alerts.Alert`) for the gate record at `path` with regression=true,
    None when the gate saw no regression (`mlops alerts raise --from-gate`)."""
    from mlops import jsonio
    from mlops.alerts.model import Alert, make_fingerprint
    from mlops.errors import BadInput

    repo = cfg.repo
    where = repo.rel(path)
    gate = jsonio.read_json(path, "gate record")
    if not isinstance(gate, dict):
        raise BadInput(where, "a gate record must be a JSON object", "pass metadata/gates/<version>.json")
    if not isinstance(gate.get("regression"), bool):
        raise BadInput(
            f"{where}: /regression",
            f"expected true or false, found {gate.get('regression')!r}",
            "pass a gate record written by `mlops train`",
        )
    if not gate["regression"]:
        return None
    version = gate.get("version")
    if not isinstance(version, str) or not version:
        raise BadInput(f"{where}: /version", "missing", "pass a gate record written by `mlops train`")
    metric = gate.get("primary_metric") or cfg.training.primary_metric
    if not isinstance(metric, str):
        raise BadInput(f"{where}: /primary_metric", "expected a metric name", "fix the gate record")
    candidate = _metric_map(gate.get("candidate"))
    champion_block = gate.get("champion") if isinstance(gate.get("champion"), dict) else {}
    champion = _metric_map(champion_block)
    cand_value, champ_value = candidate.get(metric), champion.get(metric)
    tolerance = gate.get("tolerance", cfg.training.promotion.primary_metric_tolerance)
    facts: dict[str, object] = {
        "candidate version": version,
        "model type": gate.get("model_type", "unknown"),
        "champion version": champion_block.get("version", "none"),
        f"candidate {metric}": cand_value,
        f"champion {metric}": champ_value,
    }
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (cand_value, champ_value))
    if numeric:
        facts[f"difference ({metric})"] = round(float(cand_value) - float(champ_value), 6)
    facts["tolerance"] = tolerance
    for name, value in sorted(candidate.items()):
        if name != metric and isinstance(value, (int, float)) and not isinstance(value, bool):
            facts[f"candidate {name}"] = value
    links = {"gate record": where}
    card = repo.cards / f"{version}.md"
    if card.exists():
        links["model card"] = repo.rel(card)
    drop = f" (a drop of {float(champ_value) - float(cand_value):.4f})" if numeric else ""
    summary = (
        f"Training produced candidate `{version}` ({gate.get('model_type', 'unknown')}) whose {metric} is "
        f"{cand_value if cand_value is not None else 'unknown'} against the champion's "
        f"{champ_value if champ_value is not None else 'unknown'}{drop}, beyond the tolerance of {tolerance}. "
        "The candidate was not promoted; the champion keeps serving. Check the data and features of this run."
    )
    alert = Alert(
        kind="regression",
        title=f"Model regression: training candidates fall below the champion on {metric}",
        summary=summary,
        facts=facts,
        evidence=gate,
        fingerprint=make_fingerprint("regression", cfg.dataset.name, metric),
        severity="warning",
        links=links,
    )
    alert.validate(where)
    return alert
