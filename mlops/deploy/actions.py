"""`mlops deploy`, `mlops rollback` and `mlops canary analyze`: check the request, decide, then one transition.

Each reads as load -> check -> decide -> record: the request and the state are checked before
anything is written (bad input: one line, exit 2), the gates or the canary analysis decide, and
`transition` writes the record, the state and the audit event, in that order. See docs/deployment.md.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NoReturn

from mlops import jsonio, registry
from mlops.config import Config
from mlops.deploy.canary import Analysis, analysis_markdown, decide, tolerances
from mlops.deploy.gates import Gate, health_check, run_gates, summary_markdown
from mlops.deploy.transition import Problem, Record, default_actor, record_path, transition
from mlops.deployment_state import (
    MODES,
    describe,
    entry,
    plan,
    previous_production,
    read_state,
    require_state,
    with_entry,
)
from mlops.errors import BadInput, CheckFailed
from mlops.repo import Repo

# ------------------------------------------------------------------------------------- deploy


def _sha_of(folder: Path) -> str:
    return str(jsonio.read_json(folder / registry.MANIFEST, "model manifest")["model_sha256"])


def resolve_mode(repo: Repo, mode: str) -> str:
    """`auto`: full while nothing is in production (a canary needs a production to share traffic with), else canary.

    The same rule as `mlops workflow state`'s auto_mode, which deploy.yml uses; other modes are returned as given.
    """
    if mode != "auto":
        return mode
    return "full" if read_state(repo) is None else "canary"


def check_request(repo: Repo, mode: str, version: str | None, traffic: float | None) -> tuple[dict | None, str]:
    """Every bad-input refusal of `mlops deploy`, before anything is read twice or written (mode auto resolved)."""
    chosen = resolve_mode(repo, mode)
    if mode == "auto" and traffic is not None and chosen != "canary":
        raise BadInput(
            "--traffic",
            "--mode auto deploys full here (nothing is in production yet), and a traffic share only applies to canary",
            "drop --traffic for this first deployment",
        )
    mode = chosen
    if mode not in MODES:
        raise BadInput("--mode", f"unknown mode {mode!r}", f"use one of {', '.join(MODES)}")
    if traffic is not None:
        if mode != "canary":
            raise BadInput(
                "--traffic",
                f"a traffic share only applies to --mode canary, not --mode {mode}",
                "drop --traffic (full takes all traffic; shadow answers none)",
            )
        if not (isinstance(traffic, (int, float)) and math.isfinite(traffic) and 0 < traffic < 1):
            raise BadInput("--traffic", f"{traffic} is outside (0, 1)", "give the canary's share, e.g. --traffic 0.1")
    state = read_state(repo)
    if version is None:
        current = registry.current_manifest(repo)
        if current is None:
            raise BadInput(
                "--version", "no version given and no models/current/", "run `mlops train` or pass --version"
            )
        version = str(current["version"])
    registry.find_version(repo, version)
    if state is None and mode != "full":
        raise BadInput(
            repo.rel(repo.deployment_state),
            f"nothing is in production yet, so there is nothing to {mode} against",
            f"deploy a first version with `mlops deploy --mode full --version {version}`",
        )
    if state is not None:
        prod = state["production"]["version"]
        if mode == "full" and version == prod:
            raise BadInput("--version", f"{version} is already production", "nothing to do")
        if mode != "full" and version == prod:
            raise BadInput(
                "--version",
                f"{version} is production; it cannot also be the {mode}",
                "deploy a different version, e.g. the latest candidate",
            )
    return state, version


def deploy(
    cfg: Config,
    mode: str,
    version: str | None = None,
    traffic: float | None = None,
    *,
    reason: str | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Gate, then change the deployment state, then health-check through the router (rolling back on failure)."""
    repo = cfg.repo
    state, version = check_request(repo, mode, version, traffic)
    mode = resolve_mode(repo, mode)
    if mode == "canary" and traffic is None:
        traffic = cfg.deployment.canary_traffic
    who = default_actor(actor)
    folder = registry.find_version(repo, version)
    gates = run_gates(cfg, version, folder, state)
    record = Record(
        record_path(repo, mode, version),
        {
            "time": jsonio.format_utc(jsonio.utc_now()),
            "mode": mode,
            "version": version,
            "model_folder": repo.rel(folder),
            "traffic": traffic if mode == "canary" else (1.0 if mode == "full" else 0.0),
            "actor": who,
            "commit": repo.git_commit(),
            "gates": [g.to_dict() for g in gates],
            "passed": all(g.passed for g in gates),
            "state_before": describe(state),
        },
    )
    rel = repo.rel(record.path)
    if not record.data["passed"]:
        _refuse(cfg, who, record, gates, state)
    sha = _sha_of(folder)
    change = entry(
        f"deploy-{mode}",
        _replaced(state, mode),
        version,
        reason or f"mlops deploy --mode {mode}",
        who,
        to_sha256=sha,
        traffic=traffic if mode == "canary" else None,
        record=rel,
    )
    new_state = plan(state, mode, version, sha, float(traffic or 0.5), change)
    record.data.update(decision="deployed", state_after=describe(new_state))
    payload = {
        "action": change["action"],
        "version": version,
        "sha256": sha,
        "from": change["from"],
        "traffic": record.data["traffic"],
        "record": rel,
        "state": describe(new_state),
    }
    transition(cfg, who, record=record, state=new_state, event=("deployment_change", payload))
    health = health_check(cfg, new_state)
    record.data["health_check"] = health
    if not health["passed"]:
        _auto_rollback(cfg, who, record, state, new_state)
    transition(cfg, who, record=record, champion=version if mode == "full" else None, summary=summary_markdown)
    return record.data


