"""`mlops doctor`: is this repository (typically a fresh fork) set up for its workflows to run?

Reads the repository's settings through the GitHub REST API (PyGithub, at GITHUB_API_URL with GITHUB_TOKEN,
as the alert channel does) and checks the local side: the log store and, when MLFLOW_TRACKING_URI is set,
the MLflow server. Every finding is one checklist line; a problem says what to click or set. See docs/doctor.md.

Nothing is changed, on GitHub or on disk.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.errors import BadInput

if TYPE_CHECKING:
    from mlops.config import Config

OK, NOTE, PROBLEM = "ok", "note", "problem"
MARKS = {OK: "[ok]", NOTE: "[--]", PROBLEM: "[!!]"}
SETTINGS_ACTIONS = "Settings → Actions → General"
SECRETS_PAGE = "Settings → Secrets and variables → Actions → New repository secret"
ADMIN_TOKEN = (
    "run with a token of a repository admin (`GITHUB_TOKEN=$(gh auth token)`, or a fine-grained token with "
    "Administration, Actions, Secrets, Issues and Metadata read)"
)
# Workflow states other than "active" (GitHub's enum): none of them runs.
DISABLED_WHY = {
    "disabled_fork": "disabled, as every workflow of a fresh fork",
    "disabled_manually": "disabled by hand",
    "disabled_inactivity": "disabled by GitHub after 60 days without repository activity",
    "deleted": "deleted",
}
# Ruleset rule types (GET /rules/branches/{branch}) that refuse a plain `git push` of a new commit.
BLOCKING_RULES = {
    "pull_request": "requires a pull request",
    "required_status_checks": "requires status checks",
    "update": "restricts updates",
    "required_signatures": "requires signed commits",
    "required_deployments": "requires deployments",
    "merge_queue": "requires a merge queue",
}
_SECRET_REFS = re.compile(
    r"secrets\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)|secrets\s*\[\s*['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]\s*\]"
)
_REPOSITORY_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")


@dataclass(frozen=True)
class Finding:
    check: str  # what was checked: "Actions", "Workflows", "Issues", ...
    status: str  # ok | note (worth knowing, not a problem) | problem
    text: str  # one line: what is so, and for a problem what to click or set

    def line(self) -> str:
        return f"{MARKS[self.status]} {self.check}: {self.text}"


@dataclass(frozen=True)
class WorkflowFile:
    """What the checkout's .github/workflows/<file> says."""

    file: str
    title: str  # its `name:`, as the Actions tab lists it
    scheduled: bool
    secrets: tuple[str, ...]  # secrets.NAME it references, GITHUB_TOKEN aside
    undeclared_jobs: tuple[str, ...]  # jobs that take the repository's default token permissions


@dataclass(frozen=True)
class Target:
    token: str
    repository: str
    api_url: str


