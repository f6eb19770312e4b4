"""`mlops workflow dispatch|dispatch-deploy`: start another workflow through the GitHub REST API.

Events caused by GITHUB_TOKEN start no workflows except workflow_dispatch and repository_dispatch,
so this is how training hands a promoted model to deploy.yml (docs/workflows.md). Without a
GITHUB_TOKEN it is a dry run that says what it would have dispatched.
"""

from __future__ import annotations

import argparse
import os
import re

from mlops.errors import BadInput

_INPUT_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)=(.*)$", re.S)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "workflow", help="helpers for workflows: dispatch (deploy after a promotion, or any), deployment state"
    )
    inner = parser.add_subparsers(dest="workflow_command", metavar="ACTION", required=True)

    dispatch = inner.add_parser("dispatch", help="dispatch a workflow_dispatch workflow with inputs")
    dispatch.add_argument("--workflow", required=True, help="file name in .github/workflows/, e.g. deploy.yml")
    dispatch.add_argument("--input", action="append", default=[], metavar="KEY=VALUE", help="a workflow input")
    dispatch.add_argument("--ref", help="branch to run on (default: $GITHUB_REF_NAME, else main)")
    dispatch.set_defaults(func=run_dispatch)

    deploy = inner.add_parser(
        "dispatch-deploy",
        help="dispatch deploy.yml for a promoted version when config/training.json "
        "promotion.deploy_after_promotion is true (otherwise say so and do nothing)",
    )
    deploy.add_argument("--version", required=True, help="the promoted version id")
    deploy.add_argument(
        "--mode",
        default="auto",
        choices=("auto", "shadow", "canary", "full"),
        help="default auto: deploy.yml deploys full when nothing is in production yet, canary otherwise",
    )
    deploy.add_argument("--workflow", default="deploy.yml", help="deployment workflow file (default deploy.yml)")
    deploy.add_argument("--ref", help="branch to run on (default: $GITHUB_REF_NAME, else main)")
    deploy.set_defaults(func=run_dispatch_deploy)
    register_state(inner)


def register_state(inner: argparse._SubParsersAction) -> None:
    state = inner.add_parser(
        "state",
        help="print models/deployment.json's roles and set them as step outputs "
        "(production, canary, canary_traffic, shadow, auto_mode), so a workflow step can run only when a "
        "canary exists; auto_mode is the mode deploy.yml's `auto` means: full before a first deployment, "
        "else canary",
    )
    state.set_defaults(func=run_state)


def run_state(args: argparse.Namespace) -> int:
    from mlops import config, gha
    from mlops.deployment_state import describe, read_state
    from mlops.repo import Repo

    repo = Repo.at(args.repo)
    config.load(repo)
    roles = describe(read_state(repo))
    canary = roles["canary"] or {}
    outputs = {
        "production": roles["production"] or "",
        "canary": canary.get("version", ""),
        "canary_traffic": canary.get("traffic", ""),
        "shadow": roles["shadow"] or "",
        # A canary needs a production to share traffic with, so a first deployment is full.
        "auto_mode": "canary" if roles["production"] else "full",
    }
    for key, value in outputs.items():
        print(f"{key}: {value if value != '' else '-'}")
    gha.set_outputs(**outputs)
    return 0


def parse_inputs(pairs: list[str]) -> dict[str, str]:
    """KEY=VALUE strings to a dict; GitHub takes at most 10 inputs."""
    out: dict[str, str] = {}
    for pair in pairs:
        m = _INPUT_RE.match(pair)
        if not m:
            raise BadInput("--input", f"{pair!r} is not KEY=VALUE", "write it like --input mode=canary")
        out[m.group(1)] = m.group(2)
    if len(out) > 10:
        raise BadInput("--input", f"{len(out)} inputs", "GitHub accepts at most 10 workflow_dispatch inputs")
    return out


def dispatch(workflow: str, ref: str, inputs: dict[str, str]) -> dict:
    """Dispatch `workflow` on `ref` at GITHUB_API_URL; a dry run (no request) without GITHUB_TOKEN."""
    from mlops import gha
    from mlops.alerts import target_from_env
    from mlops.errors import CheckFailed

    if not re.fullmatch(r"[A-Za-z0-9_.-]+\.ya?ml", workflow):
        raise BadInput("--workflow", f"{workflow!r} is not a workflow file name", "e.g. deploy.yml")
    target = target_from_env()
    shown = ", ".join(f"{k}={v}" for k, v in sorted(inputs.items())) or "no inputs"
    if not target.token:
        print(f"dry run (no GITHUB_TOKEN): would dispatch {workflow} on {ref} with {shown}")
        gha.add_summary(f"### Dispatch (dry run)\n\nWould dispatch `{workflow}` on `{ref}` with {shown}.")
        gha.set_outputs(dispatched=False)
        return {"status": "dry-run", "workflow": workflow, "ref": ref, "inputs": inputs}
    import requests
    from github import Auth, Github, GithubException

    gh = Github(auth=Auth.Token(target.token), base_url=target.api_url, timeout=30, retry=None)
    try:
        wf = gh.get_repo(target.repository, lazy=True).get_workflow(workflow)
        wf.create_dispatch(ref, inputs, throw=True)
    except GithubException as exc:
        message = exc.data.get("message", "") if isinstance(exc.data, dict) else ""
        raise CheckFailed(
            f"dispatch of {workflow} on {ref} failed: HTTP {exc.status} {message}; "
            "the job needs `permissions: actions: write` and the workflow must have a workflow_dispatch trigger"
        ) from None
    except requests.RequestException as exc:
        raise CheckFailed(
            f"dispatch of {workflow} on {ref} failed: could not reach {target.api_url} ({type(exc).__name__})"
        ) from None
    finally:
        gh.close()
    print(f"dispatched {workflow} on {ref} with {shown}")
    gha.add_summary(f"### Dispatched\n\n`{workflow}` on `{ref}` with {shown}.")
    gha.set_outputs(dispatched=True)
    return {"status": "dispatched", "workflow": workflow, "ref": ref, "inputs": inputs}


def _ref(args: argparse.Namespace) -> str:
    return args.ref or os.environ.get("GITHUB_REF_NAME") or "main"


def run_dispatch(args: argparse.Namespace) -> int:
    from mlops import config
    from mlops.repo import Repo

    config.load(Repo.at(args.repo))  # bad config stops here, before any request
    dispatch(args.workflow, _ref(args), parse_inputs(args.input))
    return 0


def run_dispatch_deploy(args: argparse.Namespace) -> int:
    from mlops import config, gha, registry
    from mlops.repo import Repo

    repo = Repo.at(args.repo)
    cfg = config.load(repo)
    registry.find_version(repo, args.version)  # BadInput naming the folders when the version is unknown
    if not cfg.training.promotion.deploy_after_promotion:
        print(
            f"not dispatched: config/training.json promotion.deploy_after_promotion is false; "
            f"deploy {args.version} with the deploy workflow when ready"
        )
        gha.set_outputs(dispatched=False)
        return 0
    dispatch(args.workflow, _ref(args), {"mode": args.mode, "version": args.version})
    return 0
