"""`mlops config check`: validate every config file against its schema."""

from __future__ import annotations

import argparse

from mlops import config, gha
from mlops.repo import Repo


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("config", help="inspect and validate config/")
    inner = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = inner.add_parser("check", help="validate every config/*.json against config/schemas/")
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    repo = Repo.at(args.repo)
    cfg = config.load(repo)
    names = cfg.files
    print(f"config ok: {', '.join(f'config/{n}.json' for n in names)}")
    gha.add_summary("### Config\n\n" + gha.md_table(["file", "status"], [(f"config/{n}.json", "valid") for n in names]))
    return 0
