"""A throwaway PostgreSQL cluster and a real `mlflow server` on it, for the team-backend tests.

Debian's `postgresql` package provides the binaries (.ci/run installs it when missing); the cluster lives
in a fresh /tmp folder on a free loopback port (as root, owned by the `postgres` user) and is stopped and
removed at the end of the session. No SQLite stand-in.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlops.services import Postgres, free_port, start_mlflow, stop_process


@dataclass
class Backend:
    pg: Postgres
    mlflow_uri: str
    root: Path

    def optuna_url(self, database: str) -> str:
        self.pg.create_database(database)
        return self.pg.url(database)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Postgres]:
    root = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
    root.chmod(0o755)  # the `postgres` user (when the tests run as root) must reach its folder
    pg = Postgres(root / "pg", free_port())
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def team_backend(postgres_cluster: Postgres) -> Iterator[Backend]:
    """`mlflow server` with the cluster as its backend store and proxied artifacts in a temp folder."""
    root = Path(tempfile.mkdtemp(prefix="mlops-mlflow-"))
    postgres_cluster.create_database("mlflow")
    port = free_port()
    proc = start_mlflow(postgres_cluster.url("mlflow"), root / "artifacts", port, root / "mlflow.log")
    try:
        yield Backend(postgres_cluster, f"http://127.0.0.1:{port}", root)
    finally:
        stop_process(proc.pid)
        shutil.rmtree(root, ignore_errors=True)
