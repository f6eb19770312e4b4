"""Whole dataset validation vs `pyarrow.csv.read_csv` alone, on 1,000,000 rows x 22 columns.

Prints, in one run: the anchor (read_csv alone), the whole validation (hardened read + every
check, with a snapshot to compare against so the drift check runs), their ratio (goal <= 1.5x),
and the validation's peak memory against the Arrow table's size (goal < 2x). Each measurement
runs in a fresh subprocess (best of --repeat, anchor and validation alternating), so peak RSS is
that step's own.

    .venv/bin/python benchmarks/validate.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "validate"

ANCHOR = r"""
import json, sys, time
import pyarrow as pa, pyarrow.csv as pcsv
def hwm():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the parent process.
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
base = hwm()
t0, c0 = time.perf_counter(), time.process_time()
table = pcsv.read_csv(sys.argv[1])
elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
peak = hwm()
print(json.dumps({"seconds": elapsed, "cpu": cpu, "nbytes": table.nbytes, "rows": table.num_rows,
                  "cols": table.num_columns, "rss_delta": peak - base,
                  "pool_max": pa.default_memory_pool().max_memory()}))
"""

WHOLE = r"""
import json, sys, time
import pyarrow as pa, pyarrow.csv, pyarrow.compute, numpy, pandas, scipy.stats
def hwm():
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
from mlops import config, data, validation, pii, drift, profile, tabular
from mlops.repo import Repo
cfg = config.load(Repo.at(sys.argv[1]))
path = config.resolve(cfg.repo, cfg.dataset.local.path)
dataset = data.DatasetFile(path, sys.argv[2], "local", sys.argv[3], None, "benchmark")
base = hwm()
t0, c0 = time.perf_counter(), time.process_time()
result = validation.validate(cfg, dataset)
elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
peak = hwm()
t1 = time.perf_counter()
validation.write_reports(cfg, result, audit=False)
write = time.perf_counter() - t1
print(json.dumps({"seconds": elapsed, "cpu": cpu, "write_seconds": write, "rss_delta": peak - base,
                  "pool_max": pa.default_memory_pool().max_memory(), "passed": result.passed,
                  "checks": {c.name: [c.status, c.summary] for c in result.checks}}))
"""

PER_CHECK = r"""
import json, sys, time
import pandas, scipy.stats
from mlops import config, data, validation, pii, drift, profile
from mlops.repo import Repo
cfg = config.load(Repo.at(sys.argv[1]))
path = config.resolve(cfg.repo, cfg.dataset.local.path)
dataset = data.DatasetFile(path, sys.argv[2], "local", sys.argv[3], None, "benchmark")
t = time.perf_counter(); table = data.read_table(path, "bench"); out = {"read (hardened)": time.perf_counter() - t}
memo = validation.ColumnMemo()  # shared by the contract and PII checks, as validate() shares it
steps = {
    "freshness": lambda: validation.check_freshness(cfg, dataset, table),
    "size": lambda: validation.check_size(cfg, table),
    "class_balance": lambda: validation.check_class_balance(cfg, table),
    "missing_values": lambda: validation.check_missing(cfg, table),
    "schema_contract": lambda: validation.check_contract(cfg, table, memo),
    "duplicates": lambda: validation.check_duplicates(cfg, table),
    "label_leak": lambda: validation.check_label_leak(cfg, table),
    "pii": lambda: validation.check_pii(cfg, table, memo),
}
for name, fn in steps.items():
    t = time.perf_counter(); fn(); out[name] = time.perf_counter() - t
t = time.perf_counter(); snap, sample = validation._snapshot_and_sample(cfg, table, dataset.sha256)
out["snapshot profile"] = time.perf_counter() - t
t = time.perf_counter(); validation.check_shift(cfg, snap, sample)
out["distribution_shift"] = time.perf_counter() - t
print(json.dumps(out))
"""


def build_csv(path: Path, rows: int) -> None:
    """20 numeric columns of different shapes, 1 categorical and the label: 22 columns."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    from mlops import synthetic

    frame = synthetic.generate(rows, 7).drop(columns=["plan"])
    table = pa.Table.from_pandas(frame, preserve_index=False)
    assert table.num_columns == 22, table.num_columns
    path.parent.mkdir(parents=True, exist_ok=True)
    pcsv.write_csv(table, path)
    del np


