"""`mlops deploy`, `mlops rollback`, `mlops canary analyze`, `mlops predict`, `mlops serve` (docs/deployment.md)."""

from __future__ import annotations

import argparse
import math
from typing import Any

from mlops.commands import args as numbers


def _share(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a share like 0.1") from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds; pass --interval 30, e.g.")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("deploy", help="gate a model and change the deployment state (shadow, canary or full)")
    p.add_argument(
        "--mode",
        required=True,
        choices=["auto", "shadow", "canary", "full"],
        help="how the version serves; auto: full while nothing is in production, canary after",
    )
    p.add_argument("--version", help="model version (default: models/current)")
    p.add_argument("--traffic", type=_share, help="canary share in (0, 1) (default: config/deployment.json)")
    p.add_argument("--reason", help="why, recorded in the state's history and the audit log")
    p.set_defaults(func=run_deploy)

    p = sub.add_parser("rollback", help="restore the previous production version (integrity-checked)")
    p.add_argument("--to", help="version to restore (default: the production before the current one)")
    p.add_argument("--reason", help="why, recorded in the state's history and the audit log")
    p.set_defaults(func=run_rollback)

    p = sub.add_parser("canary", help="canary analysis")
    canary = p.add_subparsers(dest="canary_command", metavar="ACTION", parser_class=type(p), required=True)
    a = canary.add_parser("analyze", help="compare canary with production on the logged window")
    a.add_argument("--apply", action="store_true", help="promote the canary to full, or roll it back")
    a.add_argument("--since", help="start of the window (default: when the canary was deployed)")
    a.set_defaults(func=run_analyze)

    p = sub.add_parser("predict", help="score a CSV/Parquet file through the router (request_id column honoured)")
    p.add_argument("--input", required=True, help="CSV or Parquet file with the model's features")
    p.add_argument("--output", required=True, help="where to write request_id, score, prediction, version, role")
    p.set_defaults(func=run_predict)

    p = sub.add_parser("serve", help="HTTP JSON endpoint: POST /predict, GET /health")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)")
    p.add_argument("--port", type=numbers.port, default=8000, help="port (0 picks a free one; default 8000)")
    p.add_argument(
        "--follow", metavar="REMOTE", help="serve the checked desired state of this git remote (URL or path)"
    )
    p.add_argument("--branch", help="with --follow: the branch to follow (default: main)")
    p.add_argument("--interval", type=_seconds, help="with --follow: seconds between fetches (default: 30)")
    p.add_argument("--workdir", help="with --follow: where the clone and trust.json live (default: ~/.cache/mlops)")
    p.add_argument("--trust-root", metavar="SIZE:ROOT", help="with --follow: pin the audit log's first trusted head")
    p.set_defaults(func=run_serve)


def _load(args: argparse.Namespace):
    from mlops import config
    from mlops.repo import Repo

    return config.load(Repo.at(args.repo))


def run_deploy(args: argparse.Namespace) -> int:
    from mlops import deploy, gha
    from mlops.deploy.actions import resolve_mode

    cfg = _load(args)
    if args.mode == "auto":
        mode = resolve_mode(cfg.repo, args.mode)
        why = "nothing is in production yet" if mode == "full" else "a version is in production"
        print(f"--mode auto: {mode} ({why})")
    record = deploy.deploy(cfg, args.mode, args.version, args.traffic, reason=args.reason)
    after = record["state_after"]
    gha.set_outputs(
        deployed=True,
        version=record["version"],
        mode=record["mode"],
        production=after["production"] or "",
        canary=(after["canary"] or {}).get("version", ""),
    )
    traffic = f" at {record['traffic']:.0%}" if record["mode"] == "canary" else ""
    print(
        f"deployed {record['version']} as {record['mode']}{traffic}; health check "
        f"p95 {record['health_check'].get('latency_ms_p95')} ms"
    )
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    from mlops import deploy, gha

    cfg = _load(args)
    out = deploy.rollback(cfg, args.to, reason=args.reason)
    gha.set_outputs(rolled_back=True, production=out["to"], previous=out["from"])
    print(f"rolled back production {out['from']} -> {out['to']} ({out['reason']}); MLflow: {out['mlflow_champion']}")
    return 0


def run_analyze(args: argparse.Namespace) -> int:
    from mlops import deploy, gha

    cfg = _load(args)
    record = deploy.analyze(cfg, apply=args.apply, since=args.since)
    gha.set_outputs(decision=record["decision"], applied=record["applied"], record=record["record"])
    for x in record["checks"]:
        mark = {True: "ok", False: "FAILED", None: "skipped"}[x["passed"]]
        print(f"  {x['name']:<20} {str(x['value']):<28} limit {x['limit']!s:<8} {mark} {x['note']}")
    print(f"decision: {record['decision']}{' (applied)' if record['applied'] else ''} — {record['record']}")
    # A canary that fails analysis is the check this command enforces.
    return 1 if record["decision"] == "rollback" else 0


def run_predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlops import config
    from mlops.repo import Repo
    from mlops.serving import predict_file

    repo = Repo.at(args.repo)
    config.load(repo)
    out = predict_file(repo, Path(args.input), Path(args.output))
    print(f"scored {out['rows']} rows -> {out['output']} ({', '.join(f'{k}: {v}' for k, v in out['roles'].items())})")
    return 0


def _bind(make_server: Any, repo: Any, args: argparse.Namespace, follower: Any) -> Any:
    """make_server, with a port already in use as one line (exit 2)."""
    import errno

    from mlops.errors import BadInput

    try:
        return make_server(repo, args.host, args.port, serving=follower)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise BadInput(
            f"mlops serve: --port {args.port}",
            f"{args.host}:{args.port} is already in use",
            "stop the process listening there or pass another --port (0 picks a free one)",
        ) from None


def run_serve(args: argparse.Namespace) -> int:
    import sys

    from mlops import config
    from mlops.reconcile import follow
    from mlops.repo import Repo
    from mlops.serving_http import make_server

    repo = Repo.at(args.repo)
    follower = follow(args)  # None without --follow; else cloned, first commit reconciled, fetching every --interval
    if follower is None:
        config.load(repo)
    else:
        repo = Repo.at(follower.checkout)
    server = _bind(make_server, repo, args, follower)

    def stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM is a clean shutdown too: the WAL's rows are shipped on the way out

    import signal

    signal.signal(signal.SIGTERM, stop)  # before the address is printed: a caller may stop us once it reads it
    host, port = server.server_address[:2]
    try:  # a SIGTERM right after the address is printed is a clean shutdown too
        print(f"serving on http://{host}:{port} (POST /predict, POST /feedback, GET /health, GET /status)", flush=True)
        sys.stdout.flush()
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()  # stops the shipper after one last ship (rows the store refuses stay in the WAL)
    return 0
