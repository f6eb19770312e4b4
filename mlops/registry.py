"""The model registry on disk: models/current/, models/candidates/<v>/, models/archived/<v>/.

A model folder holds model.skops and manifest.json (sha256 of the model file, dataset sha256
and source, metrics, gate, MLflow run). Nothing is loaded before its sha256 matches. No pickle.
Folders are written under a hidden staging name and renamed into place, so a crash leaves the
old state or the new one; `recover()` finishes or discards an interrupted promotion.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import Any

from mlops import jsonio
from mlops.errors import BadInput
from mlops.repo import Repo

MODEL_FILE = "model.skops"
MANIFEST = "manifest.json"
PROFILE = "reference-profile.json"
VERSION_RE = re.compile(r"^\d{8}T\d{6}Z-[a-z][a-z0-9_]*-[0-9a-f]{8}$")
# Types a model file may contain; anything else in a skops file is refused before loading.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


def new_version(when: str, model_type: str, *parts: str) -> str:
    """Unique, time-sortable id naming its type, e.g. 20261122T020000Z-hist_gradient_boosting-3fa2c1d9."""
    stamp = when.replace("-", "").replace(":", "")
    digest = hashlib.sha256("\0".join((when, model_type, *parts)).encode()).hexdigest()[:8]
    return f"{stamp}-{model_type}-{digest}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dump_model(pipeline: Any, path: Path) -> tuple[str, list[str]]:
    """Write a skops file; return its sha256 and the non-default types it needs trusted."""
    import skops.io as sio

    path.parent.mkdir(parents=True, exist_ok=True)
    data = sio.dumps(pipeline)
    jsonio.atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest(), sorted(sio.get_untrusted_types(data=data))


def verify_integrity(folder: Path, repo: Repo | None = None) -> dict[str, Any]:
    """Read the manifest and check the model file's sha256 against it; return the manifest."""
    rel = (lambda p: repo.rel(p)) if repo else str
    manifest_path = folder / MANIFEST
    model_path = folder / MODEL_FILE
    manifest = jsonio.read_json(manifest_path, "model manifest")
    if not model_path.is_file():
        raise BadInput(rel(model_path), "the model file is missing", "restore it from git or retrain")
    actual = sha256_file(model_path)
    if actual != manifest.get("model_sha256"):
        raise BadInput(
            rel(model_path),
            f"sha256 {actual[:12]}… does not match the manifest's {str(manifest.get('model_sha256'))[:12]}…",
            f"the file changed after training: restore it (git checkout -- {rel(folder)}) or retrain",
        )
    return manifest


def load_model(folder: Path, repo: Repo | None = None) -> tuple[Any, dict[str, Any]]:
    """Verify, then load a model folder; returns (pipeline, manifest)."""
    import skops.io as sio

    manifest = verify_integrity(folder, repo)
    model_path = folder / MODEL_FILE
    untrusted = sio.get_untrusted_types(file=model_path)
    refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if refused:
        raise BadInput(
            str(model_path), f"the model file contains untrusted types {refused[:3]}", "retrain with a supported model"
        )
    return sio.load(model_path, trusted=untrusted), manifest


def recover(repo: Repo) -> None:
    """Finish or discard a promotion interrupted by a crash (see module docstring)."""
    if not repo.models.is_dir():
        return
    for staged in sorted(repo.models.glob(".incoming-*")):
        marker = staged / ".promote"
        if marker.exists() and not repo.current.exists():
            marker.unlink()
            os.rename(staged, repo.current)
        else:
            shutil.rmtree(staged, ignore_errors=True)
    jsonio.fsync_dir(repo.models)


def stage(repo: Repo, version: str) -> Path:
    folder = repo.models / f".incoming-{version}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def place_candidate(repo: Repo, staged: Path, version: str) -> Path:
    target = repo.candidates / version
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(staged, target)
    jsonio.fsync_dir(target.parent)
    return target


def promote(repo: Repo, staged: Path) -> str | None:
    """Make a staged folder models/current/; the previous current moves to archived/. Returns its version."""
    previous = None
    (staged / ".promote").touch()
    jsonio.fsync_dir(staged)
    if repo.current.exists():
        previous = jsonio.read_json(repo.current / MANIFEST, "model manifest").get("version")
        target = repo.archived / str(previous)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        os.rename(repo.current, target)
    os.rename(staged, repo.current)
    (repo.current / ".promote").unlink()
    jsonio.fsync_dir(repo.models)
    return previous


def current_manifest(repo: Repo) -> dict[str, Any] | None:
    if not (repo.current / MANIFEST).exists():
        return None
    return jsonio.read_json(repo.current / MANIFEST, "model manifest")


def load_current(repo: Repo) -> tuple[Any, dict[str, Any]]:
    if not (repo.current / MANIFEST).exists():
        raise BadInput(repo.rel(repo.current), "no current model", "run `mlops train` first")
    return load_model(repo.current, repo)


def find_version(repo: Repo, version: str) -> Path:
    """The folder holding a version: current, candidates or archived."""
    if not isinstance(version, str) or not VERSION_RE.fullmatch(version):
        # Checked before any path is built from it: the id names record and alert files (`../x` must not).
        raise BadInput(
            f"version {version}", "is not a model version id (YYYYMMDDTHHMMSSZ-<model type>-<8 hex digits>)",
            "pass a folder name from models/candidates or models/archived, or models/current's manifest version",
        )  # fmt: skip
    manifest = current_manifest(repo)
    if manifest and manifest.get("version") == version:
        return repo.current
    for parent in (repo.candidates, repo.archived):
        if (parent / version / MANIFEST).exists():
            return parent / version
    raise BadInput(
        f"version {version}", "no such model in models/current, models/candidates or models/archived",
        "list them with `ls models/candidates models/archived` or `cat models/current/manifest.json`",
    )  # fmt: skip


def all_versions(repo: Repo) -> dict[str, Path]:
    out = {}
    for parent in (repo.candidates, repo.archived):
        if parent.is_dir():
            for child in sorted(parent.iterdir()):
                if (child / MANIFEST).exists():
                    out[child.name] = child
    manifest = current_manifest(repo)
    if manifest:
        out[manifest["version"]] = repo.current
    return out
