"""Temporary repositories: a copy of this checkout's config/ (and schemas) in a temp dir."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make_repo(tmp: Path, *, git: bool = False, **overrides: dict) -> Path:
    """Copy config/ into tmp and apply per-file overrides, e.g. dataset={"source": "local"}."""
    shutil.copytree(ROOT / "config", tmp / "config")
    for sub in ("datasets", "models", "metadata"):
        (tmp / sub).mkdir(exist_ok=True)
    for name, patch in overrides.items():
        path = tmp / "config" / f"{name.replace('_', '-')}.json"
        data = json.loads(path.read_text())
        _merge(data, patch)
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    if git:
        subprocess.run(["git", "init", "-q", "-b", "main", str(tmp)], check=True)
        subprocess.run(["git", "-C", str(tmp), "add", "-A"], check=True)
        subprocess.run(
            ["git", "-C", str(tmp), "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "init"],
            check=True,
        )
    return tmp


def _merge(base: dict, patch: dict) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def tree_snapshot(root: Path) -> dict[str, bytes]:
    """Every file under models/ and metadata/, for 'nothing changed on disk' assertions."""
    out = {}
    for sub in ("models", "metadata"):
        for p in sorted((root / sub).rglob("*")):
            if p.is_file():
                out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out
