"""`mlops card build|render|check`, `mlops lineage VERSION` and `mlops reproduce VERSION` (docs/model-cards.md)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    card = sub.add_parser("card", help="model cards in metadata/cards/ (build, render, check)")
    inner = card.add_subparsers(dest="card_command", metavar="ACTION", required=True)
    build = inner.add_parser("build", help="rebuild a version's card and its rendered files from its records")
    build.add_argument("versions", nargs="*", metavar="VERSION", help="model versions (default with --all)")
    build.add_argument("--all", action="store_true", help="every version in models/")
    build.set_defaults(func=run_build)
    render = inner.add_parser("render", help="regenerate Markdown, plots and MCT export from the card JSON")
    render.add_argument("versions", nargs="*", metavar="VERSION")
    render.add_argument("--all", action="store_true", help="every card in metadata/cards/")
    render.set_defaults(func=run_render)
    check = inner.add_parser("check", help="fail (exit 1) when a card's rendered files differ from its JSON")
    check.add_argument("versions", nargs="*", metavar="VERSION")
    check.add_argument("--all", action="store_true", help="every card in metadata/cards/")
    check.set_defaults(func=run_check)

    lin = sub.add_parser("lineage", help="commit, data, MLflow run, gate, deployments and audit proof of a version")
    lin.add_argument("version", metavar="VERSION")
    lin.add_argument("--proof-out", metavar="FILE", help="write the inclusion proof of its audit entry here")
    lin.add_argument("--json", action="store_true", help="print the whole lineage (with the proof) as JSON")
    lin.set_defaults(func=run_lineage)

    rep = sub.add_parser("reproduce", help="re-train a version from its commit, data and seed and compare")
    rep.add_argument("version", metavar="VERSION")
    rep.add_argument("--keep", metavar="DIR", help="keep the scratch repository in DIR (default: a removed temp dir)")
    rep.add_argument("--json", action="store_true", help="print the comparison as JSON")
    rep.set_defaults(func=run_reproduce)


def _versions(args: argparse.Namespace, everything: list[str]) -> list[str]:
    from mlops.errors import BadInput

    if args.all:
        return everything
    if not args.versions:
        raise BadInput(f"mlops card {args.card_command}", "names no version", "pass VERSION ... or --all")
    return list(args.versions)


def run_build(args: argparse.Namespace) -> int:
    from mlops import cards, config, registry
    from mlops.repo import Repo

    repo = Repo.at(args.repo)
    cfg = config.load(repo)
    versions = _versions(args, sorted(registry.all_versions(repo)))
    for version in versions:
        registry.find_version(repo, version)  # every name is checked before anything is written
    for version in versions:
        written = cards.write_card(cfg, version)
        print(f"card {version}: {written['markdown']}")
    return 0


def run_render(args: argparse.Namespace) -> int:
    from mlops import cards, config
    from mlops.repo import Repo

    repo = Repo.at(args.repo)
    config.load(repo)
    versions = _versions(args, cards.all_card_versions(repo))
    for version in versions:  # every card is validated before any file is written
        cards.load_card(repo, version)
    for version in versions:
        changed = cards.render(repo, version)
        print(f"card {version}: " + (f"rewrote {', '.join(changed)}" if changed else "unchanged"))
    return 0


def run_check(args: argparse.Namespace) -> int:
    from mlops import cards, config, gha
    from mlops.repo import Repo

    repo = Repo.at(args.repo)
    config.load(repo)
    versions = _versions(args, cards.all_card_versions(repo))
    for version in versions:
        cards.check(repo, version)
    print(f"cards ok: {len(versions)} card(s) match their JSON")
    gha.set_outputs(cards_checked=len(versions))
    return 0


def run_lineage(args: argparse.Namespace) -> int:
    from mlops import config, gha, jsonio, lineage
    from mlops.errors import BadInput
    from mlops.repo import Repo

    repo = Repo.at(args.repo)
    cfg = config.load(repo)
    if args.proof_out:
        jsonio.check_output_file(Path(args.proof_out), "--proof-out")
    info = lineage.lineage(cfg, args.version, proof=True)
    if args.proof_out:
        if info["proof"] is None:
            raise BadInput("--proof-out", f"{args.version} has no audit entry to prove", "check `mlops audit verify`")
        jsonio.write_json(Path(args.proof_out), info["proof"])
    if args.json:
        print(jsonio.dumps(info), end="")
    else:
        print(lineage.lineage_text(info))
        if args.proof_out:
            proof = info["proof"]
            print(
                f"proof        {info['proof_of']} entry seq {proof['seq']} against the checkpoint of size "
                f"{proof['tree_size']} -> {args.proof_out} (check: mlops audit check-proof {args.proof_out})"
            )
    gha.set_outputs(commit=info["commit"] or "", dataset_sha256=info["dataset"]["sha256"] or "")
    return 0


def run_reproduce(args: argparse.Namespace) -> int:
    from mlops import config, gha, jsonio, lineage
    from mlops.errors import CheckFailed
    from mlops.repo import Repo

    repo = Repo.at(args.repo)
    cfg = config.load(repo)
    result = lineage.reproduce(cfg, args.version, keep=Path(args.keep).resolve() if args.keep else None)
    print(jsonio.dumps(result), end="") if args.json else print(lineage.reproduce_text(result))
    gha.add_summary(f"### Reproduce `{args.version}`\n\n```\n{lineage.reproduce_text(result)}\n```")
    gha.set_outputs(reproduced=result["reproduced"], metrics_identical=result["metrics_identical"])
    if not result["reproduced"]:
        raise CheckFailed(f"{args.version} was not reproduced: see the comparison above")
    return 0
