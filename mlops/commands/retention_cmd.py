"""`mlops retention [--dry-run]`: delete expired, undeployed model folders (see mlops/retention.py)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retention", help="delete expired candidates and archived models (never deployed ones)")
    p.add_argument("--dry-run", action="store_true", help="only list what would be deleted; change nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlops import config, retention
    from mlops.repo import Repo

    cfg = config.load(Repo.at(args.repo))
    outcome = retention.run(cfg, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for item in outcome["items"]:
        action = verb if item.action == "delete" else item.action
        print(f"  {item.kind:<9} {item.version:<56} {action:<12} {item.why}")
    count = len(outcome["would_remove"] if args.dry_run else outcome["removed"])
    done = "would be deleted (dry run: nothing changed)" if args.dry_run else "deleted"
    print(f"retention: {count} model folder(s) {done}")
    return 0
