"""Retrain dispatch: send `workflow_dispatch` to the training workflow, at most once per cool-down.

metadata/alerts/retrain.json records the last dispatch; a dispatch that may have reached GitHub
is not resent (it cannot be re-checked), and does not start the cool-down.

A dispatch from monitoring carries the monitoring window as the `since`/`until` inputs, which the
training workflow passes to `mlops train --since/--until`: the production data source then trains on
the labelled predictions of the window that drifted (docs/training.md).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from mlops import audit, gha, jsonio
from mlops.alerts.client import Channel, Undeliverable, scrub, target_from_env
from mlops.alerts.model import safe_text
from mlops.errors import BadInput


def retrain_state_path(repo: Any) -> Path:
    return repo.alerts_dir / "retrain.json"


def _window_inputs(since: str | None, until: str | None) -> dict[str, str]:
    """{"since", "until"} as YYYY-MM-DDTHH:MM:SSZ (those given), checked before anything is sent."""
    out = {}
    for name, value in (("since", since), ("until", until)):
        if value is not None:
            out[name] = jsonio.format_utc(jsonio.parse_utc(str(value), f"--{name}"))
    if len(out) == 2 and out["since"] >= out["until"]:
        raise BadInput("--since", f"{out['since']} is not before {out['until']}", "give a --since earlier than --until")
    return out


def dispatch_retrain(
    cfg: Any, reason: str, *, force: bool = False, since: str | None = None, until: str | None = None
) -> dict[str, Any]:
    """Dispatch the training workflow with the reason (and the window to train on, when given) as inputs,
    unless the cool-down since the last one is running."""
    if not isinstance(reason, str) or not reason.strip():
        raise BadInput("--reason", "empty", "say why retraining is needed, e.g. 'drift on 4 features'")
    reason = " ".join(reason.split())[:500]
    window = _window_inputs(since, until)
    repo = cfg.repo
    retrain = cfg.alerts.retrain
    target = target_from_env()
    state_path = retrain_state_path(repo)
    last = jsonio.read_json(state_path, "retrain state") if state_path.exists() else None
    now = jsonio.utc_now()
    if last is not None:
        if not isinstance(last, dict) or not isinstance(last.get("dispatched_at"), str):
            raise BadInput(repo.rel(state_path), "no dispatched_at time", "fix or delete the file")
        since = jsonio.parse_utc(last["dispatched_at"], f"{repo.rel(state_path)}: /dispatched_at")
        until = since + dt.timedelta(hours=retrain.cooldown_hours)
        if not force and now < until:
            gha.info(f"retrain not dispatched: cool-down until {jsonio.format_utc(until)} (last: {last.get('reason')})")
            return {"status": "cooldown", "dispatched": False, "next_allowed": jsonio.format_utc(until)}
    inputs = {"reason": reason, **window}
    base = {"workflow": retrain.workflow, "ref": retrain.ref, "inputs": inputs}
    if not target.token:
        span = f" with since={window['since']} until={window['until']}" if len(window) == 2 else ""
        gha.info(f"retrain dry run (no GITHUB_TOKEN): would dispatch {retrain.workflow} on {retrain.ref}{span}")
        gha.add_summary(
            f"### Retrain (dry run)\n\nWould dispatch `{retrain.workflow}` on `{retrain.ref}`: {safe_text(reason)}"
        )
        return {"status": "dry-run", "dispatched": False, **base}

    def missing() -> BaseException:
        return BadInput(
            "config/alerts.json: /retrain/workflow",
            f"workflow {retrain.workflow} not found in {target.repository} (404)",
            f"commit .github/workflows/{retrain.workflow} or fix retrain.workflow; the token needs actions: write",
        )

    audit.check_can_record(repo)  # before anything is sent: the dispatch must be recordable
    ch = Channel(cfg.alerts.delivery, target)
    try:
        workflow = ch.repo.get_workflow(retrain.workflow)
        ch.call(
            f"dispatch {retrain.workflow}",
            lambda: workflow.create_dispatch(retrain.ref, inputs, throw=True),
            post=True,
            not_found=missing,
        )
    except Undeliverable as exc:
        why = scrub(str(exc), target.token)
        gha.warn(f"retrain NOT dispatched: {why}")
        return {"status": "failed", "dispatched": False, "error": why, **base}
    finally:
        ch.close()
    record = {"dispatched_at": jsonio.format_utc(now), "reason": reason, **base}
    jsonio.write_json(state_path, record)
    seq = audit.record(repo, "retrain_dispatched", {**base, "reason": reason})["seq"]
    gha.info(f"retrain dispatched: {retrain.workflow} on {retrain.ref} ({reason})")
    gha.add_summary(f"### Retrain dispatched\n\n`{retrain.workflow}` on `{retrain.ref}`: {safe_text(reason)}")
    return {"status": "dispatched", "dispatched": True, "audit_seq": seq, **base}
