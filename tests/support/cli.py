"""Run the `mlops` CLI in-process and capture what it prints and returns."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

from mlops.cli import main


@dataclass
class Result:
    code: int
    out: str
    err: str


def run(repo: Path | None, *args: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    argv = (["--repo", str(repo)] if repo is not None else []) + list(args)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
    return Result(code, out.getvalue(), err.getvalue())
