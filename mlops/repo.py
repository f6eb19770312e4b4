"""Where things live in a repository checkout (DESIGN.md's layout), resolved from --repo."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Repo:
    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike[str]) -> Repo:
        return cls(Path(root).resolve())

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def schemas_dir(self) -> Path:
        return self.root / "config" / "schemas"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def current(self) -> Path:
        return self.models / "current"

    @property
    def candidates(self) -> Path:
        return self.models / "candidates"

    @property
    def archived(self) -> Path:
        return self.models / "archived"

    @property
    def deployment_state(self) -> Path:
        return self.models / "deployment.json"

    @property
    def metadata(self) -> Path:
        return self.root / "metadata"

    @property
    def gates(self) -> Path:
        return self.metadata / "gates"

    @property
    def cards(self) -> Path:
        return self.metadata / "cards"

    @property
    def audit_dir(self) -> Path:
        return self.metadata / "audit"

    @property
    def alerts_dir(self) -> Path:
        return self.metadata / "alerts"

    @property
    def reports(self) -> Path:
        return self.metadata / "reports"

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def download_cache(self) -> Path:
        return self.datasets / "cache"

    @property
    def production_logs(self) -> Path:
        return self.datasets / "production"

    @property
    def mlflow_dir(self) -> Path:
        return self.root / ".mlflow"

    def tracking_uri(self) -> str:
        """MLFLOW_TRACKING_URI wins; else a sqlite file in the ignored .mlflow/ folder."""
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if uri:
            return uri
        return f"sqlite:///{(self.mlflow_dir / 'mlflow.db').as_posix()}"

    def git_commit(self) -> str:
        """The checked-out commit (GITHUB_SHA in Actions), or 'unknown' outside git."""
        sha = os.environ.get("GITHUB_SHA")
        if sha:
            return sha
        from mlops import git
        from mlops.errors import BadInput

        try:
            out = git.run(self.root, "rev-parse", "HEAD", timeout=10)
        except BadInput:  # git is not installed
            return "unknown"
        return out.stdout.strip() if out.returncode == 0 else "unknown"

    def rel(self, path: Path) -> str:
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)
