"""`mlops serve` over loopback against the model alone and `mlflow models serve`, in one run, same model and rows.

Measured: the model's own predict_proba on one row in process (the floor), the router in process,
a bare http.server echo and a bare uvicorn echo (the two HTTP stacks' floors), `mlops serve`
(subprocess) and `mlflow models serve` (subprocess, 127.0.0.1, --env-manager local, the same
pipeline saved with mlflow.sklearn) with one keep-alive client and with C concurrent clients:
p50, p95 and requests/s. The model alone and the two servers are measured in five interleaved rounds
(this VM's speed drifts within minutes), the HTTP floors once. Goals (issue 17): mlops serve
single-client p50 <= 1.5x the model alone; C-client throughput >= 2x mlflow models serve's.

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
ROUNDS = 5
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


async def _asgi_echo(scope: dict, receive: object, send: object) -> None:
    """The smallest ASGI app: what uvicorn costs before any framework (FastAPI, as MLflow's server adds)."""
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()  # type: ignore[operator]
        body += message.get("body", b"")
        more = message.get("more_body", False)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": body})  # type: ignore[operator]


def uvicorn_echo(rows: list[dict], n: int) -> list[float]:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(_asgi_echo, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        return client(sock.getsockname()[1], rows, n, "uvicorn")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow(repo: Path, tmp: Path) -> tuple[subprocess.Popen, int]:
    """The production pipeline saved as an MLflow model, served by `mlflow models serve` on 127.0.0.1."""
    import mlflow.sklearn

    from mlops.repo import Repo
    from mlops.serving import Router

    model = Router(Repo.at(repo), log=False).models["production"]
    import skops.io

    # MLflow saves with skops and refuses types it was not told to trust: trust exactly the model file's own.
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model.pipeline))
    mlflow.sklearn.save_model(model.pipeline, tmp / "mlflow-model", skops_trusted_types=trusted)
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)  # mlflow runs `uvicorn` from PATH: this environment's
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_TRACKING_URI": f"file://{tmp}/mlruns",
    }
    proc = subprocess.Popen(
        [str(Path(bin_dir) / "mlflow"), "models", "serve", "-m", str(tmp / "mlflow-model"),
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"mlflow models serve exited {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.2)
    raise SystemExit("mlflow models serve did not answer /ping within 120 s")


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


def client(port: int, rows: list[dict], n: int, prefix: str, mlflow: bool = False) -> list[float]:
    """n single-row requests on one keep-alive connection (mlflow: POST /invocations dataframe_records)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    path = "/invocations" if mlflow else "/predict"
    times = []
    for i in range(n):
        row = rows[i % len(rows)]
        body = json.dumps({"dataframe_records": [row]} if mlflow else {"request_id": f"{prefix}-{i}", "features": row})
        t0 = time.perf_counter()
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        times.append((time.perf_counter() - t0) * 1000)
        if resp.status != 200:
            raise SystemExit(f"request {i}: HTTP {resp.status} {data[:200]!r}")
    conn.close()
    return times


def concurrent(port: int, rows: list[dict], n: int, clients: int, mlflow: bool = False) -> tuple[float, list[float]]:
    results: list[list[float]] = [[] for _ in range(clients)]
    per = n // clients
    threads = [
        threading.Thread(target=lambda k=k: results[k].extend(client(port, rows, per, f"c{k}", mlflow)))
        for k in range(clients)
    ]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return per * clients / wall, [x for r in results for x in r]


class Pool:
    """Latencies and wall time of one kind of measurement, added up over the rounds."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.seconds = 0.0

    def add(self, times: list[float], seconds: float) -> None:
        self.times += times
        self.seconds += seconds

    @property
    def rate(self) -> float:
        return len(self.times) / self.seconds if self.seconds else 0.0


def measure_round(targets: dict[str, tuple[int, bool]], rows: list[dict], n: int, clients: int, pools: dict) -> None:
    """One round: each server with one client, then with `clients`; back to back, so drift hits all alike."""
    for name, (port, mlflow) in targets.items():
        t0 = time.perf_counter()
        times = client(port, rows, n, f"seq-{len(pools[name, 1].times)}", mlflow)
        pools[name, 1].add(times, time.perf_counter() - t0)
    for name, (port, mlflow) in targets.items():
        t0 = time.perf_counter()
        _rate, times = concurrent(port, rows, n, clients, mlflow)
        pools[name, clients].add(times, time.perf_counter() - t0)


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="single-row requests per measurement")
    parser.add_argument("--clients", type=int, default=4, help="concurrent keep-alive clients")
    args = parser.parse_args()
    n = max(50, min(args.requests, 20000))  # bounded: the prediction log grows by one line per request

    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-serve-"))
    proc = flow = None
    try:
        repo, rows = setup(tmp)
        echo = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
        threading.Thread(target=echo.serve_forever, daemon=True).start()
        echo_times = client(echo.server_address[1], rows, n, "echo")
        echo.shutdown()
        uvicorn_times = uvicorn_echo(rows, n)

        env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlops", "--repo", str(repo), "serve", "--port", "0"],
            stdout=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        line = proc.stdout.readline()
        port = int(line.strip().rsplit(":", 1)[1].split()[0])
        flow, flow_port = start_mlflow(repo, tmp)
        targets = {"mlops": (port, False), "mlflow": (flow_port, True)}
        for p, mlflow in targets.values():
            client(p, rows, 20, "warmup", mlflow)
        # Rounds: the model alone, then each server, back to back; this VM's speed drifts within minutes.
        pools = {key: Pool() for key in [(k, c) for k in targets for c in (1, args.clients)]}
        anchor: dict[str, list[float]] = {"model": [], "router": []}
        per = max(10, n // ROUNDS)
        for _ in range(ROUNDS):
            for key, values in anchors(repo, rows, per).items():
                anchor[key] += values
            measure_round(targets, rows, per, args.clients, pools)
    finally:
        stop(proc)
        stop(flow)
        shutil.rmtree(tmp, ignore_errors=True)

    def row(name: str, times: list[float], tput: float | None = None) -> str:
        rate = f"   {tput:8.1f} req/s" if tput is not None else ""
        return f"  {name:<44} p50 {statistics.median(times):7.3f} ms   p95 {pct(times, 95):7.3f} ms{rate}"

    c = args.clients
    print(f"single-row requests: {per * ROUNDS} per measurement in {ROUNDS} interleaved rounds, "
          f"{os.cpu_count()} CPUs, logistic_regression model")  # fmt: skip
    print("in process:")
    print(row("model alone: predict_proba, one row", anchor["model"]))
    print(row("Router.predict + prediction log", anchor["router"]))
    print("HTTP floors over loopback (echo, no model):")
    print(row("http.server (ThreadingHTTPServer)", echo_times))
    print(row("uvicorn (bare ASGI app)", uvicorn_times))
    for name, title in (("mlops", "mlops serve"), ("mlflow", "mlflow models serve --env-manager local")):
        print(f"{title}:")
        print(row("1 keep-alive client", pools[name, 1].times, pools[name, 1].rate))
        print(row(f"{c} concurrent clients", pools[name, c].times, pools[name, c].rate))
    p50_ratio = statistics.median(pools["mlops", 1].times) / statistics.median(anchor["model"])
    tput_ratio = pools["mlops", c].rate / pools["mlflow", c].rate
    print("goals:")
    print(f"  mlops serve 1-client p50 / model alone p50: {p50_ratio:5.2f}x (goal <= 1.5x)")
    print(f"  mlops serve / mlflow models serve, {c} clients req/s: {tput_ratio:5.2f}x (goal >= 2x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
