"""Helpers shared by the command tests: parse argv with the real parser, list what `--help` documents,
and run a bad command line expecting the one-line, exit-2 refusal."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from mlops.cli import build_parser
from tests.support.cli import run

NO_REPO = Path("/nonexistent/mlops-command-tests")


def parse(*argv: str) -> argparse.Namespace:
    """The namespace `mlops` would dispatch for argv (no command runs)."""
    return build_parser().parse_args(list(argv))


def help_text(*command: str) -> str:
    r = run(None, *command, "--help")
    assert (r.code, r.err) == (0, ""), r
    return r.out


def actions(*command: str) -> list[str]:
    """The sub-commands `mlops <command> --help` lists, in order (argparse indents them by four spaces)."""
    return re.findall(r"^    ([a-z][a-z-]*)(?:\s|$)", help_text(*command), re.M)


def options(*command: str) -> set[str]:
    """Every --flag `mlops <command> --help` mentions."""
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", help_text(*command)))


def usage_error(repo: Path | None, *argv: str) -> str:
    """Run argv; assert exit 2 with nothing on stdout and exactly one line on stderr; return that line.

    Without a repo it runs against a folder that does not exist, so a command line the parser wrongly
    accepts fails on the missing config/ instead of acting on the checkout the tests run from."""
    r = run(repo or NO_REPO, *argv)
    assert (r.code, r.out) == (2, ""), r
    assert r.err.endswith("\n") and r.err.count("\n") == 1, r.err
    return r.err[:-1]
