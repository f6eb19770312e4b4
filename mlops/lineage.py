"""From a model version to everything it came from, and back again.

`lineage()` collects the commit, the data set, the MLflow run, the gate record, the deployment history and
an inclusion proof of the version's audit entry (its promotion, else its gate decision). `reproduce()`
re-trains the version from its recorded commit, data and seed in a temporary directory and compares the
result with the recorded one (docs/model-cards.md says why skops files are compared by content).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from mlops import jsonio, registry
from mlops.config import Config
from mlops.errors import BadInput, CheckFailed
from mlops.repo import Repo

# What the reproduction compares, key by key, with exact equality (the training spine is bit-reproducible).
COMPARED = ("metrics", "validation_metrics", "intervals", "slices", "reliability", "curves")
_SYNTHETIC_RE = re.compile(r"rows=(\d+), seed=(\d+)")
# Environment a child training run must not inherit: it would write to this job's summary/outputs, sign
# checkpoints in a scratch log with the real key, or file issues.
_CHILD_ENV_DROP = (
    "GITHUB_OUTPUT",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_TOKEN",
    "MLOPS_AUDIT_SIGNING_KEY",
    "MLFLOW_TRACKING_URI",
    "MLOPS_NOW",
)


# ---------------------------------------------------------------------------------------------- lineage


def _mentions(value: Any, version: str) -> bool:
    if isinstance(value, str):
        return value == version
    if isinstance(value, dict):
        return any(_mentions(v, version) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, version) for v in value)
    return False


def _roles(state: Any, version: str, prefix: str = "") -> list[str]:
    """JSON paths (outside `history`) whose value is the version, e.g. 'production.version'."""
    out = []
    if isinstance(state, dict):
        for key in sorted(state):
            if not prefix and key == "history":
                continue
            path = f"{prefix}.{key}" if prefix else key
            if state[key] == version:
                out.append(path)
            else:
                out += _roles(state[key], version, path)
    return out


def deployment_history(repo: Repo, version: str) -> dict[str, Any]:
    """Where the version serves now and the deployment history entries that mention it."""
    path = repo.deployment_state
    if not path.exists():
        return {"state_file": None, "roles": [], "history": []}
    state = jsonio.read_json(path, "deployment state")
    history = state.get("history") if isinstance(state, dict) else None
    return {
        "state_file": repo.rel(path),
        "roles": _roles(state, version),
        "history": [h for h in history or [] if _mentions(h, version)],
    }


def lineage(cfg: Config, version: str, *, proof: bool = True) -> dict[str, Any]:
    """Everything recorded about a version; with proof=True an inclusion proof of its audit entry."""
    from mlops import cards

    repo = cfg.repo
    folder = registry.find_version(repo, version)
    manifest = jsonio.read_json(folder / registry.MANIFEST, "model manifest")
    gate_path = repo.gates / f"{version}.json"
    gate = jsonio.read_json(gate_path, "gate record") if gate_path.exists() else None
    found = cards.find_audit_entries(repo, version)
    ds = manifest.get("dataset") or {}
    out: dict[str, Any] = {
        "version": version,
        "model_type": manifest.get("model_type"),
        "location": repo.rel(folder),
        "model_sha256": manifest.get("model_sha256"),
        "commit": manifest.get("commit"),
        "seed": manifest.get("seed"),
        "created_at": manifest.get("created_at"),
        "dataset": {k: ds.get(k) for k in ("source", "sha256", "path", "detail", "fetched_at", "fallback_reason")}
        | {"synthetic": ds.get("source") == "synthetic"}
        # the production source: store, window, the parts read with their sha256s, the file's own sha256
        | ({k: ds.get(k) for k in ("production", "file_sha256")} if ds.get("source") == "production" else {}),
        "mlflow": manifest.get("mlflow"),
        "gate": {
            "record": repo.rel(gate_path) if gate else None,
            "passed": (gate or manifest.get("gate", {})).get("passed"),
            "decision": (gate or manifest.get("gate", {})).get("decision"),
            "reasons": (gate or {}).get("reasons", []),
            "promotion_reason": (gate or {}).get("promotion_reason"),
        },
        "deployment": deployment_history(repo, version),
        "card": repo.rel(cards.card_md_path(repo, version)) if cards.card_md_path(repo, version).exists() else None,
        "audit": {k: found.get(k) for k in ("promotion", "gate_decision")} | {"available": found.get("available")},
        "proof": None,
    }
    if proof:
        entry = found.get("promotion") or found.get("gate_decision")
        if entry is not None:
            from mlops import audit

            doc = audit.prove(repo, entry["seq"])
            audit.check_proof(doc, "generated proof")  # never hand out a proof that does not verify
            out["proof"] = doc
            out["proof_of"] = "promotion" if found.get("promotion") else "gate_decision"
    return out


def _history_line(h: Any) -> str:
    if isinstance(h, dict) and "action" in h:
        move = f"{h.get('from') or '-'} -> {h.get('to') or '-'}" if ("from" in h or "to" in h) else ""
        why = f" ({h['reason']})" if h.get("reason") else ""
        return f"{h.get('time', '')} {h['action']} {move}{why}".strip()[:240]
    return json.dumps(h, sort_keys=True)[:240]


def lineage_text(info: dict[str, Any]) -> str:
    """Human-readable lineage, one fact per line."""
    ds, ml, gate, dep = info["dataset"], info.get("mlflow") or {}, info["gate"], info["deployment"]
    lines = [
        f"version      {info['version']} ({info['model_type']}) in {info['location']}/",
        f"model sha256 {info['model_sha256']}",
        f"commit       {info['commit']}",
        f"seed         {info['seed']}   trained {info['created_at']}",
        f"dataset      {ds['source']}{' (SYNTHETIC)' if ds['synthetic'] else ''} sha256 {ds['sha256']}",
        f"             {ds['path']}  {ds.get('detail') or ''}".rstrip(),
    ]
    if ds.get("fallback_reason"):
        lines.append(f"             fallback: {ds['fallback_reason']}")
    prod = ds.get("production") or {}
    if prod:
        w = prod.get("window") or {}
        lines.append(f"             store {prod.get('store')}: predictions {w.get('since')} .. {w.get('until')}, "
                     f"feedback until {w.get('feedback_until')}; file sha256 {ds.get('file_sha256')}")  # fmt: skip
        for kind, listed in sorted((prod.get("parts") or {}).items()):
            for part in listed:
                lines.append(f"             {kind} part {part.get('path')} sha256 {part.get('sha256')}")
    if ml:
        lines.append(
            f"mlflow       run {ml.get('run_id')} (parent {ml.get('parent_run_id')}), "
            f"model version {ml.get('model_version')} {ml.get('model_uri') or ''}".rstrip()
        )
    else:
        lines.append("mlflow       not tracked (--no-tracking)")
    lines.append(
        f"gate         {gate['record']}: {'passed' if gate['passed'] else 'failed'}, {gate['decision']}"
        + (f" ({'; '.join(gate['reasons'])})" if gate["reasons"] else "")
    )
    if gate.get("promotion_reason"):
        lines.append(f"             {gate['promotion_reason']}")
    if dep["state_file"] is None:
        lines.append("deployment   no models/deployment.json")
    else:
        roles = ", ".join(dep["roles"]) or "not serving"
        lines.append(f"deployment   {roles}; {len(dep['history'])} history entries in {dep['state_file']}")
        for h in dep["history"]:
            lines.append(f"             {_history_line(h)}")
    audit = info["audit"]
    for kind in ("gate_decision", "promotion"):
        e = audit.get(kind)
        if e:
            ck = e.get("checkpoint")
            where = f"checkpoint #{ck['index']} (size {ck['size']}, root {ck['root']})" if ck else "no checkpoint yet"
            lines.append(f"audit        {kind}: seq {e['seq']} in {where}")
        elif kind == "promotion":
            lines.append(
                "audit        promotion: none (not promoted)"
                if audit.get("available")
                else "audit        log not available"
            )
    if info.get("card"):
        lines.append(f"card         {info['card']}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- skops content


def skops_content_digest(data: bytes) -> str:
    """SHA-256 over a skops file's content with its two sources of run-to-run noise removed.

    skops names every stored object by CPython's id() (the `__id__` fields and `<id>.npy` member names) and
    zip members carry the write time; neither is part of the model. Ids are renumbered in order of first
    appearance, members are hashed by renumbered name and bytes, timestamps are ignored.
    """
    zf = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(zf.read("schema.json"))
    ids: dict[int, int] = {}

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("__id__"), int):
                ids.setdefault(node["__id__"], len(ids))
            for key in node:
                collect(node[key])
        elif isinstance(node, list):
            for item in node:
                collect(item)

    def rename(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "__id__" and isinstance(value, int):
                    out[key] = ids[value]
                elif key == "file" and isinstance(value, str):
                    out[key] = _renamed_member(value, ids)
                elif node.get("__loader__") == "CachedNode" and key == "content" and isinstance(value, int):
                    out[key] = ids.get(value, value)
                else:
                    out[key] = rename(value)
            return out
        if isinstance(node, list):
            return [rename(v) for v in node]
        return node

    collect(schema)
    digest = hashlib.sha256(jsonio.canonical(rename(schema)))
    members = sorted((_renamed_member(n, ids), n) for n in zf.namelist() if n != "schema.json")
    for renamed, name in members:
        digest.update(b"\0" + renamed.encode() + b"\0" + hashlib.sha256(zf.read(name)).digest())
    return digest.hexdigest()


def _renamed_member(name: str, ids: dict[int, int]) -> str:
    stem, dot, ext = name.partition(".")
    if stem.isdigit() and int(stem) in ids:
        return f"obj{ids[int(stem)]}{dot}{ext}"
    return name


# ---------------------------------------------------------------------------------------------- reproduce


def _git(root: Path, *args: str, binary: bool = False) -> Any:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=not binary, timeout=120, check=False)


def _source_tree(repo: Repo, commit: str | None, into: Path) -> dict[str, Any]:
    """Export the recorded commit's tree into `into` (git archive), or say why the current tree is used."""
    if not commit or commit == "unknown":
        return {"kind": "current-tree", "reason": "the manifest records no commit (trained outside git)"}
    ok = _git(repo.root, "cat-file", "-e", f"{commit}^{{commit}}")
    if ok.returncode != 0:
        return {"kind": "current-tree", "reason": f"commit {commit[:12]} is not in this repository (fetch it first)"}
    # `git archive` gives the commit's tree without registering a worktree in the shared .git, so concurrent
    # git commands in the checkout are never affected and nothing is left behind if this process is killed.
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit], cwd=repo.root, capture_output=True, timeout=300, check=False
    )
    if archive.returncode != 0:
        raise BadInput(
            f"commit {commit}",
            f"git archive failed: {archive.stderr.decode(errors='replace').strip()}",
            "check the repository",
        )
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return {"kind": "commit", "commit": commit}


