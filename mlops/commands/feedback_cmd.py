"""`mlops feedback ingest FILE`: ground-truth labels into the log store (docs/production-data.md)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "feedback",
        help="ground-truth labels for served predictions, into the log store",
        description="Labels (request_id, label[, time]) for predictions the server logged, written to the log "
        "store of config/store.json as feedback parts; every row is checked first.",
    )
    inner = parser.add_subparsers(dest="feedback_command", metavar="ACTION", required=True)
    ingest = inner.add_parser(
        "ingest",
        help="check a CSV or Parquet file of labels and write it to the log store",
        description="Every row is checked first (request id logged in the store, label one of the model's "
        "classes, time not before the prediction); one bad row refuses the file and nothing is written.",
    )
    ingest.add_argument("file", help="CSV or Parquet (.parquet) with the columns request_id, label and optionally time")
    ingest.set_defaults(func=run_ingest)


def run_ingest(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlops import config, gha
    from mlops.logstore import feedback
    from mlops.repo import Repo

    cfg = config.load(Repo.at(args.repo))
    out = feedback.ingest(cfg, Path(args.file), args.file)
    gha.info(f"feedback ingest: {out['rows']} label(s) from {args.file} in {len(out['parts'])} part(s)")
    for part in out["parts"]:
        print(f"{out['store'].rstrip('/')}/{part}")
    return 0