def _replaced(state: dict[str, Any] | None, mode: str) -> str | None:
    """The version a deployment in `mode` takes the place of: production for full, else that role's."""
    if state is None:
        return None
    if mode == "full":
        return state["production"]["version"]
    return state[mode]["version"] if state.get(mode) else None


def _refuse(cfg: Config, who: str, record: Record, gates: list[Gate], state: dict | None) -> NoReturn:
    """Record a refused deployment (record, gate_decision event, alert, summary) and raise CheckFailed."""
    data, rel = record.data, cfg.repo.rel(record.path)
    refused = [g for g in gates if g.passed is False]
    data.update(decision="refused", state_after=describe(state))
    reasons = "; ".join(f"{g.name}: {g.reason}" for g in refused)
    payload = {
        "stage": "deployment",
        "mode": data["mode"],
        "version": data["version"],
        "passed": False,
        "refused": [g.name for g in refused],
        "record": rel,
    }
    problem = Problem(
        f"Deployment refused: {data['version']}",
        f"`mlops deploy --mode {data['mode']}` refused {data['version']}: {reasons}. Nothing was changed.",
        {g.name: ("passed" if g.passed else "not run" if g.passed is None else "FAILED") for g in gates},
        data,
        data["version"],
        {"gate record": rel},
    )
    sent = transition(
        cfg, who, record=record, event=("gate_decision", payload), problem=problem, summary=summary_markdown
    )
    raise CheckFailed(
        f"deployment refused by gate {refused[0].name}: {refused[0].reason} "
        f"(record: {rel}; alert: {(sent or {}).get('status')})"
    )


def _auto_rollback(cfg: Config, who: str, record: Record, before: dict | None, failed: dict) -> NoReturn:
    """Restore the state as it was before a deployment that failed its health check, then raise CheckFailed."""
    data, rel = record.data, cfg.repo.rel(record.path)
    health, version = data["health_check"], data["version"]
    last = failed["history"][-1]
    restored = None  # no deployment before this one: "as before" is no state file at all
    if before is not None:
        undo = entry(
            "auto-rollback",
            last["to"],
            before["production"]["version"],
            f"post-deploy health check failed: {health['reason']}",
            who,
            record=rel,
        )
        restored = with_entry({**before, "history": failed["history"]}, undo)
    data.update(decision="rolled back", state_after=describe(restored))
    payload = {
        "automatic": True,
        "failed_version": last["to"],
        "reason": health["reason"],
        "record": rel,
        "state": describe(restored),
    }
    problem = Problem(
        f"Deployment rolled back: {version}",
        f"{version} passed its gates but failed the post-deploy health check ({health['reason']}); "
        "the previous deployment state was restored automatically.",
        {k: v for k, v in health.items() if isinstance(v, (int, float, str, bool)) and k != "passed"},
        data,
        version,
        {"gate record": rel},
    )
    sent = transition(
        cfg, who, record=record, state=restored, event=("rollback", payload), problem=problem, summary=summary_markdown
    )
    raise CheckFailed(
        f"{version} failed the post-deploy health check ({health['reason']}) and was rolled back "
        f"(record: {rel}; alert: {(sent or {}).get('status')})"
    )