def target(repository: str | None = None) -> Target:
    """Token, owner/name and API URL from the environment (GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_API_URL)."""
    token = os.environ.get("GITHUB_TOKEN") or ""
    where = "--repo" if repository else "GITHUB_REPOSITORY"
    name = (repository if repository is not None else os.environ.get("GITHUB_REPOSITORY", "")).strip()
    if not name:
        raise BadInput(where, "no repository to check", "pass --repo owner/name or set GITHUB_REPOSITORY")
    if not _REPOSITORY_RE.match(name):
        raise BadInput(where, f"{name!r} is not owner/name", "name it like acme/churn-model")
    if not token:
        raise BadInput(
            "GITHUB_TOKEN",
            "not set; doctor reads the repository's settings through the GitHub API",
            "export GITHUB_TOKEN=$(gh auth token) (a repository admin's token)",
        )
    api_url = (os.environ.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")
    if not re.match(r"^https?://[^\s/]+", api_url):
        raise BadInput("GITHUB_API_URL", f"{api_url!r} is not an http(s) URL", "unset it or use https://api.github.com")
    return Target(token, name, api_url)


def read_workflows(root: Path) -> list[WorkflowFile]:
    """Every .github/workflows/*.yml|yaml of the checkout, sorted by file name."""
    from mlops.yamlcheck import load_yaml

    out = []
    folder = root / ".github" / "workflows"
    for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
        text = path.read_text(encoding="utf-8")
        data = load_yaml(text, where=f".github/workflows/{path.name}")
        data = data if isinstance(data, dict) else {}
        triggers = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as true
        scheduled = isinstance(triggers, dict) and "schedule" in triggers
        names = {a or b for a, b in _SECRET_REFS.findall(text)}
        secrets = tuple(sorted(n for n in names if n.upper() != "GITHUB_TOKEN"))
        jobs = data.get("jobs") if isinstance(data.get("jobs"), dict) else {}
        undeclared: tuple[str, ...] = ()
        if "permissions" not in data:
            undeclared = tuple(j for j, spec in jobs.items() if not (isinstance(spec, dict) and "permissions" in spec))
        out.append(WorkflowFile(path.name, str(data.get("name") or path.name), scheduled, secrets, undeclared))
    return out


class _Api:
    """One PyGithub client for the checks: GETs only, two quick retries on a 5xx, no long sleeps."""

    def __init__(self, cfg: Config, where: Target):
        import github
        from github import Auth
        from urllib3.util.retry import Retry

        retry = Retry(
            total=2,
            connect=2,
            read=0,
            status=2,
            backoff_factor=0.2,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        self.target = where
        self.gh = github.Github(
            auth=Auth.Token(where.token),
            base_url=where.api_url,
            timeout=cfg.alerts.delivery.timeout_seconds,
            retry=retry,
            per_page=100,
            seconds_between_requests=0,
        )
        self.repo = self._open()

    def _open(self) -> Any:
        import requests
        from github import BadCredentialsException, UnknownObjectException

        try:
            return self.gh.get_repo(self.target.repository, lazy=False)
        except BadCredentialsException:
            raise _rejected_token() from None
        except UnknownObjectException:
            raise BadInput(
                "GITHUB_REPOSITORY",
                f"{self.target.repository} not found at {self.target.api_url}, or the token cannot see it (404)",
                "check the name and the token's access",
            ) from None
        except requests.exceptions.RequestException as exc:
            raise BadInput(
                "GITHUB_API_URL",
                f"{self.target.api_url} cannot be reached ({type(exc).__name__})",
                "check the network, or GITHUB_API_URL",
            ) from None

    def get(self, path: str) -> Any:
        """The JSON of GET <repository url><path>, for the endpoints PyGithub has no method for."""
        _, data = self.gh.requester.requestJsonAndCheck("GET", f"{self.repo.url}{path}")
        return data

    def close(self) -> None:
        try:
            self.gh.close()
        except Exception:  # noqa: BLE001 - closing a pool must never mask the outcome
            pass


def _rejected_token() -> BadInput:
    return BadInput("GITHUB_TOKEN", "GitHub rejected the token (401 Bad credentials)",
                    "export a valid token, e.g. GITHUB_TOKEN=$(gh auth token)")  # fmt: skip


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "status", None)


def _could_not(check: str, what: str, exc: BaseException, token: str) -> Finding:
    from mlops.alerts.client import scrub

    status = _status(exc)
    if status is not None:
        data = getattr(exc, "data", None)
        message = str(data.get("message", "")) if isinstance(data, dict) else ""
        reason = scrub(f"GitHub answered {status} {message}".strip(), token)
    else:
        reason = f"{type(exc).__name__}: GitHub did not answer"
    fix = ADMIN_TOKEN if status in (403, 404) else "run `mlops doctor` again"
    return Finding(check, PROBLEM, f"could not check {what} ({reason}): {fix}")


def _guarded(api: _Api, check: str, what: str, fn: Callable[[], list[Finding]]) -> list[Finding]:
    """Run one GitHub check; an answer it cannot use becomes one 'could not check' problem, not a crash."""
    import requests
    from github import BadCredentialsException, GithubException

    try:
        return fn()
    except BadCredentialsException:
        raise _rejected_token() from None
    except (GithubException, requests.exceptions.RequestException) as exc:
        return [_could_not(check, what, exc, api.target.token)]


# ---- the GitHub checks -------------------------------------------------------------------------


def check_actions(api: _Api) -> list[Finding]:
    perms = api.get("/actions/permissions")
    if not perms.get("enabled"):
        return [
            Finding(
                "Actions",
                PROBLEM,
                "GitHub Actions are off for this repository: open the Actions tab and "
                "click 'I understand my workflows, go ahead and enable them' (or Settings → Actions → "
                "General → Actions permissions → Allow all actions and reusable workflows)",
            )
        ]
    allowed = perms.get("allowed_actions") or "all"
    if allowed == "local_only":
        return [
            Finding(
                "Actions",
                PROBLEM,
                "only this repository's own actions may run, and the workflows use "
                f"actions/checkout, actions/setup-python, ...: {SETTINGS_ACTIONS} → Actions permissions → "
                "Allow all actions and reusable workflows",
            )
        ]
    if allowed == "selected":
        return [
            Finding(
                "Actions",
                NOTE,
                "enabled for selected actions only: make sure 'Allow actions created by "
                f"GitHub' is ticked ({SETTINGS_ACTIONS}); the workflows use only actions/*",
            )
        ]
    return [Finding("Actions", OK, "enabled, all actions allowed")]


def check_workflows(api: _Api, local: list[WorkflowFile]) -> list[Finding]:
    remote = {Path(wf.path).name: wf for wf in api.repo.get_workflows()}
    out = []
    for wf in local:
        kind = "scheduled workflow" if wf.scheduled else "workflow"
        found = remote.get(wf.file)
        if found is None:
            out.append(
                Finding(
                    "Workflows",
                    PROBLEM,
                    f"{kind} {wf.file} is in .github/workflows but GitHub does not "
                    f"list it: push it to the default branch ({api.repo.default_branch})",
                )
            )
        elif found.state != "active":
            why = DISABLED_WHY.get(found.state, found.state)
            out.append(
                Finding(
                    "Workflows",
                    PROBLEM,
                    f"{kind} {wf.file} ('{wf.title}') is {why} ({found.state}): "
                    f"Actions tab → {wf.title} → Enable workflow (or `gh workflow enable {wf.file}`)",
                )
            )
    if not out:
        scheduled = sum(1 for wf in local if wf.scheduled)
        out.append(Finding("Workflows", OK, f"all {len(local)} active ({scheduled} scheduled)"))
    return out


def check_issues(api: _Api) -> list[Finding]:
    if api.repo.has_issues:
        return [Finding("Issues", OK, "enabled (alerts are issues)")]
    return [
        Finding("Issues", PROBLEM, "Issues are disabled, and alerts are issues: Settings → General → Features → Issues")
    ]


def check_labels(api: _Api) -> list[Finding]:
    from mlops.alerts.model import LABELS

    have = {label.name.lower() for label in api.repo.get_labels()}
    missing = [name for name in LABELS if name.lower() not in have]
    if not missing:
        return [Finding("Labels", OK, f"the {len(LABELS)} alert labels exist")]
    return [
        Finding(
            "Labels",
            PROBLEM,
            f"alert labels missing: {', '.join(missing)}: Issues → Labels → New label "
            "for each (or `gh label create NAME`); the first alert creates them only if Issues are on "
            "and its job may write issues",
        )
    ]


def check_token(api: _Api, cfg: Config, local: list[WorkflowFile]) -> list[Finding]:
    perms = api.get("/actions/permissions/workflow")
    default = perms.get("default_workflow_permissions")
    undeclared = [f"{wf.file}:{job}" for wf in local for job in wf.undeclared_jobs]
    out = []
    if default == "write":
        out.append(Finding("Workflow token", OK, "default permissions: read and write"))
    elif undeclared:
        out.append(
            Finding(
                "Workflow token",
                PROBLEM,
                f"default permissions are read-only and job(s) "
                f"{', '.join(undeclared)} declare none: {SETTINGS_ACTIONS} → Workflow permissions → "
                "Read and write permissions (or give those jobs a `permissions:` block)",
            )
        )
    else:
        out.append(
            Finding(
                "Workflow token",
                OK,
                f"default permissions: {default}; every job declares its own "
                "`permissions:`, so the workflows get write access where they ask for it",
            )
        )
    approve = bool(perms.get("can_approve_pull_request_reviews"))
    if cfg.gitops.commit.mode == "pull-request" and not approve:
        out.append(
            Finding(
                "Workflow token",
                PROBLEM,
                "config/gitops.json commit.mode is pull-request but GitHub "
                f"Actions may not create pull requests: {SETTINGS_ACTIONS} → Workflow permissions → "
                "tick 'Allow GitHub Actions to create and approve pull requests'",
            )
        )
    elif cfg.gitops.commit.mode == "pull-request":
        out.append(Finding("Workflow token", OK, "may create pull requests (commit.mode: pull-request)"))
    return out


def _push_blockers(api: _Api, branch: str) -> list[str] | None:
    """Why a push of a new commit to `branch` is refused; [] if nothing refuses it; None if that cannot be read."""
    from github import GithubException

    reasons: list[str] = []
    if api.repo.get_branch(branch).protected:
        try:
            rule = api.get(f"/branches/{branch}/protection")
        except GithubException as exc:
            if _status(exc) not in (403, 404):
                raise
            return None  # protected, and only an admin's token may read how
        if rule.get("required_pull_request_reviews"):
            reasons.append("requires a pull request")
        if rule.get("required_status_checks"):
            reasons.append("requires status checks")
        apps = {a.get("slug") for a in ((rule.get("restrictions") or {}).get("apps") or []) if isinstance(a, dict)}
        if rule.get("restrictions") and "github-actions" not in apps:
            reasons.append("restricts who can push")
        if (rule.get("lock_branch") or {}).get("enabled"):
            reasons.append("is locked")
        if (rule.get("required_signatures") or {}).get("enabled"):
            reasons.append("requires signed commits")
    try:
        rules = api.get(f"/rules/branches/{branch}") or []
    except GithubException as exc:
        if _status(exc) not in (403, 404):
            raise
        rules = []  # rulesets are unavailable on this plan or to this token
    reasons += [BLOCKING_RULES[r["type"]] for r in rules if isinstance(r, dict) and r.get("type") in BLOCKING_RULES]
    return list(dict.fromkeys(reasons))


def check_branch(api: _Api, cfg: Config) -> list[Finding]:
    branch = api.repo.default_branch
    mode = cfg.gitops.commit.mode
    blockers = _push_blockers(api, branch)
    fix = (
        "set `commit.mode: pull-request` in config/gitops.json (or let GitHub Actions bypass the rule); "
        "pull-request mode also needs Actions allowed to create pull requests"
    )
    if mode == "push" and blockers is None:
        return [
            Finding(
                "Branch protection",
                PROBLEM,
                f"{branch} is protected and this token cannot read how, while "
                f"config/gitops.json commit.mode is push: if the rule requires pull requests or status "
                f"checks, the workflows' pushes are refused; {fix}, or {ADMIN_TOKEN} to check",
            )
        ]
    if mode == "push" and blockers:
        return [
            Finding(
                "Branch protection",
                PROBLEM,
                f"{branch} {' and '.join(blockers)}, so the workflows cannot "
                f"push their state (config/gitops.json commit.mode: push): {fix}",
            )
        ]
    if mode == "push":
        return [Finding("Branch protection", OK, f"{branch} accepts the workflows' pushes (commit.mode: push)")]
    out = [Finding("Branch protection", OK, f"commit.mode: pull-request: state reaches {branch} by pull request")]
    if api.repo.allow_auto_merge is False:
        out.append(
            Finding(
                "Branch protection",
                NOTE,
                "auto-merge is off, so each state pull request waits for a "
                "person to merge it: Settings → General → Pull Requests → Allow auto-merge",
            )
        )
    return out


def check_secrets(api: _Api, local: list[WorkflowFile], optional: Iterable[str] = ()) -> list[Finding]:
    from github import GithubException

    have = {s.name.upper() for s in api.repo.get_secrets()}
    try:
        have |= {str(s.get("name", "")).upper() for s in api.get("/actions/organization-secrets").get("secrets", [])}
    except GithubException as exc:
        if _status(exc) not in (403, 404):
            raise
    relaxed = {name.upper() for name in optional}
    used: dict[str, list[str]] = {}
    for wf in local:
        for name in wf.secrets:
            used.setdefault(name, []).append(wf.file)
    out = []
    for name, files in sorted(used.items()):
        if name.upper() in have:
            continue
        status = NOTE if name.upper() in relaxed else PROBLEM
        out.append(
            Finding(
                "Secrets",
                status,
                f"{name} is not set (used by {', '.join(files)}): {SECRETS_PAGE} (or `gh secret set {name}`)"
                + (
                    "; left unset on purpose (--optional-secret)"
                    if status == NOTE
                    else f"; if its fallback in docs/workflows.md#secrets will do, pass --optional-secret {name}"
                ),
            )
        )
    if not any(f.status == PROBLEM for f in out):
        out.insert(
            0, Finding("Secrets", OK, f"{len(used) - len(out)} of the {len(used)} secrets the workflows use are set")
        )
    return out


# ---- the local checks ----------------------------------------------------------------------------


def check_store(cfg: Config) -> list[Finding]:
    try:
        from mlops.logstore import open_store
    except ImportError as exc:  # the store package is optional in a partial checkout
        return [Finding("Log store", PROBLEM, f"mlops.logstore cannot be imported ({exc}): reinstall mlops")]
    try:
        store = open_store(cfg)
        store.check_reachable()
    except BadInput as exc:
        return [Finding("Log store", PROBLEM, f"{exc}")]
    return [Finding("Log store", OK, f"{store.uri} reachable (config/store.json)")]


def check_mlflow(cfg: Config, timeout: float = 5.0) -> list[Finding]:
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri:
        return [
            Finding(
                "MLflow",
                NOTE,
                "MLFLOW_TRACKING_URI is not set here, so not checked (the workflows use "
                "the secret of that name, or a local store carried in the Actions cache)",
            )
        ]
    from mlops.tracking import redact

    shown = redact(uri)
    if uri.startswith(("http://", "https://")):
        return _mlflow_http(uri, shown, timeout)
    if uri.startswith("sqlite:///"):
        from mlops.tracking import preflight

        try:
            preflight(cfg.repo)
        except BadInput as exc:
            return [Finding("MLflow", PROBLEM, f"{exc}")]
        return [Finding("MLflow", OK, f"{shown} can be opened")]
    return [Finding("MLflow", NOTE, f"{shown}: only http(s):// and sqlite:/// tracking URIs are checked")]


def _mlflow_http(uri: str, shown: str, timeout: float) -> list[Finding]:
    import requests

    headers = {}
    auth = None
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        headers["Authorization"] = f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"
    elif os.environ.get("MLFLOW_TRACKING_USERNAME"):
        auth = (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))
    url = f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search"
    try:
        answer = requests.get(url, params={"max_results": 1}, headers=headers, auth=auth, timeout=timeout)
    except requests.exceptions.RequestException as exc:
        return [
            Finding(
                "MLflow",
                PROBLEM,
                f"{shown} cannot be reached ({type(exc).__name__}): start the server "
                "or fix MLFLOW_TRACKING_URI (the same-named secret feeds the workflows)",
            )
        ]
    if answer.status_code in (401, 403):
        return [
            Finding(
                "MLflow",
                PROBLEM,
                f"{shown} refused the credentials ({answer.status_code}): set "
                "MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD",
            )
        ]
    if answer.status_code != 200:
        return [
            Finding(
                "MLflow",
                PROBLEM,
                f"{shown} answered {answer.status_code} to an experiment search: "
                "is MLFLOW_TRACKING_URI the MLflow server's address?",
            )
        ]
    return [Finding("MLflow", OK, f"{shown} answers")]


