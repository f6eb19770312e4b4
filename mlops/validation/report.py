"""Recording a validation: the JSON and Markdown reports, the snapshot profile, the audit
event, and the alerts raised for failing checks (resolved when they pass again)."""

from __future__ import annotations

from typing import Any

from mlops import gha, jsonio
from mlops.config import Config
from mlops.errors import BadInput
from mlops.validation.results import FAIL, PASS, SKIP, WARN, ValidationResult
from mlops.validation.settings import reports_dir
from mlops.validation.shift import SNAPSHOT_NAME

OPEN_ALERTS_NAME = "open-alerts.json"


def render_markdown(result: ValidationResult) -> str:
    icon = {PASS: "✅ pass", FAIL: "❌ fail", WARN: "⚠️ warn", SKIP: "➖ skip"}
    verdict = "passed" if result.passed else "FAILED"
    lines = [
        f"## Data validation {verdict}: `{result.dataset}`",
        "",
        f"`{result.where}` · {result.source} · {result.rows} rows × {result.columns} columns · "
        f"sha256 `{result.sha256[:12]}` · {result.validated_at} · {result.seconds:.2f} s",
        "",
        gha.md_table(["check", "status", "result"], [(c.name, icon[c.status], c.summary) for c in result.checks]),
    ]
    for title, headers, rows in _detail_tables(result):
        if rows:
            lines += ["", f"### {title}", "", gha.md_table(headers, rows)]
    return "\n".join(lines) + "\n"


def _detail_tables(result: ValidationResult) -> list[tuple[str, list[str], list[tuple[Any, ...]]]]:
    """The tables below the summary, each shown when it has rows: contract violations (the first
    50), personal data found, columns over their missing-value limit."""

    def detail(check: str, key: str) -> Any:
        c = result.check(check)
        return c.details.get(key) if c else None

    def first_rows(rows: list[int]) -> str:
        return ", ".join(map(str, rows))

    violations = (detail("schema_contract", "violations") or [])[:50]
    findings = detail("pii", "findings") or []
    failing = detail("missing_values", "failing") or {}
    return [
        (
            "Schema contract violations",
            ["column", "problem", "rows affected", "first rows"],
            [(v["column"], v["problem"], v.get("count", ""), first_rows(v.get("rows", []))) for v in violations],
        ),
        (
            "Personal data (counts only, never values)",
            ["column", "kind", "cells", "first rows"],
            [(f["column"], f["kind"], f["count"], first_rows(f["rows"])) for f in findings],
        ),
        (
            "Columns over their missing-value limit",
            ["column", "missing", "share", "limit"],
            [(c, v["missing"], v["share"], v["limit"]) for c, v in failing.items()],
        ),
    ]


def write_reports(cfg: Config, result: ValidationResult, *, audit: bool = True) -> ValidationResult:
    """JSON + Markdown report, the snapshot profile when the data passed, and a dataset_validated audit event."""
    folder = reports_dir(cfg)
    stamp = result.validated_at.replace("-", "").replace(":", "")
    base = folder / f"{stamp}-{result.sha256[:12]}"
    result.report_path = base.with_suffix(".json")
    result.markdown_path = base.with_suffix(".md")
    jsonio.write_json(result.report_path, result.as_dict())
    jsonio.write_text(result.markdown_path, render_markdown(result))
    if result.passed and result.snapshot is not None:
        jsonio.write_json(folder / SNAPSHOT_NAME, {**result.snapshot, "validated_at": result.validated_at})
    if audit:
        from mlops import audit as audit_log

        audit_log.record(
            cfg.repo,
            "dataset_validated",
            {
                "dataset": result.dataset,
                "path": result.where,
                "sha256": result.sha256,
                "source": result.source,
                "rows": result.rows,
                "passed": result.passed,
                "stale": result.stale,
                "failed_checks": [c.name for c in result.checks if c.status == FAIL],
                "report": cfg.repo.rel(result.report_path),
            },
        )
    return result


def open_alerts(cfg: Config) -> dict[str, Any]:
    """The record of the alerts this stage opened ({fingerprint: {...}}), checked."""
    path = reports_dir(cfg) / OPEN_ALERTS_NAME
    state = jsonio.read_json(path, "open alerts", cfg.repo.rel(path)) if path.exists() else {}
    if not isinstance(state, dict) or not all(isinstance(v, dict) for v in state.values()):
        raise BadInput(cfg.repo.rel(path), "expected an object of open alerts by fingerprint", "fix or delete it")
    return state


def raise_alerts(cfg: Config, result: ValidationResult, state: dict[str, Any]) -> list[dict[str, Any]]:
    """One alert per failing check (fingerprint: kind, dataset, check); resolve the ones that pass again."""
    from mlops import alerts

    state_path = reports_dir(cfg) / OPEN_ALERTS_NAME
    report = cfg.repo.rel(result.report_path) if result.report_path else ""
    out = []
    for c in result.checks:
        kind = "stale-dataset" if c.name == "freshness" and c.details.get("stale") else "data-quality"
        fingerprint = alerts.make_fingerprint("data-quality", result.dataset, c.name)
        if c.status == FAIL:
            title = (
                f"Stale dataset: {result.dataset}"
                if kind == "stale-dataset"
                else f"Data quality: {c.name.replace('_', ' ')} check fails for {result.dataset}"
            )
            facts: dict[str, object] = {"check": c.name, "dataset": result.dataset, "sha256": result.sha256[:12],
                                        "rows": result.rows, "source": result.source}  # fmt: skip
            facts.update({k: v for k, v in c.details.items() if isinstance(v, (int, float, str, bool))})
            alert = alerts.Alert(
                kind=kind,
                title=title,
                summary=f"`{result.where}` failed the {c.name} check: {c.summary}.",
                facts=facts,
                evidence=c.as_dict(),
                fingerprint=fingerprint,
                severity="critical" if c.name == "pii" else "warning",
                links={"validation report": report} if report else {},
            )
            delivered = alerts.raise_alert(cfg, alert)
            state[fingerprint] = {
                "check": c.name,
                "since": state.get(fingerprint, {}).get("since", result.validated_at),
            }
            out.append(delivered)
        elif c.status == PASS and fingerprint in state:
            out.append(alerts.resolve(cfg, fingerprint, f"the {c.name} check passes again on {result.sha256[:12]}"))
            del state[fingerprint]
    if state or state_path.exists():
        jsonio.write_json(state_path, state)
    return out
