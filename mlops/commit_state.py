"""Commit models/ and metadata/ back to the repository (scripts/commit-state calls main()).

Only the configured state folders are ever staged. In push mode the commit goes to the
checked-out branch with a bounded fetch-rebase-push retry and full jitter, so the Sunday
training and a six-hourly monitor never lose each other's commits; in pull-request mode it
goes to a new branch and a pull request (GITHUB_TOKEN-opened pull requests need a person to
approve their checks: docs/workflows.md). Settings: `commit` in config/gitops.json (`cfg.gitops.commit`).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops import gha, git
from mlops.errors import BadInput, CheckFailed, MlopsError
from mlops.repo import Repo

if TYPE_CHECKING:
    from mlops.config import CommitConfig

BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
# What GitHub's receive hooks say when a branch protection rule or ruleset refuses a direct push
# (GH006 protected branch, GH013 rulesets). Retrying can never succeed, so it is not retried.
PROTECTED_MARKERS = ("gh006", "gh013", "protected branch", "refusing to allow", "repository rule violations")


def _git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run git in root; a failure is CheckFailed unless check=False (the caller reads the exit code)."""
    env = {}
    # A runner has no identity configured; commits are the Actions bot's unless git or the environment says otherwise.
    for key, value in (("GIT_AUTHOR_NAME", BOT_NAME), ("GIT_AUTHOR_EMAIL", BOT_EMAIL)):
        if not _configured(root, "user.name" if key.endswith("NAME") else "user.email"):
            for name in (key, key.replace("AUTHOR", "COMMITTER")):
                if name not in os.environ:
                    env[name] = value
    proc = git.run(root, *args, env=env)
    if check and proc.returncode != 0:
        raise CheckFailed(f"git {' '.join(args)} failed (exit {proc.returncode}): {proc.stderr.strip()[-400:]}")
    return proc


def _configured(root: Path, key: str) -> bool:
    proc = git.run(root, "config", "--get", key)
    return proc.returncode == 0 and bool(proc.stdout.strip())


