"""`mlops monitor` and `mlops simulate-traffic` (docs/monitoring.md)."""

from __future__ import annotations

import argparse

from mlops import config, gha
from mlops.commands import args as numbers
from mlops.repo import Repo


def register(sub: argparse._SubParsersAction) -> None:
    mon = sub.add_parser(
        "monitor",
        help="compare the production log's window with the current model's reference profile",
        description="Per-feature drift (Evidently's defaults), prediction drift, positive-rate shift, accuracy "
        "and ECE from feedback; reports under metadata/reports/monitoring/, alerts, audit event.",
    )
    mon.add_argument("--since", help="window start, ISO-8601 UTC, e.g. 2026-11-22T06:00:00Z (default: --until - 6 h)")
    mon.add_argument("--until", help="window end (exclusive), ISO-8601 UTC (default: now)")
    mon.add_argument("--metrics-file", help="also write the window's figures here for node_exporter (a .prom file)")
    mon.set_defaults(func=run_monitor)

    sim = sub.add_parser(
        "simulate-traffic",
        help="write a scored production window to the prediction log (demo and tests)",
        description="Draw rows from the training distribution, shift K numeric features by S reference "
        "standard deviations, score them with the current model, append predictions and feedback.",
    )
    sim.add_argument("--rows", type=numbers.rows, required=True, help="rows to write")
    sim.add_argument(
        "--shift", type=numbers.finite, default=0.0, help="shift in reference standard deviations (default 0)"
    )
    sim.add_argument("--features", type=numbers.count, default=0, help="how many numeric features to shift (default 0)")
    sim.add_argument("--seed", type=numbers.seed, default=0, help="seed for rows, shifted features and label noise")
    sim.add_argument(
        "--label-noise", type=numbers.probability, default=0.0, help="share of feedback labels flipped (default 0)"
    )
    sim.add_argument(
        "--hours", type=numbers.hours, help="spread rows over this many hours (default: the monitoring window)"
    )
    sim.add_argument("--until", help="window end, ISO-8601 UTC (default: now)")
    sim.add_argument("--format", default="jsonl", choices=["jsonl", "parquet"], help="log file format")
    sim.add_argument("--no-feedback", action="store_true", help="write predictions only")
    sim.set_defaults(func=run_simulate)


def run_monitor(args: argparse.Namespace) -> int:
    from mlops import monitor

    cfg = config.load(Repo.at(args.repo))
    if args.metrics_file:  # refused before the run writes anything
        from pathlib import Path

        from mlops import jsonio, monitor_metrics

        jsonio.check_output_file(Path(args.metrics_file), "mlops monitor: --metrics-file")
    report = monitor.run(cfg, since=args.since, until=args.until)
    if args.metrics_file:
        monitor_metrics.write(Path(args.metrics_file), report)
    w = report["window"]
    if report["outcome"] == "insufficient_data":
        print(f"insufficient data: {report['rows']} rows in {w['since']}..{w['until']} (need {report['min_rows']})")
        return 0
    fb = report["feedback"]
    acc = f", accuracy drop {fb['accuracy_drop']:+.4f}" if "accuracy_drop" in fb else ", no feedback judged"
    drifted = ", ".join(report["drifted_features"]) or "none"
    weighted = report["weighted_drift_score"]
    weighted = "n/a" if weighted is None else f"{weighted:.4f}"
    print(
        f"{report['outcome']}: {report['rows']} rows, drift score {report['drift_score']:.4f} "
        f"(importance-weighted {weighted}), drifted: {drifted}{acc}"
    )
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    from mlops import traffic

    cfg = config.load(Repo.at(args.repo))
    out = traffic.simulate(
        cfg, args.rows, shift=args.shift, features=args.features, seed=args.seed, label_noise=args.label_noise,
        hours=args.hours, until=args.until, fmt=args.format, feedback=not args.no_feedback,
    )  # fmt: skip
    shifted = ", ".join(out["shifted_features"]) or "none"
    gha.info(f"simulate-traffic: {out['rows']} rows ({out['window']['since']}..{out['window']['until']}), "
             f"shifted {shifted} by {out['shift']} std, {out['feedback_rows']} feedback rows")  # fmt: skip
    print(" ".join(out["files"]))
    return 0
