"""`mlops doctor`: check that a repository (a fresh fork, typically) is set up for its workflows to run."""

from __future__ import annotations

import argparse

from mlops import config, gha
from mlops.errors import CheckFailed
from mlops.repo import Repo

DESCRIPTION = (
    "Check through the GitHub API (GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_API_URL) that Actions and the workflows "
    "are enabled, Issues are on and the alert labels exist, the workflow token may do what config/gitops.json needs, "
    "the default branch accepts the state commits, and the secrets the workflows use are set; then that the log "
    "store (config/store.json) and MLflow (MLFLOW_TRACKING_URI, when set) answer. Prints a checklist; each problem "
    "says what to click or set. Exit 1 on any problem, 2 on bad input. Changes nothing."
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "doctor", help="check a fork's GitHub settings, secrets, log store and MLflow", description=DESCRIPTION
    )
    parser.add_argument(
        "--repo",
        dest="github_repository",
        metavar="OWNER/NAME",
        help="the GitHub repository to check (default: $GITHUB_REPOSITORY); the checkout is `mlops --repo DIR`",
    )
    parser.add_argument(
        "--optional-secret",
        action="append",
        default=[],
        metavar="NAME[,NAME...]",
        help="a secret the workflows reference that you leave unset on purpose (its fallback in "
        "docs/workflows.md is fine): reported, not a problem; repeatable",
    )
    parser.set_defaults(func=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    from mlops import doctor

    cfg = config.load(Repo.at(args.repo))
    optional = [name.strip() for value in args.optional_secret for name in value.split(",") if name.strip()]
    where = doctor.target(args.github_repository)
    findings = doctor.diagnose(cfg, args.github_repository, optional)
    print(f"mlops doctor: {where.repository} at {where.api_url}, checkout {cfg.repo.root}")
    for finding in findings:
        print(finding.line())
    gha.add_summary(doctor.summary_markdown(where.repository, findings))
    found = doctor.problems(findings)
    if found:
        raise CheckFailed(
            f"doctor: {len(found)} problem{'s' if len(found) != 1 else ''}; "
            "fix the lines marked [!!] and run `mlops doctor` again"
        )
    print("ready: no problems found")
    return 0