# ------------------------------------------------------------------------------------ rollback


def rollback(cfg: Config, to: str | None = None, *, reason: str | None = None, actor: str | None = None) -> dict:
    """Restore an earlier production version (default: the previous one), integrity-checked; drops canary and shadow."""
    repo = cfg.repo
    state = require_state(repo, "there is no deployment to roll back", "deploy first with `mlops deploy --mode full`")
    current = state["production"]["version"]
    target = to or previous_production(state)
    if target is None and (state["canary"] or state["shadow"]):
        # The first canary (or shadow) misbehaves and nothing served before production: rolling
        # back means dropping it and keeping production as it is.
        target = current
    if target is None:
        raise BadInput(
            repo.rel(repo.deployment_state),
            f"history has no production version before {current}",
            "name one with `mlops rollback --to VERSION`",
        )
    if target == current and not state["canary"] and not state["shadow"]:
        raise BadInput("--to", f"{target} is already production", "nothing to roll back")
    folder = registry.find_version(repo, target)
    who = default_actor(actor)
    try:
        sha = _pinned_sha(repo, state, folder, target)
    except BadInput as exc:
        refusal = Problem(
            f"Rollback refused: {target}", f"Rolling back to {target} was refused: {exc}",
            {"target": target}, {"error": str(exc)}, f"rollback-{target}", {},
        )  # fmt: skip
        transition(cfg, who, problem=refusal)
        raise CheckFailed(f"rollback to {target} refused: {exc}") from None
    why = reason or "mlops rollback"
    change = entry("rollback", current, target, why, who, to_sha256=sha)
    production = {"version": target, "model_sha256": sha, "since": change["time"]}
    new = with_entry(state, change, production=production, canary=None, shadow=None)
    payload = {"from": current, "to": target, "reason": why, "sha256": sha, "dropped": describe(state),
               "automatic": False}  # fmt: skip
    out = Record(None, {"from": current, "to": target, "reason": why, "model_folder": repo.rel(folder)})

    def summary(data: dict[str, Any]) -> str:
        return f"### Rollback\n\nProduction `{current}` → `{target}` ({why}). MLflow: {data['mlflow_champion']}."

    transition(cfg, who, record=out, state=new, event=("rollback", payload), champion=target, summary=summary)
    return out.data


def _pinned_sha(repo: Repo, state: dict[str, Any], folder: Path, target: str) -> str:
    """The target's sha256, once its file matches its manifest and the sha256 its last deployment pinned."""
    manifest = registry.verify_integrity(folder, repo)
    pinned = [h.get("to_sha256") for h in state["history"] if h.get("to") == target and h.get("to_sha256")]
    if pinned and manifest["model_sha256"] != pinned[-1]:
        # The file matches its manifest, but both changed since this version last served.
        raise BadInput(
            repo.rel(folder / registry.MODEL_FILE),
            f"sha256 {manifest['model_sha256'][:12]}… is not the {pinned[-1][:12]}… the deployment history "
            "pinned when this version last served",
            f"restore the committed model (git checkout -- {repo.rel(folder)}) or roll back to another version",
        )
    return manifest["model_sha256"]


# ------------------------------------------------------------------------------ canary analysis


