"""Helpers shared by the audit tests: run `mlops audit ...`, append a few events, read and rewrite log lines, git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlops import audit
from mlops.cli import main
from mlops.repo import Repo

SEG0 = "metadata/audit/entries-000000000000.jsonl"
CKPTS = "metadata/audit/checkpoints.jsonl"


def cli(root: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["--repo", str(root), "audit", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def logged(root: Path, n: int = 5) -> Repo:
    repo = Repo.at(root)
    for i in range(n):
        audit.record(repo, "training_run", {"i": i, "model": f"m{i}"})
    return repo


def lines(root: Path, rel: str = SEG0) -> list[bytes]:
    return (root / rel).read_bytes().split(b"\n")[:-1]


def write_lines(root: Path, items: list[bytes], rel: str = SEG0) -> None:
    (root / rel).write_bytes(b"".join(x + b"\n" for x in items))


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        check=True,
        capture_output=True,
    )
