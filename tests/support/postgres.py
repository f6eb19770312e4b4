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

from mlops.services import Postgres, free_port, main


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
def team_backend() -> Iterator[Backend]:
    """What `make services` starts (python -m mlops.services start), on free ports in a temp folder: its own
    cluster, with `mlflow server` on it (proxied artifacts); stopped by `… stop` as `make services-stop` does."""
    root = Path(tempfile.mkdtemp(prefix="mlops-services-"))
    root.chmod(0o755)
    pg_port, mlflow_port = free_port(), free_port()
    args = ["--dir", str(root), "--pg-port", str(pg_port), "--mlflow-port", str(mlflow_port)]
    try:
        assert main(["start", *args]) == 0
        yield Backend(Postgres(root / "postgres", pg_port), f"http://127.0.0.1:{mlflow_port}", root)
    finally:
        main(["stop", *args])
        # The servers' last lines, for the report of a test that failed (pytest shows teardown output then).
        for log in (root / "mlflow.log", root / "postgres" / "postgres.log"):
            if log.is_file():
                print(f"--- last lines of {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:]))
        shutil.rmtree(root, ignore_errors=True)