def _prepare_data(repo: Repo, manifest: dict[str, Any], target: Path, dataset_cfg: dict[str, Any]) -> dict[str, Any]:
    """Put the recorded data set into the scratch repo (regenerated when synthetic) and check its sha256."""
    ds = manifest.get("dataset") or {}
    want = ds.get("sha256")
    where = f"{manifest['version']}: manifest /dataset"
    if ds.get("source") == "synthetic":
        m = _SYNTHETIC_RE.search(ds.get("detail") or "")
        if not m:
            raise BadInput(
                where,
                f"synthetic data without generator parameters ({ds.get('detail')!r})",
                "retrain: this manifest predates recorded generator parameters",
            )
        rows, seed = int(m.group(1)), int(m.group(2))
        from mlops import synthetic

        frame = synthetic.generate(rows, seed)
        payload = frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
        path = target / "datasets" / "cache" / f"synthetic-{rows}-{seed}.csv"
        jsonio.atomic_write_bytes(path, payload)
        # The sidecar makes the child run use this file instead of generating its own.
        jsonio.write_json(
            path.with_name(path.name + ".source.json"), {"fetched_at": ds.get("fetched_at"), "source": "synthetic"}
        )
        got = hashlib.sha256(payload).hexdigest()
        dataset_cfg.update(source="synthetic", synthetic={"rows": rows, "seed": seed})
        how = f"regenerated with mlops.synthetic.generate(rows={rows}, seed={seed})"
    elif ds.get("source") == "production":
        got, how = _production_data(repo, ds, target, dataset_cfg, where)
    else:
        rel = ds.get("path")
        src = repo.root / rel if rel else None
        if src is None or not src.is_file():
            raise BadInput(
                where,
                f"the {ds.get('source')} data file {rel!r} is not in this checkout",
                "restore the data file (it is not committed: fetch it again or copy it there)",
            )
        got = registry.sha256_file(src)
        if got == want and not Path(rel).is_absolute():  # a file outside the repository is read where it is
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            side = src.with_name(src.name + ".source.json")
            if side.exists():
                shutil.copyfile(side, dest.with_name(dest.name + ".source.json"))
        # Local and Kaggle data both train through the local source: the bytes, not the route, matter.
        dataset_cfg.update(source="local", local={"path": rel})
        how = f"copied from {rel}"
    if got != want:
        raise CheckFailed(
            f"{manifest['version']}: the data set's sha256 is {got[:12]}…, the manifest records {str(want)[:12]}…; "
            "the recorded data is not available, so the model cannot be reproduced"
        )
    return {"sha256": got, "matches": True, "how": how}