def read_errors(repo: Repo, since: str | None) -> list[dict]:
    """Serving errors the router logged (serving-errors-YYYYMMDD.jsonl beside the prediction log)."""
    import json

    out = []
    for path in sorted(repo.production_logs.glob("serving-errors-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = jsonio.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a crash
            if isinstance(rec, dict) and (since is None or str(rec.get("time", "")) >= since):
                out.append(rec)
    return out


def read_window(cfg: Config, since: Any) -> tuple[list[dict], list[dict], list[dict]]:
    """(predictions, feedback, serving errors) logged since `since` (a datetime, or None for all):
    the log store's parts from that hour on plus the log files (mlops.logstore.window)."""
    from mlops.logstore import window

    preds = window.read_logs(cfg, "predictions", since, None, "skip").records
    feedback = window.read_logs(cfg, "feedback", since, None, "skip").records
    errors = read_errors(cfg.repo, jsonio.format_utc(since) if since else None)
    return preds, feedback, errors


def analyze(cfg: Config, *, apply: bool = False, since: str | None = None, actor: str | None = None) -> dict:
    """Compare canary with production on the logged window; with apply, promote or roll back the canary."""
    repo = cfg.repo
    state = read_state(repo)
    if state is None or not state["canary"]:
        raise BadInput(
            repo.rel(repo.deployment_state),
            "there is no canary to analyze",
            "start one with `mlops deploy --mode canary`",
        )
    canary, prod = state["canary"], state["production"]
    start = since or canary.get("since")
    start_dt = jsonio.parse_utc(start, "--since") if start else None
    tol = cfg.deployment.canary_analysis
    result = decide(*read_window(cfg, start_dt), canary["version"], prod["version"], tol)
    record = Record(
        record_path(repo, "canary-analysis", canary["version"]),
        {
            "time": jsonio.format_utc(jsonio.utc_now()),
            "canary": canary,
            "production": prod,
            "window_since": jsonio.format_utc(start_dt) if start_dt else None,
            "tolerances": tolerances(tol),
            "stats": result.stats,
            "checks": result.checks,
            "decision": result.decision,
            "applied": False,
        },
    )
    rel = repo.rel(record.path)
    who = default_actor(actor)
    change: dict[str, Any] = {}
    if apply and result.decision != "wait":
        change = _canary_change(repo, state, result, rel, who)
        record.data.update(applied=True, state_after=describe(change["state"]))
    problem = _canary_problem(record.data, result, rel) if result.decision == "rollback" else None
    transition(cfg, who, record=record, problem=problem, summary=analysis_markdown, **change)
    record.data["record"] = rel
    return record.data


def _canary_change(repo: Repo, state: dict[str, Any], result: Analysis, rel: str, who: str) -> dict[str, Any]:
    """The transition that applies a promote or rollback decision (state, audit event, champion)."""
    canary, prod = state["canary"], state["production"]
    if result.decision == "promote":
        change = entry("promote-canary", prod["version"], canary["version"], "canary analysis passed", who,
                       to_sha256=canary["sha256"], record=rel)  # fmt: skip
        production = {"version": canary["version"], "model_sha256": canary["sha256"], "since": change["time"]}
        new = with_entry(state, change, canary=None, production=production)
        # The canary's sha256 is re-verified before it becomes production: the state pins it, the disk must agree.
        folder = registry.find_version(repo, canary["version"])
        try:
            registry.verify_integrity(folder, repo)
        except BadInput as exc:
            raise CheckFailed(f"canary {canary['version']} cannot be promoted: {exc}") from None
        if _sha_of(folder) != canary["sha256"]:
            raise CheckFailed(f"canary {canary['version']}: manifest sha256 differs from the one deployed")
        event, champion = "deployment_change", canary["version"]
    else:
        change = entry("canary-rollback", canary["version"], prod["version"],
                       f"canary analysis failed: {', '.join(result.failed)}", who, record=rel)  # fmt: skip
        new = with_entry(state, change, canary=None)
        event, champion = "rollback", None
    payload = {
        "action": change["action"],
        "from": change["from"],
        "to": change["to"],
        "decision": result.decision,
        "failed_checks": result.failed,
        "record": rel,
        "state": describe(new),
    }
    return {"state": new, "event": (event, payload), "champion": champion}


def _canary_problem(record: dict[str, Any], result: Analysis, rel: str) -> Problem:
    canary, prod = record["canary"]["version"], record["production"]["version"]
    return Problem(
        f"Canary failed analysis: {canary}",
        f"Canary {canary} differs from production {prod} beyond tolerance"
        + (" and was rolled back." if record["applied"] else "; run with --apply to roll it back."),
        {x["name"]: x["value"] if not isinstance(x["value"], dict) else str(x["value"]) for x in result.checks},
        {"checks": result.checks, "stats": result.stats},
        f"canary-{canary}",
        {"analysis": rel},
    )
