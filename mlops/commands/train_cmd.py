"""`mlops train`: train every configured model type, gate, promote, record; `mlops gate --candidates`: the
fan-in of `mlops train --shard I/N` (docs/training.md, "Workers and the training matrix")."""

from __future__ import annotations

import argparse
from typing import Any

from mlops.commands import args as checked


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train, gate and promote (see docs/training.md)")
    p.add_argument("--model-types", help="comma-separated model types (default: config/training.json)")
    p.add_argument("--seed", type=int, help="seed for splits and estimators (default: config/training.json)")
    p.add_argument("--no-download", action="store_true", help="never touch the network: local file, cache or synthetic")
    p.add_argument(
        "--force-retrain",
        action="store_true",
        help="replace an equal champion trained on the same data; never bypasses thresholds, "
        "the champion tolerance or integrity checks",
    )
    p.add_argument(
        "--allow-invalid-data", action="store_true", help="train on data that fails validation (recorded in manifest)"
    )
    p.add_argument("--no-tracking", action="store_true", help="skip MLflow (for quick local experiments only)")
    p.add_argument(
        "--since",
        type=checked.utc_time,
        help="production source: predictions from this time, ISO-8601 UTC (default: --until - window_hours)",
    )
    p.add_argument(
        "--until", type=checked.utc_time, help="production source: predictions before this time (default: now)"
    )
    p.add_argument(
        "--hpo",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="tune each type with Optuna before its final fit (default: config/training.json /hpo/enabled)",
    )
    p.add_argument("--trials", type=int, help="trials per model type's study (default: config /hpo/trials)")
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="train only shard I of N (1-based) into --out; `mlops gate --candidates` gates them together",
    )
    p.add_argument("--out", help="with --shard: the (new or empty) folder for this shard's candidates")
    p.set_defaults(func=run)
    register_gate(sub)
    m = sub.add_parser(
        "matrix",
        help="config/training.json /matrix as step outputs `sharded` (true/false) and `shards` (JSON list of "
        '{"index", "spec"}) for the training workflow\'s plan job; trains nothing',
    )
    m.set_defaults(func=run_matrix)


def register_gate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gate", help="gate, promote and record the candidates of `mlops train --shard` runs")
    p.add_argument("--candidates", nargs="+", required=True, metavar="DIR", help="the shards' --out folders")
    p.add_argument("--no-download", action="store_true", help="never touch the network: local file, cache or synthetic")
    p.add_argument("--force-retrain", action="store_true", help="as for `mlops train`")
    p.add_argument("--allow-invalid-data", action="store_true", help="as for `mlops train`")
    p.add_argument("--no-tracking", action="store_true", help="skip MLflow")
    p.add_argument("--since", type=checked.utc_time, help="as for `mlops train` (the shards' window)")
    p.add_argument("--until", type=checked.utc_time, help="as for `mlops train` (the shards' window)")
    p.set_defaults(func=run_gate)


def run_gate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlops import config
    from mlops.repo import Repo
    from mlops.shards import fan_in

    repo = Repo.at(args.repo)
    cfg = config.load(repo)
    outcome = fan_in(cfg, [Path(d) for d in args.candidates], _options(args))
    return _report(outcome, cfg, repo)


def _options(args: argparse.Namespace, **more: Any) -> Any:
    """The TrainOptions the flags `train` and `gate` share say, plus `more` (train's own flags)."""
    from mlops.train import TrainOptions

    return TrainOptions(
        no_download=args.no_download,
        force_retrain=args.force_retrain,
        allow_invalid_data=args.allow_invalid_data,
        track=not args.no_tracking,
        since=args.since,
        until=args.until,
        **more,
    )


def run(args: argparse.Namespace) -> int:
    from mlops import config
    from mlops.repo import Repo
    from mlops.train import run as train

    repo = Repo.at(args.repo)
    cfg = config.load(repo)
    types = [t.strip() for t in args.model_types.split(",") if t.strip()] if args.model_types else None
    opts = _options(args, model_types=types, seed=args.seed, hpo=args.hpo, trials=args.trials)
    if args.shard is not None or args.out is not None:
        return _shard(args, cfg, opts)
    outcome = train(cfg, opts)
    if outcome.get("outcome") == "waiting_for_labels":
        return _waiting(outcome, cfg)
    return _report(outcome, cfg, repo)


