"""The team backend on this machine: a PostgreSQL cluster and an `mlflow server` on it, on 127.0.0.1.

`make services` (python -m mlops.services start) makes a cluster in .services/postgres (first time: initdb
with trust authentication on loopback only), creates the databases `mlflow` and `optuna`, starts
`mlflow server` with the PostgreSQL backend store and proxied artifacts in .services/artifacts, and prints
the MLFLOW_TRACKING_URI and OPTUNA_STORAGE to export. `make services-stop` (… stop) stops both. The tests
start the same pair on free ports in a temp folder (tests/support/postgres.py). docs/team-backend.md.

PostgreSQL refuses to run as root: as root, the cluster's files belong to the `postgres` user and its
commands run through `runuser -u postgres`.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PG_USER = "postgres"  # the cluster's superuser role (trust authentication, loopback only)


def pg_bin(name: str) -> str:
    """A PostgreSQL server binary: on PATH, or Debian's /usr/lib/postgresql/<major>/bin."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise SystemExit(f"{name}: PostgreSQL is not installed; apt-get install -y postgresql (Debian/Ubuntu)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@dataclass
class Postgres:
    """A throwaway (or local) cluster in `folder`, listening on 127.0.0.1:`port` and a socket in the folder."""

    folder: Path
    port: int

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        cmd = [pg_bin("initdb"), "-D", str(self.data), "-U", PG_USER, "-A", "trust", "-E", "UTF8", "--no-sync"]
        subprocess.run(_as_owner(cmd), check=True, capture_output=True, text=True)

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.folder} -F -c fsync=off"
        cmd = [pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.folder / "postgres.log"), "-w"]
        done = subprocess.run(_as_owner([*cmd, "start"]), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip() or done.stdout.strip()}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            cmd = [pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]
            subprocess.run(_as_owner(cmd), capture_output=True, text=True)

    def create_database(self, name: str) -> None:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=PG_USER, dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()


def start_mlflow(backend_url: str, artifacts: Path, port: int, log: Path) -> subprocess.Popen:
    """`mlflow server` on 127.0.0.1:`port` with the PostgreSQL backend store and proxied artifacts; returns
    once it answers /health (it runs its migrations first)."""
    import urllib.request

    mlflow = str(Path(sys.executable).with_name("mlflow"))
    artifacts.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    cmd = [mlflow, "server", "--backend-store-uri", backend_url, "--artifacts-destination", str(artifacts),
           "--serve-artifacts", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    stop_process(proc.pid)
    raise RuntimeError(f"mlflow server did not answer on 127.0.0.1:{port} within 120 s; see {log}")


def stop_process(pid: int) -> None:
    """Stop a process group started with start_new_session (mlflow server and its workers)."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(50):
        try:
            os.waitpid(pid, os.WNOHANG)  # reap it when it is our own child (a zombie still "exists")
        except ChildProcessError:
            pass
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _start(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    pg = Postgres(root / "postgres", args.pg_port)
    pg.init()
    pg.start()
    for name in ("mlflow", "optuna"):
        pg.create_database(name)
    proc = start_mlflow(pg.url("mlflow"), root / "artifacts", args.mlflow_port, root / "mlflow.log")
    (root / "mlflow.pid").write_text(f"{proc.pid}\n")
    print(
        f"PostgreSQL on 127.0.0.1:{args.pg_port} (data {pg.data}), mlflow server on http://127.0.0.1:{args.mlflow_port}"
    )
    print("export the team backend to this shell:")
    print(f"  export MLFLOW_TRACKING_URI=http://127.0.0.1:{args.mlflow_port}")
    print(f"  export OPTUNA_STORAGE={pg.url('optuna')}")
    print("stop them with: make services-stop")
    return 0


def _stop(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    pid_file = root / "mlflow.pid"
    if pid_file.exists():
        stop_process(int(pid_file.read_text().strip()))
        pid_file.unlink()
    Postgres(root / "postgres", 0).stop()
    print(f"stopped the mlflow server and PostgreSQL of {root} (data kept; rm -rf it to start afresh)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops.services", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--dir", default=".services", help="where the cluster, artifacts and logs live")
    parser.add_argument("--pg-port", type=int, default=int(os.environ.get("PGPORT", "5432")))
    parser.add_argument("--mlflow-port", type=int, default=int(os.environ.get("MLFLOW_PORT", "5000")))
    args = parser.parse_args(argv)
    return _start(args) if args.action == "start" else _stop(args)


if __name__ == "__main__":
    raise SystemExit(main())
