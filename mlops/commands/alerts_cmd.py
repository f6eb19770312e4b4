"""`mlops alerts flush|raise|resolve|dispatch-retrain`: the GitHub-issue alert channel from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops import config, gha
from mlops.errors import BadInput
from mlops.repo import Repo

# Nothing blocks on an alert: an action GitHub did not take stays queued in the outbox (nothing is lost),
# is reported with a warning, and the command exits 0 so the workflow goes on and commits the outbox.
STRICT_HELP = "exit 1 when an alert stays queued because GitHub did not take it (default: warn, exit 0)"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("alerts", help="send, resolve and flush GitHub-issue alerts; dispatch retraining")
    inner = parser.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)

    flush = inner.add_parser("flush", help="send the queued alerts in metadata/alerts/outbox/ (run first by workflows)")
    flush.add_argument("--strict", action="store_true", help=STRICT_HELP)
    flush.set_defaults(func=run_flush)

    raise_ = inner.add_parser("raise", help="raise an alert from a gate record or an alert JSON file")
    source = raise_.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-gate", metavar="FILE", help="gate record (metadata/gates/<version>.json)")
    source.add_argument("--from-json", metavar="FILE", help="alert as JSON: kind, title, summary, fingerprint, ...")
    raise_.add_argument("--strict", action="store_true", help=STRICT_HELP)
    raise_.set_defaults(func=run_raise)

    resolve = inner.add_parser("resolve", help="close the open issue for a fingerprint, saying why")
    resolve.add_argument("--fingerprint", required=True, help="the alert's fingerprint")
    resolve.add_argument("--reason", required=True, help="why the problem is gone")
    resolve.add_argument("--strict", action="store_true", help=STRICT_HELP)
    resolve.set_defaults(func=run_resolve)

    retrain = inner.add_parser("dispatch-retrain", help="dispatch the training workflow, honouring the cool-down")
    retrain.add_argument("--reason", required=True, help="why retraining is needed (sent as the workflow input)")
    retrain.add_argument("--force", action="store_true", help="ignore the cool-down")
    retrain.set_defaults(func=run_dispatch_retrain)


def _cfg(args: argparse.Namespace) -> config.Config:
    return config.load(Repo.at(args.repo))


def _exit_for(result: dict, strict: bool) -> int:
    # Dry runs and deliveries succeed; a delivery failure that went to the outbox is a warning (already
    # printed), and exit 1 only under --strict.
    return 1 if strict and result.get("status") == "outbox" and not result.get("dry_run") else 0


def run_flush(args: argparse.Namespace) -> int:
    from mlops import alerts

    cfg = _cfg(args)
    outcome = alerts.flush(cfg)
    sent, failed = outcome["delivered"], outcome["failed"]
    for item in sent:
        print(f"delivered {item['fingerprint']}: {item['status']} #{item.get('issue') or '-'}")
    for item in failed:
        print(f"NOT delivered {item['fingerprint']}: {item['error']} (kept in the outbox)")
    if outcome["dry_run"] and outcome["queued"]:
        print(f"outbox: {outcome['queued']} queued, nothing sent (no GITHUB_TOKEN)")
    elif not outcome["queued"]:
        print("outbox: empty")
    gha.set_outputs(delivered=len(sent), failed=len(failed), queued=outcome["queued"])
    return 1 if failed and args.strict else 0


def run_raise(args: argparse.Namespace) -> int:
    from mlops import alerts, gate, jsonio

    cfg = _cfg(args)
    if args.from_gate:
        path = Path(args.from_gate)
        alert = gate.alert_from_gate(cfg, path if path.is_absolute() else Path.cwd() / path)
        if alert is None:
            print(f"{args.from_gate}: no regression; no alert raised")
            gha.set_outputs(alert_status="none")
            return 0
    else:
        alert = alerts.Alert.from_dict(jsonio.read_json(Path(args.from_json), "alert file"), args.from_json)
    result = alerts.raise_alert(cfg, alert)
    _print_result("alert", result)
    gha.set_outputs(alert_status=result["status"], alert_issue=result.get("issue") or "")
    return _exit_for(result, args.strict)


def run_resolve(args: argparse.Namespace) -> int:
    from mlops import alerts

    cfg = _cfg(args)
    result = alerts.resolve(cfg, args.fingerprint, args.reason)
    _print_result("resolve", result)
    gha.set_outputs(alert_status=result["status"])
    return _exit_for(result, args.strict)


def run_dispatch_retrain(args: argparse.Namespace) -> int:
    from mlops import alerts

    cfg = _cfg(args)
    result = alerts.dispatch_retrain(cfg, args.reason, force=args.force)
    status = result["status"]
    if status == "cooldown":
        print(f"retrain not dispatched: cool-down until {result['next_allowed']}")
    elif status == "failed":
        print(f"retrain NOT dispatched: {result['error']}")
    else:
        print(f"retrain {status}: {result['workflow']} on {result['ref']}")
    gha.set_outputs(retrain_status=status, dispatched=result["dispatched"])
    return 1 if status == "failed" else 0


def _print_result(what: str, result: dict) -> None:
    status = result["status"]
    if status == "outbox":
        where = result.get("outbox") or "the outbox"
        if result.get("dry_run"):
            print(f"{what} {result['fingerprint']}: dry run (no GITHUB_TOKEN), queued in {where}")
        else:
            print(f"{what} {result['fingerprint']}: NOT delivered ({result.get('error')}); queued in {where}")
    elif status == "not-open":
        print(f"{what} {result['fingerprint']}: no open issue")
    elif "issue" in result:
        print(f"{what} {result['fingerprint']}: {status} #{result['issue']} {result.get('url') or ''}".rstrip())
    else:
        raise BadInput(what, f"unexpected status {status!r}", "report this as a bug")
