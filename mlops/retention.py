"""Retention: delete expired model folders, never a deployed one, and record what went.

Candidates (models/candidates/<v>/) expire model_retention.candidates after they were
created; archived former champions (models/archived/<v>/) expire model_retention.production
after they were created. Never deleted, whatever their age: models/current/, every version
models/deployment.json names (production, canary, shadow) and the production version a
`mlops rollback` would restore. Gate records, cards and audit entries stay as history.
Age comes from the manifest's created_at, else from the version id's UTC timestamp; a folder
with neither is kept and reported. See docs/workflows.md.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops import gha, jsonio
from mlops.config import Config
from mlops.errors import BadInput
from mlops.registry import MANIFEST

_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Item:
    version: str
    kind: str  # "candidate" or "archived"
    folder: Path
    created_at: str | None
    age_days: float | None
    action: str  # "delete", "keep", "protected", "undated"
    why: str


def created_at(folder: Path) -> dt.datetime | None:
    """When a model was created: manifest created_at, else the version id's timestamp, else None."""
    manifest_path = folder / MANIFEST
    if manifest_path.exists():
        try:
            manifest = jsonio.read_json(manifest_path, "model manifest")
        except BadInput:
            manifest = None
        if isinstance(manifest, dict) and isinstance(manifest.get("created_at"), str):
            try:
                return jsonio.parse_utc(manifest["created_at"], str(manifest_path))
            except BadInput:
                pass
    try:
        return dt.datetime.strptime(folder.name.split("-", 1)[0], _STAMP_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def protected_versions(cfg: Config) -> dict[str, str]:
    """Version -> why it must stay: current, deployed roles and the rollback target."""
    from mlops import registry
    from mlops.deployment_state import previous_production, read_state

    repo = cfg.repo
    out: dict[str, str] = {}
    manifest = registry.current_manifest(repo)
    if manifest and manifest.get("version"):
        out[str(manifest["version"])] = "models/current"
    state = read_state(repo)
    if state is not None:
        for role in ("production", "canary", "shadow"):
            if state.get(role) and state[role].get("version"):
                out.setdefault(str(state[role]["version"]), f"deployment.json {role}")
        previous = previous_production(state)
        if previous:
            out.setdefault(previous, "deployment.json rollback target")
    return out


def plan(cfg: Config) -> list[Item]:
    """Every candidate and archived folder with what retention will do to it and why."""
    repo = cfg.repo
    now = jsonio.utc_now()
    limits = {
        "candidate": (repo.candidates, cfg.schedule.model_retention.candidates_days, "model_retention.candidates"),
        "archived": (repo.archived, cfg.schedule.model_retention.production_days, "model_retention.production"),
    }
    keep = protected_versions(cfg)
    items: list[Item] = []
    for kind, (parent, days, key) in limits.items():
        if not parent.is_dir():
            continue
        for folder in sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")):
            when = created_at(folder)
            age = None if when is None else (now - when).total_seconds() / 86400
            stamp = None if when is None else jsonio.format_utc(when)
            if folder.name in keep:
                action, why = "protected", keep[folder.name]
            elif age is None:
                action, why = "undated", "no created_at and no timestamp in the name: kept"
            elif age > days:
                action, why = "delete", f"{age:.1f} days old > {key} {days}d"
            else:
                action, why = "keep", f"{age:.1f} days old <= {key} {days}d"
            items.append(Item(folder.name, kind, folder, stamp, None if age is None else round(age, 2), action, why))
    return items


def run(cfg: Config, *, dry_run: bool = False) -> dict[str, Any]:
    """Apply (or, with dry_run, only report) the retention plan; record removals in the audit log."""
    repo = cfg.repo
    items = plan(cfg)
    doomed = [i for i in items if i.action == "delete"]
    removed: list[dict[str, Any]] = []
    if not dry_run:
        for item in doomed:
            shutil.rmtree(item.folder)
            removed.append(
                {"version": item.version, "kind": item.kind, "created_at": item.created_at, "age_days": item.age_days}
            )
        if removed:
            from mlops import audit

            audit.record(
                repo,
                "retention_prune",
                {
                    "removed": removed,
                    "policy": {
                        "candidates_days": cfg.schedule.model_retention.candidates_days,
                        "production_days": cfg.schedule.model_retention.production_days,
                    },
                    "protected": sorted(i.version for i in items if i.action == "protected"),
                },
            )
    outcome = {
        "dry_run": dry_run,
        "items": items,
        "removed": [i.version for i in doomed] if not dry_run else [],
        "would_remove": [i.version for i in doomed] if dry_run else [],
    }
    _summary(outcome)
    return outcome


def _summary(outcome: dict[str, Any]) -> None:
    items: list[Item] = outcome["items"]
    verb = "would delete" if outcome["dry_run"] else "deleted"
    rows = [
        (i.version, i.kind, i.created_at or "?", "" if i.age_days is None else f"{i.age_days:.1f}",
         verb if i.action == "delete" else i.action, i.why)
        for i in items
    ]  # fmt: skip
    title = "### Retention (dry run)" if outcome["dry_run"] else "### Retention"
    count = len(outcome["would_remove"] or outcome["removed"])
    body = f"{title}\n\n{count} model folder(s) {'would be deleted' if outcome['dry_run'] else 'deleted'}."
    if rows:
        body += "\n\n" + gha.md_table(["version", "kind", "created", "age (days)", "action", "why"], rows)
    gha.add_summary(body)
    gha.set_outputs(removed=count if not outcome["dry_run"] else 0, would_remove=len(outcome["would_remove"]))
