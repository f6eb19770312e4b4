"""`mlops report pr --pr N`: the experiment report of a pull request (see mlops/pr_report.py)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("report", help="experiment reports (pull requests)")
    inner = parser.add_subparsers(dest="report_command", metavar="ACTION", required=True)
    pr = inner.add_parser(
        "pr",
        help="train, compare the candidate with the champion, and create or update the one report comment",
    )
    pr.add_argument("--pr", type=int, required=True, metavar="N", help="pull request number")
    pr.add_argument("--model-types", help="comma-separated model types (default: config/training.json)")
    pr.add_argument("--no-download", action="store_true", help="never touch the network for data")
    pr.add_argument("--track", action="store_true", help="also log to MLflow (off: a PR run's store is thrown away)")
    pr.set_defaults(func=run_pr)


def run_pr(args: argparse.Namespace) -> int:
    from mlops import config, pr_report
    from mlops.repo import Repo
    from mlops.train import TrainOptions

    cfg = config.load(Repo.at(args.repo))
    types = [t.strip() for t in args.model_types.split(",") if t.strip()] if args.model_types else None
    opts = TrainOptions(model_types=types, no_download=args.no_download, track=args.track)
    result = pr_report.run(cfg, args.pr, opts)
    where = result.get("url") or result.get("why") or ""
    print(f"experiment report for #{args.pr}: {result['status']} {where}".rstrip())
    if result.get("error"):
        print(f"training failed: {result['error']}")
    return int(result["exit_code"])