def run_matrix(args: argparse.Namespace) -> int:
    import json

    from mlops import config, gha
    from mlops.hpo import settings
    from mlops.repo import Repo

    cfg = config.load(Repo.at(args.repo))

    _, matrix = settings(cfg)
    shards = [{"index": i, "spec": f"{i}/{matrix.width}"} for i in range(1, matrix.width + 1)]
    if not matrix.enabled:
        shards = []
    gha.set_outputs(sharded=str(matrix.enabled).lower(), shards=json.dumps(shards, separators=(",", ":")))
    if matrix.enabled:
        print(f"training as a matrix of {matrix.width} shard(s): {', '.join(s['spec'] for s in shards)}")
    else:
        print("training in one job (config/training.json /matrix/enabled is false)")
    return 0


def _shard(args: argparse.Namespace, cfg: object, opts: object) -> int:
    from pathlib import Path

    from mlops import gha
    from mlops.errors import BadInput
    from mlops.shards import parse_spec, run_shard

    if args.shard is None or args.out is None:
        raise BadInput("--shard/--out", "each needs the other", "pass both: --shard I/N --out DIR")
    opts.shard = parse_spec(args.shard)
    record = run_shard(cfg, opts, Path(args.out))
    for c in record["candidates"]:
        print(f"  {c['model_type']:<24} {c['version']}  -> {args.out}/{c['version']}/")
    for f in record["failures"]:
        print(f"  {f['model_type']:<24} FAILED {f['error'][:80]}")
    print(f"shard {record['shard']}: {len(record['candidates'])} candidate(s) in {args.out}; "
          f"gate them with `mlops gate --candidates DIR…`")  # fmt: skip
    gha.set_outputs(outcome="sharded", candidates=len(record["candidates"]), out=args.out)
    return 0


def _report(outcome: dict, cfg: object, repo: object) -> int:
    from mlops import gha
    from mlops.train import summary_markdown

    gha.add_summary(summary_markdown(outcome, cfg.training.primary_metric))
    gates = {c["version"]: c["gate_record"] for c in outcome["candidates"] if "gate_record" in c}
    best_gate = gates.get(outcome["best_version"], "")
    version = outcome["promoted_version"] or outcome["best_version"]
    gha.set_outputs(
        outcome="trained",
        promoted=outcome["promoted"],
        version=version,
        regression=outcome["regression"],
        gate_record=gates.get(version, ""),  # the record of the version above
    )
    for c in outcome["candidates"]:
        if "error" in c:
            print(f"  {c['model_type']:<24} FAILED {c['error'][:80]}")
        else:
            m = c["metrics"]
            print(f"  {c['model_type']:<24} {c['version']}  acc={m['accuracy']:.4f} f1={m['f1']:.4f} "
                  f"ece={m['ece']:.4f}  {c['decision']}")  # fmt: skip
    if outcome["promoted"]:
        print(f"promoted {outcome['promoted_version']} -> {repo.rel(repo.current)}/ ({outcome['decision']})")
    else:
        print(f"not promoted: {outcome['decision']}")
    if outcome["regression"]:
        print(f"REGRESSION: the best candidate is worse than the champion (see {best_gate})")
    return 0


def _waiting(outcome: dict, cfg: object) -> int:
    """Too few labelled production rows: recorded, not a failure (exit 0); nothing to deploy or alert on."""
    from mlops import gha
    from mlops.train import summary_markdown

    gha.add_summary(summary_markdown(outcome, ""))
    gha.set_outputs(outcome="waiting-for-labels", promoted=False, version="", regression=False,
                    gate_record=outcome["record"])  # fmt: skip
    print(f"{outcome['decision']}; recorded in {outcome['record']}")
    return 0