# ---- all of it ---------------------------------------------------------------------------------


def diagnose(cfg: Config, repository: str | None = None, optional_secrets: Iterable[str] = ()) -> list[Finding]:
    """Every finding, in checklist order. BadInput (exit 2) for no token, a malformed name, a refused token."""
    where = target(repository)
    local = read_workflows(cfg.repo.root)
    api = _Api(cfg, where)
    try:
        findings = []
        findings += _guarded(api, "Actions", "whether Actions are enabled", lambda: check_actions(api))
        findings += _guarded(api, "Workflows", "the workflows' states", lambda: check_workflows(api, local))
        findings += check_issues(api)  # read with the repository itself
        findings += _guarded(api, "Labels", "the labels", lambda: check_labels(api))
        findings += _guarded(api, "Workflow token", "the workflow permissions", lambda: check_token(api, cfg, local))
        findings += _guarded(api, "Branch protection", "the default branch", lambda: check_branch(api, cfg))
        findings += _guarded(
            api, "Secrets", "the repository secrets", lambda: check_secrets(api, local, optional_secrets)
        )
    finally:
        api.close()
    return findings + check_store(cfg) + check_mlflow(cfg)


def problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status == PROBLEM]


def summary_markdown(repository: str, findings: list[Finding]) -> str:
    """The checklist for the Actions job summary."""
    lines = [f"### mlops doctor: {repository}", ""]
    for f in findings:
        box = "x" if f.status != PROBLEM else " "
        lines.append(f"- [{box}] **{f.check}**: {f.text}")
    return "\n".join(lines)
