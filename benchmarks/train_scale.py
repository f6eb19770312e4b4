"""One training process against two shard processes on the same tuning budget and data, and what tuning gains.

Anchor: `mlops train --hpo --trials T` in one process (every configured model type, its study in-process).
Measured: `mlops train --shard 1/2` and `--shard 2/2` started together (each tunes and fits the types dealt
to it; in-process studies), then `mlops gate --candidates` fanning them in. Goal: the two shards' wall time
<= 0.6x the one process on 2 cores. Also printed, from the gate records: per model type, the best CV score of
the study against the default parameters' CV score (the tuned-versus-default gain). Both runs use
--no-tracking (MLflow's cost is the same either way and is measured by benchmarks/train_overhead.py).

    .venv/bin/python benchmarks/train_scale.py [--rows 6000] [--trials 8]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MLOPS = str(Path(sys.executable).with_name("mlops"))


def _repo(base: Path, rows: int) -> Path:
    repo = base
    shutil.copytree(ROOT / "config", repo / "config")
    for sub in ("datasets", "models", "metadata"):
        (repo / sub).mkdir(parents=True, exist_ok=True)
    for name, patch in (
        ("dataset", {"synthetic": {"rows": rows, "seed": 11}}),
        ("training-schedule", {"datasets": {"minimum_samples": min(rows, 1000)}}),
    ):
        path = repo / "config" / f"{name}.json"
        doc = json.loads(path.read_text())
        for key, value in patch.items():
            doc.setdefault(key, {}).update(value)
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return repo


def _run(repo: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OPTUNA_", "GITHUB_"))}
    env["PYTHONWARNINGS"] = "ignore"
    return subprocess.Popen([MLOPS, "--repo", str(repo), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


def _wait(*procs: subprocess.Popen) -> None:
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"mlops failed ({proc.returncode}):\n{out[-3000:]}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args()
    flags = ["train", "--no-download", "--no-tracking", "--hpo", "--trials", str(args.trials)]
    work = Path(tempfile.mkdtemp(prefix="train-scale-"))
    try:
        one, sharded = _repo(work / "one", args.rows), _repo(work / "sharded", args.rows)
        _wait(_run(one, "data", "validate", "--no-download"), _run(sharded, "data", "validate", "--no-download"))

        began = time.perf_counter()
        _wait(_run(one, *flags))
        single = time.perf_counter() - began

        began = time.perf_counter()
        outs = [str(work / "s1"), str(work / "s2")]
        _wait(*[_run(sharded, *flags, "--shard", f"{i}/2", "--out", out) for i, out in enumerate(outs, 1)])
        shards = time.perf_counter() - began
        _wait(_run(sharded, "gate", "--no-download", "--no-tracking", "--candidates", *outs))
        fanned = time.perf_counter() - began

        budget = f"{args.trials} trials x 3 folds per type"
        print(f"data: synthetic, {args.rows} rows; budget: {budget}; {os.cpu_count()} cores")
        print(f"one process (mlops train --hpo):            {single:7.1f} s")
        print(f"two shard processes in parallel:            {shards:7.1f} s  = {shards / single:.2f}x (goal <= 0.60x)")
        print(f"two shards + mlops gate --candidates:       {fanned:7.1f} s  = {fanned / single:.2f}x")
        print("tuned against default parameters, CV on the training split (one process):")
        for path in sorted((one / "metadata/gates").glob("*.json")):
            hpo = json.loads(path.read_text())["hpo"]
            name = json.loads(path.read_text())["model_type"]
            best = "-" if hpo["best_cv"] is None else f"{hpo['best_cv']:.4f}"
            counts = f"{hpo['complete']} complete, {hpo['pruned']} pruned; {hpo['chosen']}"
            print(f"  {name:<24} {hpo['metric']} default {hpo['default_cv']:.4f}  best {best}  "
                  f"gain {hpo['cv_gain']:+.4f}  ({counts})")  # fmt: skip
        current = {
            r: json.loads((r / "models/current/manifest.json").read_text())["model_type"] for r in (one, sharded)
        }
        print(f"promoted: one process {current[one]}, shards + gate {current[sharded]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
