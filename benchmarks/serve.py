"""`mlops serve` over loopback: single-row throughput and p95 latency, against anchors measured in the same run.

Anchors: the model's own predict_proba on one row (in process), the router's predict on one row in
process (routing + prediction-log append with fsync), and a bare http.server echo endpoint on the same
loopback (the HTTP floor). Then `mlops serve` runs as a subprocess and answers N single-row requests
from one keep-alive client, and from C concurrent clients. Ratios say where the time goes.

    .venv/bin/python benchmarks/serve.py [--requests 1000] [--clients 4]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from scratch import scratch_repo

# Small data and latency budgets far above any machine's (tests/support/deployed.py uses the same).
FAST = {
    "dataset": {"synthetic": {"rows": 4000, "seed": 7}},
    "training": {"bootstrap_iterations": 20},
    "training-schedule": {"datasets": {"minimum_samples": 1000}},
    "deployment": {"latency_budget_ms_p95": 10000.0, "health_check": {"latency_budget_ms_p95": 10000.0}},
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def mlops(repo: Path, *args: str) -> None:
    """Run the installed `mlops` CLI in process, quietly; stop the benchmark if it fails."""
    import contextlib
    import io

    from mlops.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(["--repo", str(repo), *args])
    if code:
        raise SystemExit(f"mlops {' '.join(args)} exited {code}:\n{out.getvalue()}")


def setup(tmp: Path) -> tuple[Path, list[dict]]:
    from mlops import synthetic

    repo = scratch_repo(tmp / "repo", FAST)
    mlops(repo, "train", "--no-download", "--model-types", "logistic_regression", "--no-tracking")
    mlops(repo, "deploy", "--mode", "full")
    rows = synthetic.generate(2000, 21).drop(columns=[synthetic.LABEL])
    return repo, rows.to_dict("records")


def anchors(repo: Path, rows: list[dict], n: int) -> dict[str, list[float]]:
    import pandas as pd

    from mlops.deploy import one_thread
    from mlops.repo import Repo
    from mlops.serving import Router

    router = Router(Repo.at(repo))
    model = router.models["production"]
    frames = [pd.DataFrame.from_records([rows[i % len(rows)]]) for i in range(n)]
    out: dict[str, list[float]] = {"model": [], "router": []}
    with one_thread():
        for i, frame in enumerate(frames):
            t0 = time.perf_counter()
            model.pipeline.predict_proba(frame[model.features])
            out["model"].append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            router.predict([rows[i % len(rows)]], [f"anchor-{i}"])
            out["router"].append((time.perf_counter() - t0) * 1000)
    return out


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as mlops serve does

    def log_message(self, *args: object) -> None:
        return

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def client(port: int, rows: list[dict], n: int, prefix: str) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = []
    for i in range(n):
        body = json.dumps({"request_id": f"{prefix}-{i}", "features": rows[i % len(rows)]})
        t0 = time.perf_counter()
        conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        times.append((time.perf_counter() - t0) * 1000)
        if resp.status != 200:
            raise SystemExit(f"request {i}: HTTP {resp.status} {data[:200]!r}")
    conn.close()
    return times


def concurrent(port: int, rows: list[dict], n: int, clients: int) -> tuple[float, list[float]]:
    results: list[list[float]] = [[] for _ in range(clients)]
    per = n // clients
    threads = [
        threading.Thread(target=lambda k=k: results[k].extend(client(port, rows, per, f"c{k}"))) for k in range(clients)
    ]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return per * clients / wall, [x for r in results for x in r]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="single-row requests per measurement")
    parser.add_argument("--clients", type=int, default=4, help="concurrent keep-alive clients")
    args = parser.parse_args()
    n = max(50, min(args.requests, 20000))  # bounded: the prediction log grows by one line per request

    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-serve-"))
    proc = None
    try:
        repo, rows = setup(tmp)
        anchor = anchors(repo, rows, n)

        echo = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
        threading.Thread(target=echo.serve_forever, daemon=True).start()
        echo_times = client(echo.server_address[1], rows, n, "echo")
        echo.shutdown()

        env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlops", "--repo", str(repo), "serve", "--port", "0"],
            stdout=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        line = proc.stdout.readline()
        port = int(line.strip().rsplit(":", 1)[1].split()[0])
        client(port, rows, 20, "warmup")
        t0 = time.perf_counter()
        serve_times = client(port, rows, n, "seq")
        seq_tput = n / (time.perf_counter() - t0)
        conc_tput, conc_times = concurrent(port, rows, n, args.clients)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)

    def row(name: str, times: list[float]) -> str:
        return f"  {name:<44} p50 {statistics.median(times):7.3f} ms   p95 {pct(times, 95):7.3f} ms"

    print(f"single-row requests: {n} per measurement, {os.cpu_count()} CPUs")
    print("anchors (same run):")
    print(row("model.predict_proba, in process", anchor["model"]))
    print(row("Router.predict + prediction log, in process", anchor["router"]))
    print(row("http.server echo over loopback", echo_times))
    print("mlops serve over loopback:")
    print(row("1 keep-alive client", serve_times) + f"   {seq_tput:8.1f} req/s")
    print(row(f"{args.clients} concurrent clients", conc_times) + f"   {conc_tput:8.1f} req/s")
    print("ratios:")
    print(f"  serve p95 / in-process router p95: {pct(serve_times, 95) / pct(anchor['router'], 95):6.2f}x")
    print(f"  serve p95 / http echo p95:         {pct(serve_times, 95) / pct(echo_times, 95):6.2f}x")
    print(f"  router p95 / model p95:            {pct(anchor['router'], 95) / pct(anchor['model'], 95):6.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
