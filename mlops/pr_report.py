"""The experiment report of a pull request: train, compare with the champion, keep ONE comment.

The comment carries a hidden marker; a later push finds it and edits it instead of adding
another (the CML complaint this avoids). A fork's pull request runs with a read-only token,
so its report goes to the job summary only. Uses PyGithub at GITHUB_API_URL.

A pull request's run is an experiment: it never appends to the shared audit log (metadata/audit/),
so it needs no signing key (a fork has none) and cannot put events of an unmerged change into the
log. Training's events go to a throw-away log in a temporary folder instead (docs/audit.md).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from mlops import gha
from mlops.errors import BadInput
from mlops.repo import Repo

MARKER = "<!-- mlops-experiment-report -->"


@dataclasses.dataclass(frozen=True)
class ExperimentRepo(Repo):
    """The checkout as it is, except that the audit log lives in a throw-away folder."""

    scratch_audit: Path

    @property
    def audit_dir(self) -> Path:
        return self.scratch_audit


def _env_links() -> dict[str, str]:
    server = (os.environ.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
    repository = os.environ.get("GITHUB_REPOSITORY", "")
    run_id = os.environ.get("GITHUB_RUN_ID", "")
    base = os.environ.get("GITHUB_BASE_REF") or "main"
    out = {}
    if repository:
        out["blob"] = f"{server}/{repository}/blob/{base}"
        if run_id:
            out["run"] = f"{server}/{repository}/actions/runs/{run_id}"
    return out


def is_fork_event() -> bool:
    """True when GITHUB_EVENT_PATH describes a pull request whose head lives in another repository."""
    path = os.environ.get("GITHUB_EVENT_PATH")
    if not path or not os.path.exists(path):
        return False
    try:
        with open(path, encoding="utf-8") as fh:
            event = json.load(fh)
    except (OSError, ValueError):
        return False
    pr = event.get("pull_request") or {}
    head = ((pr.get("head") or {}).get("repo") or {}).get("full_name")
    base = ((pr.get("base") or {}).get("repo") or {}).get("full_name")
    return bool(head and base and head != base)


def build_markdown(
    outcome: dict[str, Any] | None,
    candidate: dict[str, Any] | None,
    champion: dict[str, Any] | None,
    *,
    card_path: str | None = None,
    error: str | None = None,
) -> str:
    """The comment body: marker, candidate-vs-champion metrics with deltas, gate decision, links."""
    from mlops import cards

    links = _env_links()
    sha = (os.environ.get("GITHUB_SHA") or "")[:12]
    lines = [MARKER, "## Experiment report", ""]
    if sha:
        lines += [f"Commit `{sha}`" + (f" · [run]({links['run']})" if "run" in links else ""), ""]
    if error is not None:
        lines += [f"**Training failed:** {error}", ""]
        return "\n".join(lines).rstrip() + "\n"
    assert outcome is not None and candidate is not None
    version = candidate["version"]
    best = next((c for c in outcome["candidates"] if c.get("version") == version), {})
    lines += [cards.metrics_diff_markdown(candidate, champion), ""]
    gate = best.get("decision") or outcome.get("decision")
    lines += [
        f"**Gate decision:** {gate}" + (" — **regression** against the champion" if best.get("regression") else "")
    ]
    reasons = (candidate.get("gate") or {}).get("reasons") or []
    lines += [f"- {r}" for r in reasons]
    lines += [""]
    others = [c for c in outcome["candidates"] if c.get("version") != version]
    if others:
        rows = [(c["model_type"], c.get("decision", "failed") if "error" not in c else "failed") for c in others]
        lines += ["Other model types trained:", "", gha.md_table(["model type", "decision"], rows), ""]
    if card_path:
        where = f"in the [run's artifacts]({links['run']})" if "run" in links else "in this run's workspace"
        lines += [f"Candidate card: `{card_path}` {where}."]
    if champion and "blob" in links:
        lines += [f"Champion card: [{champion['version']}]({links['blob']}/metadata/cards/{champion['version']}.md)."]
    lines += ["", "_Updated on every push to this pull request; nothing here is committed or deployed._"]
    return "\n".join(lines).rstrip() + "\n"


def post(body: str, pr_number: int) -> dict[str, Any]:
    """Create or update the one marked comment; fall back to the job summary when the token cannot write."""
    gha.add_summary(body.replace(MARKER, "").strip())
    token = os.environ.get("GITHUB_TOKEN")
    if not token:
        return {"status": "summary", "why": "no GITHUB_TOKEN"}
    if is_fork_event():
        return {"status": "summary", "why": "pull request from a fork: its token cannot write comments"}
    from mlops.alerts import target_from_env

    target = target_from_env()
    from github import Auth, Github, GithubException

    gh = Github(auth=Auth.Token(token), base_url=target.api_url, timeout=30, retry=None)
    try:
        issue = gh.get_repo(target.repository, lazy=True).get_issue(pr_number)
        for comment in issue.get_comments():
            if MARKER in (comment.body or ""):
                comment.edit(body)
                return {"status": "updated", "comment_id": comment.id, "url": comment.html_url}
        comment = issue.create_comment(body)
        return {"status": "created", "comment_id": comment.id, "url": comment.html_url}
    except GithubException as exc:
        if exc.status in (401, 403, 404):
            gha.warn(f"report not posted (HTTP {exc.status}): the token cannot write here; it is in the job summary")
            return {"status": "summary", "why": f"HTTP {exc.status}"}
        raise
    finally:
        gh.close()


def run(cfg: Any, pr_number: int, opts: Any) -> dict[str, Any]:
    """Train with `opts` (mlops.train.TrainOptions), build the report and post it; return what happened.

    Training records its audit events in a throw-away log (ExperimentRepo), never in metadata/audit/.
    """
    if pr_number < 1:
        raise BadInput("--pr", f"{pr_number} is not a pull request number", "pass the number, e.g. --pr 42")
    with tempfile.TemporaryDirectory(prefix="mlops-pr-audit-") as scratch:
        experiment = dataclasses.replace(cfg, repo=ExperimentRepo(cfg.repo.root, Path(scratch) / "audit"))
        return _train_and_post(experiment, pr_number, opts)


def _train_and_post(cfg: Any, pr_number: int, opts: Any) -> dict[str, Any]:
    from mlops import registry
    from mlops.errors import MlopsError
    from mlops.train import run as train

    repo = cfg.repo
    # The champion as the base branch has it: training may promote in this throw-away workspace.
    champion = copy.deepcopy(registry.current_manifest(repo))
    try:
        outcome = train(cfg, opts)
    except MlopsError as exc:
        body = build_markdown(None, None, champion, error=str(exc))
        result = post(body, pr_number)
        result["error"] = str(exc)
        return {**result, "body": body, "exit_code": exc.exit_code}
    version = outcome.get("best_version")
    if not version:
        body = build_markdown(None, None, champion, error="no model type trained successfully")
        return {**post(body, pr_number), "body": body, "exit_code": 1}
    candidate = registry.verify_integrity(registry.find_version(repo, version), repo)
    card = repo.cards / f"{version}.md"
    body = build_markdown(outcome, candidate, champion, card_path=repo.rel(card) if card.exists() else None)
    result = post(body, pr_number)
    gha.set_outputs(report_status=result["status"], candidate=version)
    return {**result, "body": body, "candidate": version, "exit_code": 0}
