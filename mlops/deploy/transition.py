"""One way to change the deployment: record, then state, then audit event, champion, alert and summary.

Every deploy, refusal, rollback, automatic rollback and canary promotion goes through `transition`,
so the order of writes is the same everywhere: the gate/deploy record first, then the state file,
then the audit event. A crash between the state and the audit event leaves a change the audit log
does not mention (the state's own history still records it); the other order would leave the audit
log claiming a change that never happened. Moving MLflow's champion alias, raising the alert and
writing the step summary follow; none of them can undo the change. See docs/deployment.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops import gha, jsonio
from mlops.config import Config
from mlops.deployment_state import write_state
from mlops.repo import Repo

KEEP: Any = object()  # `state=KEEP`: this transition leaves the state file as it is


@dataclass
class Record:
    """What a change records: `data` is written to `path` (when there is one) and returned to the caller."""

    path: Path | None
    data: dict[str, Any] = field(default_factory=dict)

    def write(self) -> None:
        if self.path is not None:
            jsonio.write_json(self.path, self.data)


@dataclass(frozen=True)
class Problem:
    """A `deployment-failure` alert: title, summary, facts, evidence, fingerprint key and links."""

    title: str
    summary: str
    facts: dict[str, Any]
    evidence: dict[str, Any]
    key: str
    links: dict[str, str]


def record_path(repo: Repo, kind: str, version: str) -> Path:
    """metadata/deployments/<time>-<kind>-<version>.json, numbered when that name is taken."""
    stamp = jsonio.format_utc(jsonio.utc_now()).replace("-", "").replace(":", "")
    folder = repo.metadata / "deployments"
    path = folder / f"{stamp}-{kind}-{version}.json"
    n = 2
    while path.exists():
        path = folder / f"{stamp}-{kind}-{version}-{n}.json"
        n += 1
    return path


def default_actor(name: str | None) -> str:
    """Who changes the deployment: the explicit name, else GITHUB_ACTOR, else the local user."""
    from mlops import audit

    return audit.default_actor(name)


def transition(
    cfg: Config,
    who: str,
    *,
    record: Record | None = None,
    state: dict[str, Any] | None = KEEP,
    event: tuple[str, dict[str, Any]] | None = None,
    champion: str | None = None,
    problem: Problem | None = None,
    summary: Callable[[dict[str, Any]], str] | None = None,
) -> dict[str, Any] | None:
    """Apply one change in the fixed order; returns what raising the alert returned (None without one).

    record: written first; state: the new state (None removes the file, KEEP leaves it);
    event: (audit event type, payload); champion: a version to point MLflow's alias at, noted in the
    record as `mlflow_champion`; problem: the alert to raise; summary: the step summary of the record.
    """
    if record is not None:
        record.write()
    if state is not KEEP:
        write_state(cfg.repo, state)
    if event is not None:
        from mlops import audit
        from mlops.audit.verify import state_sha256

        payload = event[1]
        if state is not KEEP:
            # The state this event wrote (null: removed), so `mlops audit verify` and a follower
            # (mlops.reconcile) can tell it from a hand edit of the file.
            payload = {**payload, "state_sha256": state_sha256(state)}
        audit.record(cfg.repo, event[0], payload, actor=who)
    if champion is not None and record is not None:
        record.data["mlflow_champion"] = move_champion(cfg, champion)
        record.write()
    sent = None
    if problem is not None:
        sent = raise_problem(cfg, problem)
    if summary is not None and record is not None:
        gha.add_summary(summary(record.data))
    return sent


def raise_problem(cfg: Config, problem: Problem) -> dict[str, Any]:
    from mlops import alerts

    alert = alerts.Alert(
        kind="deployment-failure",
        title=problem.title,
        summary=problem.summary,
        facts=problem.facts,
        evidence=problem.evidence,
        fingerprint=alerts.make_fingerprint("deployment-failure", cfg.dataset.name, problem.key),
        severity="critical",
        links=problem.links,
    )
    return alerts.raise_alert(cfg, alert)


def move_champion(cfg: Config, version: str) -> str:
    """Point MLflow's `champion` alias at a version when the tracking store knows it; returns what happened."""
    repo = cfg.repo
    if not os.environ.get("MLFLOW_TRACKING_URI") and not (repo.mlflow_dir / "mlflow.db").exists():
        return "no tracking store"
    try:
        from mlops.tracking import Tracker

        tracker = Tracker(repo, experiment=cfg.dataset.name, registered_model=f"{cfg.dataset.name}-classifier")
        registered = tracker.version_for(version)
        if registered is None:
            return "version not in the tracking store"
        tracker.set_alias("champion", registered)
        return f"champion -> registered version {registered}"
    except Exception as exc:  # noqa: BLE001 - the deployment stands; the alias is bookkeeping
        gha.warn(f"could not move the MLflow champion alias to {version}: {type(exc).__name__}: {exc}")
        return f"failed: {type(exc).__name__}"
