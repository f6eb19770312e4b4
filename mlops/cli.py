"""The `mlops` console script: wires command modules and maps errors to exit codes.

Each module in COMMAND_MODULES exposes ``register(subparsers)``; the parser it adds sets
``func=run`` where ``run(args) -> int``. Modules import heavy libraries inside ``run`` so
that ``mlops --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from mlops.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_UNEXPECTED, MlopsError

COMMAND_MODULES = [
    "mlops.commands.config_cmd",
    "mlops.commands.train_cmd",
    "mlops.commands.audit_cmd",
    "mlops.commands.alerts_cmd",
    "mlops.commands.data_cmd",
    "mlops.commands.monitor_cmd",
    "mlops.commands.feedback_cmd",
    "mlops.commands.deploy_cmd",
    "mlops.commands.card_cmd",
    "mlops.commands.retention_cmd",
    "mlops.commands.report_cmd",
    "mlops.commands.workflow_cmd",
    "mlops.commands.demo_cmd",
    "mlops.commands.doctor_cmd",
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for any bad usage
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mlops", description="Train, validate, monitor and deploy one tabular classifier from git.")
    parser.add_argument(
        "--repo",
        default=os.environ.get("MLOPS_REPO", "."),
        help="repository root holding config/, models/ and metadata/ (default: current directory or $MLOPS_REPO)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT if args.command is None and argv else 0
    try:
        return int(args.func(args) or 0)
    except MlopsError as exc:
        print(f"error: {exc}" if exc.exit_code else str(exc), file=sys.stderr)  # exit 0: an outcome, not an error
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # noqa: BLE001 - the one place unexpected errors become exit 3
        traceback.print_exc()
        print("error: unexpected failure (exit 3); the traceback above says where", file=sys.stderr)
        return EXIT_UNEXPECTED


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
