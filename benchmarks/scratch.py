"""A scratch repository for a benchmark: this checkout's config/ with settings written over it.

Imported by the benchmark scripts beside it (a script's own folder is on sys.path); the package
itself comes from the installed `mlops`, never from this checkout's path.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def merge(base: dict, patch: dict) -> None:
    """Write `patch` over `base`, nested objects key by key."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value


def scratch_repo(folder: Path, patches: dict[str, dict]) -> Path:
    """config/ in `folder` with `patches` ({config name: settings}) written over it, and empty
    datasets/, models/ and metadata/."""
    shutil.copytree(ROOT / "config", folder / "config")
    for sub in ("datasets", "models", "metadata"):
        (folder / sub).mkdir()
    for name, patch in patches.items():
        path = folder / "config" / f"{name}.json"
        data = json.loads(path.read_text())
        merge(data, patch)
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return folder