def _production_data(
    repo: Repo, ds: dict[str, Any], target: Path, dataset_cfg: dict[str, Any], where: str
) -> tuple[str, str]:
    """The recorded production data set (its file, or built again from the store's recorded parts), copied into
    the scratch repo as a local file: the rows, not the route, matter. Returns (derived sha256, how)."""
    from mlops import config, data

    found = data.locate(config.load(repo), ds)
    if found is None:
        raise BadInput(
            where,
            "the production data set's file is not here and the store no longer holds exactly the recorded parts",
            "restore the file, or point config/store.json at the recorded store",
        )
    rel = f"datasets/cache/{found.path.name}"
    dest = target / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(found.path, dest)
    dataset_cfg.update(source="local", local={"path": rel})
    return found.sha256, f"production data set {repo.rel(found.path)} (file sha256 {found.file_sha256})"


def _child_env(code_root: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CHILD_ENV_DROP}
    if code_root is not None:
        env["PYTHONPATH"] = str(code_root) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["GIT_PYTHON_REFRESH"] = "quiet"
    return env


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}/{key}: present on one side only"
            diff = _first_difference(a[key], b[key], f"{path}/{key}")
            if diff:
                return diff
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            diff = _first_difference(x, y, f"{path}/{i}")
            if diff:
                return diff
        return None
    return None if a == b and type(a) is type(b) else f"{path}: recorded {a!r}, reproduced {b!r}"


