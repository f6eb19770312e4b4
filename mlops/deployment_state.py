"""The GitOps deployment state `models/deployment.json`: read, validate, write, describe, plan.

The file is the desired state of serving: which version is production, which is canary (with its
traffic share), which runs in shadow, and the history needed to roll back. Deploying never moves
model folders: the state names versions wherever they live (models/current, candidates/ or
archived/) and pins their sha256, so every change is one atomic write of one file; `mlops rollback` writes the
earlier state back and records it in the audit log (a `git revert` would drop audit entries).

This module imports nothing of deployment or serving: the router, retention and the workflow
commands read the state through it. See docs/deployment.md.
"""

from __future__ import annotations

from typing import Any

from mlops import jsonio
from mlops.config import describe_violation, json_pointer, require_valid
from mlops.errors import BadInput
from mlops.repo import Repo

MODES = ("shadow", "canary", "full")
STATE_SCHEMA = "deployment-state.schema.json"
# Actions that change which version serves production, for finding "the previous production".
_PRODUCTION_ACTIONS = ("deploy-full", "promote-canary")
_ROLLBACK_ACTIONS = ("rollback", "auto-rollback")


def schema(repo: Repo, name: str) -> dict[str, Any]:
    """A JSON Schema from config/schemas/ (one line, exit 2, when it was deleted)."""
    path = repo.schemas_dir / name
    if not path.exists():
        raise BadInput(repo.rel(path), "the JSON Schema is missing", "restore it from git")
    return jsonio.read_json(path, "schema")


def violation_text(err: Any) -> str:
    """'<pointer>: expected ..., found ...' for a jsonschema error."""
    expected, found = describe_violation(err)
    return f"{json_pointer(err.absolute_path)}: expected {expected}, found {found}"


def validate_state(repo: Repo, state: Any) -> None:
    """Raise BadInput naming the first place where a state breaks its schema or its own rules."""
    rel = repo.rel(repo.deployment_state)
    fix = f"fix it to match config/schemas/{STATE_SCHEMA}, or `git revert` the commit that broke it"
    require_valid(schema(repo, STATE_SCHEMA), state, rel, fix)
    prod = state["production"]["version"]
    for role in ("canary", "shadow"):
        if state[role] and state[role]["version"] == prod:
            raise BadInput(
                f"{rel}: /{role}/version",
                f"{prod} is already production and cannot also be the {role}",
                f"set /{role} to null",
            )


def read_state(repo: Repo) -> dict[str, Any] | None:
    """The deployment state, schema-checked; None before the first deployment."""
    if not repo.deployment_state.exists():
        return None
    state = jsonio.read_json(repo.deployment_state, "deployment state")
    validate_state(repo, state)
    return state


def require_state(repo: Repo, problem: str, fix: str) -> dict[str, Any]:
    """The deployment state, or BadInput (one line naming the state file) before the first deployment."""
    state = read_state(repo)
    if state is None:
        raise BadInput(repo.rel(repo.deployment_state), problem, fix)
    return state


def write_state(repo: Repo, state: dict[str, Any] | None) -> None:
    """Write the state atomically; None removes the file (the state before a first deployment)."""
    if state is None:
        repo.deployment_state.unlink()
        jsonio.fsync_dir(repo.models)
        return
    validate_state(repo, state)  # a bug here must never reach the file the router trusts
    jsonio.write_json(repo.deployment_state, state)


def previous_production(state: dict[str, Any]) -> str | None:
    """The production version before the current one, replaying history as a stack (rollbacks pop)."""
    stack: list[str] = []
    for entry in state["history"]:
        action, to = entry["action"], entry["to"]
        if action in _PRODUCTION_ACTIONS and to:
            stack.append(to)
        elif action in _ROLLBACK_ACTIONS and to:
            while stack and stack[-1] != to:
                stack.pop()
            if not stack:
                stack.append(to)
    current = state["production"]["version"]
    while stack and stack[-1] == current:
        stack.pop()
    return stack[-1] if stack else None


def entry(action: str, src: str | None, dst: str | None, reason: str, actor: str, **extra: Any) -> dict[str, Any]:
    """One history entry, stamped now; extra fields that are None are left out."""
    out = {
        "time": jsonio.format_utc(jsonio.utc_now()),
        "action": action,
        "from": src,
        "to": dst,
        "reason": reason,
        "actor": actor,
    }
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


def with_entry(state: dict[str, Any], new_entry: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of `state` with `new_entry` appended to its history, stamped, and `changes` applied."""
    return {**state, "history": [*state["history"], new_entry], "updated_at": new_entry["time"], **changes}


def describe(state: dict[str, Any] | None) -> dict[str, Any]:
    """A short summary of a state for records and outputs."""
    if state is None:
        return {"production": None, "canary": None, "shadow": None}
    return {
        "production": state["production"]["version"],
        "canary": {"version": state["canary"]["version"], "traffic": state["canary"]["traffic"]}
        if state["canary"]
        else None,
        "shadow": state["shadow"]["version"] if state["shadow"] else None,
    }


def plan(
    state: dict[str, Any] | None, mode: str, version: str, sha: str, traffic: float, new_entry: dict[str, Any]
) -> dict[str, Any]:
    """The state after deploying `version` in `mode` (pure: no I/O)."""
    now = new_entry["time"]
    if state is None:
        new: dict[str, Any] = {"format": 1, "canary": None, "shadow": None, "history": []}
    else:
        new = {**state, "history": list(state["history"])}
    if mode == "full":
        new["production"] = {"version": version, "model_sha256": sha, "since": now}
        if new["canary"] and new["canary"]["version"] == version:
            new["canary"] = None
        if new["shadow"] and new["shadow"]["version"] == version:
            new["shadow"] = None
    elif mode == "canary":
        new["canary"] = {"version": version, "sha256": sha, "traffic": traffic, "since": now}
        if new["shadow"] and new["shadow"]["version"] == version:
            new["shadow"] = None
    else:
        new["shadow"] = {"version": version, "sha256": sha, "since": now}
        if new["canary"] and new["canary"]["version"] == version:
            new["canary"] = None
    new["history"].append(new_entry)
    new["updated_at"] = now
    return new