def sub(code: str, *args: str) -> dict:
    # Run outside the checkout, so the step imports the installed package, not a copy on the path.
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=OUT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from mlops import data, jsonio

    repo = OUT / "repo"
    if repo.exists():
        shutil.rmtree(repo)
    shutil.copytree(ROOT / "config", repo / "config")
    csv_path = OUT / f"data-{args.rows}.csv"
    if not csv_path.exists():
        print(f"building {csv_path.relative_to(ROOT)} ...", flush=True)
        build_csv(csv_path, args.rows)
    local = repo / "datasets" / "local" / "bench.csv"
    local.parent.mkdir(parents=True)
    local.symlink_to(csv_path)
    ds = json.loads((repo / "config/dataset.json").read_text())
    ds.update(source="local", local={"path": "datasets/local/bench.csv"}, categorical=["region"], slices=["region"])
    (repo / "config/dataset.json").write_text(json.dumps(ds, indent=2))
    sha = data.sha256_file(csv_path)
    fetched = jsonio.format_utc(jsonio.utc_now())
    size_mb = csv_path.stat().st_size / 1e6

    # The schema contract and a snapshot of "earlier" data (same profile, other sha) so every check runs.
    from mlops import config, validation
    from mlops.repo import Repo

    cfg = config.load(Repo.at(repo))
    contract = validation.infer_contract(
        cfg, data.read_table(local, "bench"), max_categories=50, source="datasets/local/bench.csv"
    )
    jsonio.write_json(validation.contract_path(cfg), contract)
    first = sub(WHOLE, str(repo), sha, fetched)
    snap_path = repo / "metadata/reports/validation" / ds["name"] / "snapshot-profile.json"
    snap = json.loads(snap_path.read_text())
    snap["sha256"] = "0" * 64
    snap_path.write_text(json.dumps(snap))

    # Anchor and validation alternate, so a machine that gets busier or quieter during the run
    # (other processes on its two cores) weighs on both alike rather than on whichever ran last.
    anchors, wholes = [], []
    for _ in range(args.repeat):
        anchors.append(sub(ANCHOR, str(csv_path)))
        wholes.append(sub(WHOLE, str(repo), sha, fetched))
    per_check = sub(PER_CHECK, str(repo), sha, fetched)
    anchor = min(anchors, key=lambda r: r["seconds"])
    whole = min(wholes, key=lambda r: r["seconds"])
    nbytes = anchor["nbytes"]
    peak = max(w["rss_delta"] for w in wholes)
    ratio = whole["seconds"] / anchor["seconds"]
    mem_ratio = peak / nbytes

    shape = f"{anchor['rows']:,} rows x {anchor['cols']} columns"
    print(f"data: {shape}, CSV {size_mb:.0f} MB, Arrow table {nbytes / 1e6:.0f} MB")
    print(f"anchor  pyarrow.csv.read_csv alone : {anchor['seconds']:.3f} s (best of {args.repeat}; "
          f"CPU {anchor['cpu']:.3f} s)")  # fmt: skip
    print(f"whole   validation (read + checks) : {whole['seconds']:.3f} s (best of {args.repeat}; "
          f"CPU {whole['cpu']:.3f} s); reports written in {whole['write_seconds']:.3f} s more")  # fmt: skip
    print("all runs (s): anchor " + " ".join(f"{r['seconds']:.3f}" for r in anchors)
          + ", validation " + " ".join(f"{r['seconds']:.3f}" for r in wholes))  # fmt: skip
    print(f"ratio   validation / read_csv      : {ratio:.2f}x (goal <= 1.5x) {'OK' if ratio <= 1.5 else 'MISSED'}")
    print(
        f"memory  validation peak RSS growth : {peak / 1e6:.0f} MB = {mem_ratio:.2f}x the Arrow table "
        f"(goal < 2x) {'OK' if mem_ratio < 2 else 'MISSED'}; Arrow pool peak {whole['pool_max'] / 1e6:.0f} MB; "
        f"read_csv alone grew RSS by {anchor['rss_delta'] / 1e6:.0f} MB"
    )
    print(f"first validation (no snapshot yet): {first['seconds']:.3f} s")
    print("per step (one run, seconds): " + ", ".join(f"{k} {v:.3f}" for k, v in per_check.items()))
    print("checks: " + ", ".join(f"{k}={v[0]}" for k, v in whole["checks"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