def current_branch(root: Path) -> str:
    """The checked-out branch; on a detached HEAD (some checkouts) GITHUB_REF_NAME names it."""
    proc = _git(root, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    if proc.returncode == 0 and proc.stdout.strip():
        return proc.stdout.strip()
    ref = os.environ.get("GITHUB_REF_NAME", "").strip()
    if ref:
        return ref
    raise BadInput("HEAD", "detached and GITHUB_REF_NAME is not set", "check out a branch or set GITHUB_REF_NAME")


def stage_state(root: Path, paths: Sequence[str]) -> list[str]:
    """Stage every change under the state folders (and nothing else); return the staged file names."""
    present = [p for p in paths if (root / p).exists() or _git(root, "ls-files", "--", p).stdout.strip()]
    if not present:
        return []
    _git(root, "add", "--all", "--", *present)
    out = _git(root, "diff", "--cached", "--name-only", "--", *present).stdout
    return [line for line in out.splitlines() if line]


def backoff(attempt: int, settings: CommitConfig, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(max, base * 2**(attempt-1))]."""
    ceiling = min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2 ** (attempt - 1))
    return rng.uniform(0, ceiling)


def push_with_retry(
    root: Path, branch: str, settings: CommitConfig, *, remote: str = "origin", rng: random.Random | None = None
) -> int:
    """Push HEAD to remote/branch; on rejection fetch, rebase and retry. Returns the attempts used."""
    rng = rng or random.Random()
    last = ""
    for attempt in range(1, settings.max_attempts + 1):
        proc = _git(root, "push", "--porcelain", remote, f"HEAD:refs/heads/{branch}", check=False)
        if proc.returncode == 0:
            return attempt
        last = f"{proc.stdout}\n{proc.stderr}".strip()  # --porcelain puts the per-ref verdict on stdout
        if is_protected_rejection(last):
            raise CheckFailed(
                f"commit-state: {remote}/{branch} is protected and refuses direct pushes; "
                "set commit.mode to pull-request in config/gitops.json (commit.mode: pull-request)"
            )
        why = next((line for line in last.splitlines() if "rejected" in line), last.splitlines()[-1] if last else "")
        gha.info(f"commit-state: push attempt {attempt}/{settings.max_attempts} failed: {why.strip()}")
        if attempt == settings.max_attempts:
            break
        time.sleep(backoff(attempt, settings, rng))
        fetched = _git(root, "fetch", "--quiet", remote, branch, check=False)
        if fetched.returncode != 0:
            last = fetched.stderr.strip()
            continue  # a transient fetch failure: the next attempt fetches again
        rebased = _git(root, "rebase", f"{remote}/{branch}", check=False)
        if rebased.returncode != 0:
            _git(root, "rebase", "--abort", check=False)
            conflicted = (rebased.stdout + rebased.stderr).strip().splitlines()[-3:]
            raise CheckFailed(
                f"commit-state: the state commit conflicts with {remote}/{branch} ({' '.join(conflicted)}); "
                "it is kept locally at HEAD: rebase by hand, or serialise the writers with the workflows' "
                "shared concurrency group"
            )
    last = "; ".join(line.strip() for line in last.splitlines() if line.strip())  # the error is one line
    raise CheckFailed(
        f"commit-state: could not push to {remote}/{branch} after {settings.max_attempts} attempts ({last[-300:]}); "
        "raise commit.max_attempts in config/gitops.json or re-run the job"
    )


def is_protected_rejection(output: str) -> bool:
    """True when git's push output is a branch protection refusal rather than a moved ref."""
    lowered = output.lower()
    return any(marker in lowered for marker in PROTECTED_MARKERS)


def open_pull_request(branch: str, base: str, title: str, body: str) -> dict | None:
    """Open the pull request from `branch` into `base` (or update the open one), with auto-merge where allowed.

    Uses PyGithub at GITHUB_API_URL; None when there is no token (dry run). Returns the pull request's
    url and number, whether it was opened or updated, and what became of auto-merge.
    """
    token = os.environ.get("GITHUB_TOKEN")
    repository = os.environ.get("GITHUB_REPOSITORY", "")
    if not token:
        return None
    if "/" not in repository:
        raise BadInput("GITHUB_REPOSITORY", f"{repository!r} is not owner/name", "Actions sets it; set it by hand")
    from github import Auth, Github, GithubException

    api = (os.environ.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")
    gh = Github(auth=Auth.Token(token), base_url=api, timeout=30, retry=None)
    try:
        repo = gh.get_repo(repository)
        owner = repository.split("/")[0]
        # A second commit-state call of the same run (deploy, then its rollback) pushes to the same branch.
        pull = next(iter(repo.get_pulls(state="open", head=f"{owner}:{branch}", base=base)), None)
        if pull is None:
            pull, action = repo.create_pull(base=base, head=branch, title=title, body=body), "opened"
        else:
            pull.edit(title=title, body=body)
            action = "updated"
        return {"url": pull.html_url, "number": pull.number, "action": action, "auto_merge": _auto_merge(repo, pull)}
    except GithubException as exc:
        raise CheckFailed(_pull_request_failure(branch, exc)) from None
    finally:
        gh.close()


def _github_message(exc: Exception) -> str:
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        errors = [e.get("message") for e in data.get("errors") or [] if isinstance(e, dict) and e.get("message")]
        return "; ".join([str(data.get("message") or ""), *errors]).strip("; ")
    return str(exc)


def _pull_request_failure(branch: str, exc: Exception) -> str:
    message = _github_message(exc)
    if "not permitted to create or approve pull requests" in message:
        fix = "allow it in Settings > Actions > General > 'Allow GitHub Actions to create and approve pull requests'"
    elif getattr(exc, "status", None) in (401, 403, 404):
        fix = "give the job `pull-requests: write` (and `contents: write`) in its workflow"
    else:
        fix = "open it by hand from that branch, or re-run the job"
    return (
        f"commit-state: pushed {branch} but could not open its pull request "
        f"(HTTP {getattr(exc, 'status', '?')}: {message[:200]}); {fix}"
    )


def _auto_merge(repo: Any, pull: Any) -> str:
    """Enable auto-merge (GraphQL enablePullRequestAutoMerge) when the repository allows it; say what happened.

    Never fatal: the pull request holds the state either way, and a person can merge it.
    """
    from github import GithubException

    if pull.raw_data.get("auto_merge"):
        return "enabled"
    if repo.allow_auto_merge is False:
        return "off (the repository does not allow auto-merge: Settings > General > Allow auto-merge)"
    if not hasattr(pull, "enable_automerge"):  # an older PyGithub
        return "not available in the installed PyGithub"
    # The first merge method the repository allows; unknown (None) counts as allowed.
    allowed = (("MERGE", repo.allow_merge_commit), ("SQUASH", repo.allow_squash_merge))
    method = next((name for name, ok in allowed if ok is not False), "REBASE")
    try:
        pull.enable_automerge(merge_method=method)
    except GithubException as exc:
        why = _github_message(exc)[:200]
        gha.warn(f"commit-state: auto-merge not enabled on {pull.html_url}: {why}")
        return f"not enabled ({why})"
    return "enabled"


def commit_state(repo: Repo, message: str, settings: CommitConfig, *, rng: random.Random | None = None) -> dict:
    """Stage, commit and push (or open a pull request for) the state folders; return what happened."""
    root = repo.root
    if not message.strip():
        raise BadInput("--message", "empty", "say what produced the state, e.g. 'training: run 123'")
    if _git(root, "rev-parse", "--is-inside-work-tree", check=False).stdout.strip() != "true":
        raise BadInput(str(root), "not a git work tree", "run inside the checked-out repository")
    branch = current_branch(root)
    files = stage_state(root, settings.paths)
    if not files:
        print(f"commit-state: no changes under {', '.join(p + '/' for p in settings.paths)}; nothing to commit")
        gha.set_outputs(committed=False)
        return {"committed": False, "files": []}
    _git(root, "commit", "--quiet", "-m", message, "--", *sorted({f.split("/", 1)[0] for f in files}))
    result: dict = {"committed": True, "files": files, "mode": settings.mode}
    if settings.mode == "push":
        result["attempts"] = push_with_retry(root, branch, settings, rng=rng)
        result["branch"] = branch
    else:
        run = os.environ.get("GITHUB_RUN_ID") or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        head = f"{settings.pr_branch_prefix}{run}-{os.environ.get('GITHUB_RUN_ATTEMPT') or '1'}"
        _git(root, "push", "--quiet", "origin", f"HEAD:refs/heads/{head}")
        body = (
            f"State written by {message!r}: {len(files)} file(s) under "
            f"{', '.join(p + '/' for p in settings.paths)}.\n\n"
            "Opened with GITHUB_TOKEN, so its checks wait until a person approves them (docs/workflows.md)."
        )
        pull = open_pull_request(head, branch, message, body) or {}
        result.update(branch=head, base=branch, pull_request=pull.get("url"))
        result.update(pull_request_action=pull.get("action"), auto_merge=pull.get("auto_merge"))
    result["sha"] = _git(root, "rev-parse", "HEAD").stdout.strip()
    _report(result)
    return result


def _report(result: dict) -> None:
    if result["mode"] == "push":
        where = f"pushed to {result['branch']} in {result['attempts']} attempt(s)"
    elif result["pull_request"]:
        where = (
            f"pull request {result['pull_request']} {result['pull_request_action']} from {result['branch']}; "
            f"auto-merge {result['auto_merge']}"
        )
    else:
        where = f"pushed branch {result['branch']}; no GITHUB_TOKEN, so no pull request was opened"
    print(f"commit-state: {len(result['files'])} file(s) committed as {result['sha'][:12]}, {where}")
    gha.set_outputs(
        committed=True,
        sha=result["sha"],
        branch=result["branch"],
        pull_request=result.get("pull_request") or "",
        auto_merge=result.get("auto_merge") or "",
    )
    shown = result["files"][:20]
    more = f"\n\n… and {len(result['files']) - 20} more" if len(result["files"]) > 20 else ""
    gha.add_summary(
        f"### State commit\n\n`{result['sha'][:12]}`: {where}\n\n" + "\n".join(f"- `{f}`" for f in shown) + more
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of scripts/commit-state: exit 0 committed or nothing to do, 1 push failed, 2 bad usage."""
    parser = argparse.ArgumentParser(prog="commit-state", description=__doc__.split("\n\n")[0])
    parser.add_argument("--message", "-m", required=True, help="commit message")
    parser.add_argument("--repo", default=os.environ.get("MLOPS_REPO", "."), help="repository root (default .)")
    args = parser.parse_args(argv)
    try:
        from mlops import config

        repo = Repo.at(args.repo)
        cfg = config.load(repo)
        commit_state(repo, args.message, cfg.gitops.commit)
    except MlopsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0
