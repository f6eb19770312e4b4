"""`mlops demo`: the whole loop on the embedded synthetic default, in a scratch repository.

validate -> train -> gate -> card + audit -> deploy canary -> simulated production traffic
(with drift) -> monitor -> alerts in the dry-run outbox -> retention dry run. Each step is the
same CLI command a workflow runs; the scratch folder is a git repository so commits and
`audit verify --against` behave as in a fork.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from mlops import jsonio
from mlops.commands import args as numbers
from mlops.errors import CheckFailed

MARKER = ".mlops-demo"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole loop on synthetic data in a scratch repo")
    p.add_argument("--workdir", default=".demo", help="scratch folder (recreated; default .demo)")
    p.add_argument("--rows", type=numbers.demo_rows, default=24000, help="synthetic rows to train on (default 24000)")
    p.set_defaults(func=run)


# The scratch repository's commits are the demo's, whatever identity the user has configured.
DEMO_IDENTITY = {"GIT_AUTHOR_NAME": "mlops-demo", "GIT_AUTHOR_EMAIL": "demo@example.invalid",
                 "GIT_COMMITTER_NAME": "mlops-demo", "GIT_COMMITTER_EMAIL": "demo@example.invalid"}  # fmt: skip


def _git(root: Path, *args: str) -> None:
    from mlops import git
    from mlops.errors import CheckFailed

    proc = git.run(root, *args, env=DEMO_IDENTITY)
    if proc.returncode != 0:
        raise CheckFailed(f"demo stopped: git {' '.join(args)} failed (exit {proc.returncode}): {proc.stderr.strip()}")


def _prepare(source: Path, work: Path, rows: int) -> None:
    from mlops.errors import BadInput

    if work.exists():
        if not (work / MARKER).exists():
            raise BadInput(str(work), "exists and is not a demo folder", "pick another --workdir or remove it")
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / MARKER).write_text("scratch folder made by `mlops demo`; safe to delete\n")
    shutil.copytree(source / "config", work / "config")
    (work / "datasets").mkdir()
    for contract in (source / "datasets").glob("*.json"):  # the reviewed schema contracts
        shutil.copy(contract, work / "datasets" / contract.name)
    ds_path = work / "config" / "dataset.json"
    ds = jsonio.read_json(ds_path, "config file")
    ds["source"] = "synthetic"
    ds.setdefault("synthetic", {})["rows"] = rows
    jsonio.write_json(ds_path, ds)
    for sub in ("models", "metadata"):
        (work / sub).mkdir(exist_ok=True)
    (work / ".gitignore").write_text(".mlflow/\ndatasets/cache/\ndatasets/production/\n")
    _git(work, "init", "-q", "-b", "main")
    _git(work, "add", "-A")
    _git(work, "commit", "-qm", "demo: initial config")


def _commit(work: Path, message: str) -> None:
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "--allow-empty", "-m", message)


def _new_week(work: Path) -> None:
    """A week later the export has new rows: the synthetic generator with the next seed."""
    ds_path = work / "config" / "dataset.json"
    ds = jsonio.read_json(ds_path, "config file")
    ds["synthetic"]["seed"] = int(ds["synthetic"].get("seed", 7)) + 1
    jsonio.write_json(ds_path, ds)
    _commit(work, "demo: week 2 data export")
    print("\n==> a week passes: config/dataset.json now points at a fresh export (synthetic seed + 1)")


DRIFTING = ["support_calls", "late_payments", "logins_30d", "days_since_login"]


def _post(url: str, body: object) -> dict:
    import urllib.request

    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def _serve_traffic(work: Path, *, rows: int, shift: float, seed: int) -> str:
    """Start `mlops serve` on a free port, send predictions and their labels over HTTP, then stop it.

    The server answers once a row is in its write-ahead log; SIGTERM ships what is left to the log
    store (config/store.json), where canary analysis and monitoring read it.
    """
    import signal
    import subprocess
    import sys

    from mlops import synthetic

    frame = synthetic.generate(rows, seed + 100)
    scale = synthetic.generate(5000, 0)[DRIFTING].std()
    for column in DRIFTING:
        frame[column] = frame[column] + shift * float(scale[column])
    labels = frame.pop(synthetic.LABEL).astype(int).tolist()
    records = json.loads(frame.to_json(orient="records"))
    ids = [f"demo-{seed}-{i:06d}" for i in range(rows)]
    argv = [sys.executable, "-m", "mlops", "--repo", str(work), "serve", "--port", "0"]
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline() if server.stdout else ""
        if not line.startswith("serving on http://"):
            raise CheckFailed(f"demo stopped: `mlops serve` did not start ({line.strip() or 'no output'})")
        base = line.split()[2]
        roles: dict[str, int] = {}
        for start in range(0, rows, 500):
            part = slice(start, start + 500)
            batch = [{"request_id": r, "features": f} for r, f in zip(ids[part], records[part], strict=True)]
            for answer in _post(f"{base}/predict", {"instances": batch})["predictions"]:
                roles[answer["role"]] = roles.get(answer["role"], 0) + 1
            feedback = [{"request_id": r, "label": y} for r, y in zip(ids[part], labels[part], strict=True)]
            _post(f"{base}/feedback", {"feedback": feedback})
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
    return f"answered {roles}, {rows} labels sent, write-ahead log shipped to the store"


def run(args: argparse.Namespace) -> int:
    from mlops.cli import main

    source = Path(args.repo).resolve()
    work = Path(args.workdir)
    work = work if work.is_absolute() else source / work
    _prepare(source, work, args.rows)
    for key in ("GITHUB_TOKEN", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
        os.environ.pop(key, None)  # the demo is a dry run: alerts go to the outbox
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    started = time.monotonic()

    def step(title: str, *argv: str, ok: tuple[int, ...] = (0,)) -> int:
        print(f"\n==> {title}: mlops {' '.join(argv)}", flush=True)
        began = time.monotonic()
        code = main(["--repo", str(work), *argv])
        print(f"    (exit {code}, {time.monotonic() - began:.1f} s)", flush=True)
        if code not in ok:
            from mlops.errors import CheckFailed

            raise CheckFailed(f"demo stopped: `mlops {' '.join(argv)}` exited {code}")
        return code

    step("check config", "config", "check")
    step("validate week 1 data", "data", "validate", ok=(0, 1))
    step("train week 1: every model type, gate, promote, card, audit", "train", "--no-download")
    step("first deployment: the champion takes all traffic", "deploy", "--mode", "full")
    _commit(work, "demo: week 1 model in production")
    _new_week(work)
    step("validate week 2 data", "data", "validate", ok=(0, 1))
    step("train week 2 on fresh data", "train", "--no-download")
    step("deploy the new champion as a 10% canary", "deploy", "--mode", "canary", "--traffic", "0.1", ok=(0, 1))
    step("verify the audit log", "audit", "verify")
    _commit(work, "demo: week 2 canary")
    print("\n==> production traffic through `mlops serve`: 6000 requests (4 features drift by 0.5 sd) and their labels")
    began = time.monotonic()
    shipped = _serve_traffic(work, rows=6000, shift=0.5, seed=1)
    print(f"    {shipped} ({time.monotonic() - began:.1f} s)", flush=True)
    step("canary analysis on the logged window (report only)", "canary", "analyze", ok=(0, 1))
    step("monitor the production window", "monitor")
    step("send alerts (no token: dry run to the outbox)", "alerts", "flush", ok=(0, 1))
    step("retention dry run", "retention", "--dry-run")
    _commit(work, "demo: monitoring state")
    step("the audit log only grew since the last commit", "audit", "verify", "--against", "HEAD~1")

    manifest_path = work / "models" / "current" / "manifest.json"
    version = json.loads(manifest_path.read_text())["version"] if manifest_path.exists() else None
    if version:
        step("lineage of the champion", "lineage", version)
    elapsed = time.monotonic() - started
    rel = lambda p: os.path.relpath(p, Path.cwd())  # noqa: E731
    print(f"\nDemo finished in {elapsed:.0f} s. Where to look:")
    print(f"  champion          {rel(manifest_path)}")
    if version:
        print(f"  model card        {rel(work / 'metadata' / 'cards' / (version + '.md'))}")
    print(f"  gate records      {rel(work / 'metadata' / 'gates')}/")
    print(f"  audit checkpoint  {rel(work / 'metadata' / 'audit')}/")
    print(f"  reports           {rel(work / 'metadata' / 'reports')}/")
    print(f"  outbox issues     {rel(work / 'metadata' / 'alerts')}/")
    print(f"  deployment state  {rel(work / 'models' / 'deployment.json')}")
    db = (work / ".mlflow" / "mlflow.db").resolve()
    print(f"  MLflow UI         MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false .venv/bin/mlflow ui "
          f"--host 127.0.0.1 --backend-store-uri sqlite:///{db}")  # fmt: skip
    return 0