def reproduce(cfg: Config, version: str, *, keep: Path | None = None) -> dict[str, Any]:
    """Re-train `version` from its recorded commit, data and seed in a scratch repo and compare."""
    repo = cfg.repo
    folder = registry.find_version(repo, version)
    manifest = registry.verify_integrity(folder, repo)
    model_type = manifest["model_type"]
    scratch = Path(tempfile.mkdtemp(prefix="mlops-reproduce-")) if keep is None else keep
    if keep is not None:
        if keep.exists() and not keep.is_dir():
            raise BadInput("--keep", f"{keep} is a file", "pass a new folder")
        if keep.exists() and any(keep.iterdir()):
            raise BadInput("--keep", f"{keep} exists and is not empty", "pass a new folder")
        keep.mkdir(parents=True, exist_ok=True)
    try:
        source = _source_tree(repo, manifest.get("commit"), scratch / "src")
        src_root = scratch / "src" if source["kind"] == "commit" else repo.root
        if not (src_root / "config").is_dir():
            raise BadInput(f"commit {manifest.get('commit')}", "has no config/ folder", "reproduce from a full fork")
        target = scratch / "repo"
        shutil.copytree(src_root / "config", target / "config")
        for sub in ("models", "metadata", "datasets"):
            (target / sub).mkdir(exist_ok=True)
        ds_path = target / "config" / "dataset.json"
        dataset_cfg = json.loads(ds_path.read_text(encoding="utf-8"))
        data = _prepare_data(repo, manifest, target, dataset_cfg)
        jsonio.write_json(ds_path, dataset_cfg)
        code_root = src_root if (source["kind"] == "commit" and (src_root / "mlops" / "__init__.py").exists()) else None
        env = _child_env(code_root)
        which = subprocess.run(
            [sys.executable, "-c", "import mlops, training; print(mlops.__file__)"],
            cwd=target,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        imported_from = Path(which.stdout.strip()).parent if which.returncode == 0 else "unknown"
        source["code"] = (
            f"mlops and training/ from commit {manifest.get('commit')} ({imported_from})"
            if code_root is not None
            else f"the installed mlops package ({imported_from})"
            + (", because the recorded commit holds no mlops/ package" if source["kind"] == "commit" else "")
        )
        cmd = [
            sys.executable,
            "-m",
            "mlops",
            "--repo",
            str(target),
            "train",
            "--no-download",
            "--no-tracking",
            "--model-types",
            model_type,
            "--seed",
            str(manifest.get("seed")),
            "--allow-invalid-data",
        ]
        child = subprocess.run(cmd, cwd=target, env=env, capture_output=True, text=True, timeout=3600, check=False)
        if child.returncode != 0:
            tail = (child.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise CheckFailed(f"reproduce {version}: the re-training run exited {child.returncode}: {tail}")
        produced = registry.all_versions(Repo.at(target))
        if len(produced) != 1:
            raise CheckFailed(
                f"reproduce {version}: expected one trained model in the scratch repo, found {len(produced)}"
            )
        ((new_version, new_folder),) = produced.items()
        new_manifest = registry.verify_integrity(new_folder)
        return _compare(repo, folder, manifest, new_folder, new_manifest, source, data, target, keep is not None)
    finally:
        if keep is None:
            shutil.rmtree(scratch, ignore_errors=True)


def _compare(
    repo: Repo,
    folder: Path,
    old: dict[str, Any],
    new_folder: Path,
    new: dict[str, Any],
    source: dict[str, Any],
    data: dict[str, Any],
    target: Path,
    kept: bool,
) -> dict[str, Any]:
    checks = {}
    for key in COMPARED:
        diff = _first_difference(old.get(key), new.get(key), key)
        checks[key] = {"identical": diff is None, "difference": diff}
    old_bytes = (folder / registry.MODEL_FILE).read_bytes()
    new_bytes = (new_folder / registry.MODEL_FILE).read_bytes()
    bytes_identical = old_bytes == new_bytes
    content_identical = skops_content_digest(old_bytes) == skops_content_digest(new_bytes)
    predictions = _compare_predictions(repo, folder, new_folder, target)
    metrics_identical = all(c["identical"] for c in checks.values())
    if bytes_identical:
        model_note = "model file byte-identical"
    elif content_identical:
        model_note = (
            "model file content identical; the bytes differ only where skops writes process-specific values "
            "(object ids from id() as names and references, zip member timestamps), which no retraining can repeat"
        )
    else:
        model_note = "model file content differs"
    ok = metrics_identical and (bytes_identical or content_identical) and predictions.get("identical", True)
    hint = None
    if not ok and not source["code"].startswith("mlops and training/ from commit"):
        hint = (
            "the code that ran is not the recorded commit's, so a change to mlops/ or training/ since training "
            "explains differences as well as non-determinism does; reproduce in a fork whose commits hold the code"
        )
    return {
        "hint": hint,
        "version": old["version"],
        "reproduced_version": new["version"],
        "model_type": old["model_type"],
        "source": source,
        "dataset": data,
        "seed": old.get("seed"),
        "checks": checks,
        "metrics_identical": metrics_identical,
        "model_bytes_identical": bytes_identical,
        "model_content_identical": content_identical,
        "model_note": model_note,
        "predictions": predictions,
        "reproduced": ok,
        "scratch": str(target) if kept else None,
    }


def _compare_predictions(repo: Repo, folder: Path, new_folder: Path, target: Path) -> dict[str, Any]:
    """predict_proba of both models on every row of the data set, compared bit for bit."""
    import numpy as np

    from mlops import config, data

    try:
        cfg = config.load(Repo.at(target))
        dataset = data.acquire(cfg, no_download=True)
        table = data.read_table(dataset.path)
        prepared = data.prepare(cfg, table, str(dataset.path))
    except Exception as exc:  # noqa: BLE001 - an older commit's config may not load with this code
        return {"identical": None, "note": f"not compared: the data could not be prepared ({exc})"}
    old_model, _ = registry.load_model(folder, repo)
    new_model, _ = registry.load_model(new_folder)
    a = old_model.predict_proba(prepared.X)[:, 1]
    b = new_model.predict_proba(prepared.X)[:, 1]
    same = bool(np.array_equal(a, b))
    return {
        "identical": same,
        "rows": int(len(a)),
        "max_abs_difference": float(np.max(np.abs(a - b))) if len(a) else 0.0,
    }


def reproduce_text(result: dict[str, Any]) -> str:
    """The comparison, one line per thing compared."""
    src = result["source"]
    code = src["code"] if src["kind"] == "commit" else f"current tree: {src['reason']}; {src['code']}"
    ds = result["dataset"]
    rows = [
        ("code", code),
        ("data", f"sha256 {ds['sha256']} matches the manifest ({ds['how']})"),
    ]
    for key, c in result["checks"].items():
        rows.append((key, "identical" if c["identical"] else f"DIFFERENT: {c['difference']}"))
    p = result["predictions"]
    if p.get("identical") is None:
        rows.append(("predictions", str(p.get("note"))))
    else:
        state = "identical" if p["identical"] else "DIFFERENT"
        rows.append(("predictions", f"{state} on {p['rows']} rows (max |difference| {p['max_abs_difference']:.3g})"))
    rows.append(("model", result["model_note"]))
    rows.append(("result", "REPRODUCED: identical metrics" if result["reproduced"] else "NOT REPRODUCED"))
    if result.get("hint"):
        rows.append(("hint", result["hint"]))
    if result.get("scratch"):
        rows.append(("scratch", result["scratch"]))
    head = f"reproduce {result['version']} ({result['model_type']}, seed {result['seed']})"
    return "\n".join([head] + [f"{k:<18} {v}" for k, v in rows])
