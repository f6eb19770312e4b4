"""Canary analysis as a pure function: logged rows and tolerances in, statistics, checks and a decision out.

`decide` reads no file and changes nothing; `mlops.deploy.actions.analyze` reads the window of the
prediction log, feedback and serving errors, calls it, and records the outcome. Decisions:
**wait** (fewer than `min_requests` per role), **promote** (no check failed; a check without data
is skipped) or **rollback** (a check failed). See docs/deployment.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mlops import gha
from mlops.config import CanaryAnalysis
from mlops.deploy.gates import p95


@dataclass(frozen=True)
class Analysis:
    stats: dict[str, dict[str, Any]]  # per role: requests, errors, rates, latency, feedback, accuracy
    checks: list[dict[str, Any]]  # name, value, limit, passed (None: skipped), note
    decision: str  # "wait", "promote" or "rollback"

    @property
    def failed(self) -> list[str]:
        return [c["name"] for c in self.checks if c["passed"] is False]


def tolerances(tol: CanaryAnalysis) -> dict[str, Any]:
    """The tolerances as the analysis record writes them."""
    return dataclasses.asdict(tol)


def role_stats(records: list[dict], errors: int, labels: dict[str, Any]) -> dict[str, Any]:
    """One role's numbers over the window: its logged predictions, its serving errors, its labels."""
    scores = [float(r["score"]) for r in records]
    # Latency only from single-row requests: a batch's per-row time depends on the batch's size.
    lat = [
        float(r["latency_ms"])
        for r in records
        if r.get("batch_size") == 1 and isinstance(r.get("latency_ms"), (int, float))
    ]
    labelled = [(int(r["prediction"]), int(labels[r["request_id"]])) for r in records if r["request_id"] in labels]
    n = len(records)
    return {
        "requests": n,
        "errors": errors,
        "error_rate": errors / (n + errors) if n + errors else 0.0,
        "positive_rate": sum(int(r["prediction"]) for r in records) / n if n else None,
        "score_mean": sum(scores) / n if n else None,
        "latency_ms_p95": p95(lat) if lat else None,
        "feedback": len(labelled),
        "accuracy": sum(p == y for p, y in labelled) / len(labelled) if labelled else None,
    }


def by_role(predictions: list[dict], canary: str, production: str) -> dict[str, list[dict]]:
    """The window's records of the canary version as canary and of production as production.

    A production answer that stood in for a failing canary (`fallback_from`) is the canary's error,
    not production's traffic.
    """
    return {
        "canary": [r for r in predictions if r["role"] == "canary" and r["model_version"] == canary],
        "production": [
            r
            for r in predictions
            if r["role"] == "production" and r["model_version"] == production and not r.get("fallback_from")
        ],
    }


def ks_statistic(a: list[float], b: list[float]) -> float:
    """Two-sample Kolmogorov-Smirnov distance (scipy's; the p-value, unused, is the cheap asymptotic one)."""
    from scipy.stats import ks_2samp

    return float(ks_2samp(a, b, method="asymp").statistic)


def _check(name: str, value: Any, limit: Any, passed: bool | None, note: str = "") -> dict[str, Any]:
    return {"name": name, "value": value, "limit": limit, "passed": passed, "note": note}


def _within(value: float, limit: float, excused: bool) -> bool | None:
    """Passed, failed, or None (not counted) when an outside value is excused by better accuracy."""
    if value <= limit:
        return True
    return None if excused else False


def decide(
    predictions: list[dict],
    feedback: list[dict],
    errors: list[dict],
    canary: str,
    production: str,
    tol: CanaryAnalysis,
) -> Analysis:
    """Compare the canary version with production on logged rows; pure (reads and writes nothing)."""
    labels = {str(f["request_id"]): f["label"] for f in feedback}
    rows = by_role(predictions, canary, production)
    versions = {"canary": canary, "production": production}
    stats = {}
    for role, records in rows.items():
        count = sum(1 for e in errors if e.get("role") == role and e.get("model_version") == versions[role])
        stats[role] = role_stats(records, count, labels)
    c, p = stats["canary"], stats["production"]
    enough = c["requests"] >= tol.min_requests and p["requests"] >= tol.min_requests
    checks = [_check("requests", {"canary": c["requests"], "production": p["requests"]}, tol.min_requests, enough)]
    if not enough:
        return Analysis(stats, checks, "wait")
    labelled = c["feedback"] >= tol.min_feedback and p["feedback"] >= tol.min_feedback
    drop = p["accuracy"] - c["accuracy"] if labelled else None
    # Score and positive-rate agreement stand in for labels. When the labels show the canary clearly more
    # accurate (production has drifted: the reason for retraining), differing from production is the point.
    better = drop is not None and -drop > tol.max_accuracy_drop
    note = f"differs from production, but the labels show the canary {-drop:.3f} more accurate" if better else ""
    ks = ks_statistic([r["score"] for r in rows["canary"]], [r["score"] for r in rows["production"]])
    checks.append(_check("score_ks", round(ks, 6), tol.max_score_ks, _within(ks, tol.max_score_ks, better), note))
    delta = abs(c["positive_rate"] - p["positive_rate"])
    checks.append(
        _check(
            "positive_rate_delta",
            round(delta, 6),
            tol.max_positive_rate_delta,
            _within(delta, tol.max_positive_rate_delta, better),
            note,
        )  # fmt: skip
    )
    err = c["error_rate"] - p["error_rate"]
    checks.append(_check("error_rate_delta", round(err, 6), tol.max_error_rate_delta, err <= tol.max_error_rate_delta))
    if c["latency_ms_p95"] is not None and p["latency_ms_p95"]:
        ratio = c["latency_ms_p95"] / p["latency_ms_p95"]
        checks.append(_check("latency_ratio", round(ratio, 4), tol.max_latency_ratio, ratio <= tol.max_latency_ratio))
    else:
        checks.append(
            _check("latency_ratio", None, tol.max_latency_ratio, None, "no single-row requests logged for both roles")
        )
    if drop is not None:
        checks.append(_check("accuracy_drop", round(drop, 6), tol.max_accuracy_drop, drop <= tol.max_accuracy_drop))
    else:
        note = f"fewer than {tol.min_feedback} labelled predictions per role"
        checks.append(_check("accuracy_drop", None, tol.max_accuracy_drop, None, note))
    decision = "promote" if all(x["passed"] is not False for x in checks) else "rollback"
    return Analysis(stats, checks, decision)


def analysis_markdown(record: dict[str, Any]) -> str:
    rows = [
        (x["name"], str(x["value"]), str(x["limit"]), {True: "ok", False: "FAILED", None: "skipped"}[x["passed"]])
        for x in record["checks"]
    ]
    head = (
        f"### Canary analysis: `{record['canary']['version']}` — {record['decision']}"
        f"{' (applied)' if record['applied'] else ''}\n\n"
    )
    return head + gha.md_table(["check", "value", "limit", "result"], rows)
