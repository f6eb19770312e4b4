"""`mlops data validate` and `mlops data infer-schema` (issue 5; rules in docs/validation.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("data", help="validate the training data; write its schema contract")
    inner = parser.add_subparsers(dest="data_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: _usage(parser))

    validate = inner.add_parser(
        "validate", help="run the configured checks; exit 1 when a check fails (config/validation.json)"
    )
    _source_args(validate)
    validate.add_argument("--no-alerts", action="store_true", help="report only; raise and resolve no alert issues")
    validate.set_defaults(func=run_validate)

    infer = inner.add_parser("infer-schema", help="write the first schema contract from the data (then review it)")
    _source_args(infer)
    infer.add_argument("--force", action="store_true", help="overwrite an existing contract")
    infer.set_defaults(func=run_infer_schema)


def _source_args(parser: argparse.ArgumentParser) -> None:
    from mlops.commands import args as checked

    parser.add_argument("--path", help="a CSV/Parquet file to check instead of the configured source")
    parser.add_argument(
        "--no-download", action="store_true", help="use the cached copy (or the synthetic fallback), never download"
    )
    parser.add_argument(
        "--since", type=checked.utc_time, help="production source: predictions from this time, ISO-8601 UTC"
    )
    parser.add_argument("--until", type=checked.utc_time, help="production source: predictions before this time")


def _usage(parser: argparse.ArgumentParser) -> int:
    from mlops.errors import BadInput

    raise BadInput("mlops data", "no action given", "use `mlops data validate` or `mlops data infer-schema`")


def _dataset(cfg: Any, args: argparse.Namespace) -> tuple[Any, Any]:
    """(DatasetFile, pyarrow Table) for --path or the configured source; bad input raises before any write."""
    from mlops import data, jsonio
    from mlops.config import resolve

    if args.path:
        path = Path(args.path)
        if not path.is_absolute():
            path = (Path.cwd() / path) if (Path.cwd() / path).exists() else resolve(cfg.repo, args.path)
        where = cfg.repo.rel(path)
        table = data.read_table(path, where)
        side_path = path.with_name(path.name + data.SIDECAR)
        side = jsonio.read_json(side_path, "source record", cfg.repo.rel(side_path)) if side_path.exists() else {}
        if not isinstance(side, dict):
            from mlops.errors import BadInput

            raise BadInput(cfg.repo.rel(side_path), "a source record must be a JSON object", "fix or delete it")
        dataset = data.DatasetFile(
            path, data.sha256_file(path, where), "local", side.get("fetched_at"), side.get("updated_at"), where
        )
        return dataset, table
    dataset = data.acquire(cfg, no_download=args.no_download, since=args.since, until=args.until)
    return dataset, data.read_table(dataset.path, cfg.repo.rel(dataset.path))


def run_validate(args: argparse.Namespace) -> int:
    from mlops import config, gha, validation
    from mlops.errors import CheckFailed
    from mlops.repo import Repo

    cfg = config.load(Repo.at(args.repo))
    dataset, table = _dataset(cfg, args)
    result = validation.validate(cfg, dataset, table)
    del table
    state = validation.open_alerts(cfg)  # a malformed record of open alerts refuses before any report is written
    validation.write_reports(cfg, result)
    for c in result.checks:
        line = f"{c.name}: {c.status}: {c.summary}"
        if c.status in (validation.FAIL, validation.WARN):
            gha.warn(line)
        else:
            gha.info(line)
    delivered = (
        [] if args.no_alerts or not cfg.validation.alerts.enabled else validation.raise_alerts(cfg, result, state)
    )
    markdown = validation.render_markdown(result)
    for d in delivered:
        if d.get("status") in ("outbox",) or d.get("error"):
            markdown += f"\n- alert `{d.get('fingerprint')}`: {d.get('status')}\n"
    gha.add_summary(markdown)
    gha.set_outputs(
        valid=result.passed,
        stale=result.stale,
        report=cfg.repo.rel(result.report_path),
        failed_checks=",".join(c.name for c in result.checks if c.status == validation.FAIL),
    )
    print(f"report: {cfg.repo.rel(result.report_path)}")
    if not result.passed:
        raise CheckFailed(f"{result.where}: data failed validation: " + "; ".join(result.failures))
    print(f"{result.where}: data passed validation ({len(result.warnings)} warning(s), {result.seconds:.2f} s)")
    return 0


def run_infer_schema(args: argparse.Namespace) -> int:
    from mlops import config, jsonio, validation
    from mlops.errors import BadInput
    from mlops.repo import Repo

    cfg = config.load(Repo.at(args.repo))
    target = validation.contract_path(cfg)
    rel = cfg.repo.rel(target)
    if target.exists() and not args.force:
        raise BadInput(rel, "a schema contract already exists", "edit it by hand, or pass --force to rewrite it")
    dataset, table = _dataset(cfg, args)
    contract = validation.infer_contract(
        cfg, table, max_categories=cfg.validation.schema_contract.max_categories, source=cfg.repo.rel(dataset.path)
    )
    jsonio.write_json(target, contract)
    print(f"wrote {rel}: {len(contract['columns'])} columns from {table.num_rows} rows; review it and commit it")
    return 0
