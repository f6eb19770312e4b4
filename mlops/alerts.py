"""GitHub issues as the alert channel: one issue per problem (fingerprint), kept current, closed on recovery.

Delivery goes through PyGithub to GITHUB_REPOSITORY at GITHUB_API_URL. Transport retries are off
(urllib3 would retry POSTs blindly and sleep any Retry-After); this module retries instead, with a
cap on total waiting, and re-checks by fingerprint before retrying a create that may have reached
GitHub. What cannot be delivered goes to the outbox in metadata/alerts/outbox/, which
`mlops alerts flush` sends later; without GITHUB_TOKEN the outbox is the dry run. See docs/alerts.md.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mlops import gha, jsonio
from mlops.errors import BadInput

T = TypeVar("T")

# Labels per kind; `ml-ops` is on every alert issue and scopes the dedupe search.
KIND_LABELS: dict[str, tuple[str, ...]] = {
    "regression": ("regression", "needs-investigation"),
    "drift": ("drift-alert", "needs-investigation"),
    "data-quality": ("data-quality",),
    "stale-dataset": ("data-quality", "needs-attention"),
    "deployment-failure": ("needs-attention",),
}
KIND_NAMES = {
    "regression": "Model regression",
    "drift": "Data drift",
    "data-quality": "Data quality",
    "stale-dataset": "Stale dataset",
    "deployment-failure": "Deployment failure",
}
# name -> (colour, description); created when missing, never edited when present.
LABELS: dict[str, tuple[str, str]] = {
    "ml-ops": ("5319e7", "Raised by the MLOps pipeline: one issue per problem fingerprint"),
    "regression": ("d73a4a", "A candidate model scored below the production champion"),
    "drift-alert": ("fbca04", "Production data drifted from the training reference"),
    "data-quality": ("e99695", "Data failed validation or is out of date"),
    "needs-investigation": ("d876e3", "Someone should find the cause"),
    "needs-attention": ("b60205", "Action needed now"),
}
SEVERITIES = ("info", "warning", "critical")
FINGERPRINT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/=+-]{0,199}$")
REPOSITORY_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
RUN_COMMENT_WINDOW_HOURS = 12  # longer than any Actions run (jobs stop at 6 h); re-runs get a new attempt key
MAX_BODY = 60000  # GitHub refuses bodies over 65536 characters
_PROCESS_RUN = f"local-{uuid.uuid4().hex[:12]}"


def fingerprint_marker(fingerprint: str) -> str:
    return f"<!-- mlops-fingerprint: {fingerprint} -->"


def run_marker(run_key: str, action: str) -> str:
    return f"<!-- mlops-run: {run_key} {action} -->"


def make_fingerprint(kind: str, *parts: object) -> str:
    """The documented scheme: kind, then what identifies the problem (dataset, model, feature set), ':'-joined."""
    cleaned = [re.sub(r"[^A-Za-z0-9._/=+-]+", "-", str(p)).strip("-") or "x" for p in (kind, *parts)]
    return ":".join(cleaned)[:200]


@dataclass
class Alert:
    kind: str
    title: str
    summary: str
    facts: dict[str, object]
    evidence: dict
    fingerprint: str
    severity: str = "warning"
    links: dict[str, str] = field(default_factory=dict)
    extra_labels: tuple = ()

    def validate(self, where: str = "alert") -> None:
        """Raise BadInput naming the first field that cannot make an issue."""
        if self.kind not in KIND_LABELS:
            raise BadInput(f"{where}: kind", f"unknown kind {self.kind!r}", f"use one of {', '.join(KIND_LABELS)}")
        if self.severity not in SEVERITIES:
            raise BadInput(f"{where}: severity", f"unknown severity {self.severity!r}", "use info, warning or critical")
        if not isinstance(self.fingerprint, str) or not FINGERPRINT_RE.match(self.fingerprint):
            raise BadInput(
                f"{where}: fingerprint",
                f"{self.fingerprint!r} is not a fingerprint",
                "use letters, digits and . _ : / = + - (at most 200), e.g. make_fingerprint('drift', dataset)",
            )
        if not isinstance(self.title, str) or not self.title.strip():
            raise BadInput(f"{where}: title", "empty title", "give the alert a stable title without dates")
        if not isinstance(self.summary, str):
            raise BadInput(f"{where}: summary", "must be a string", "write one paragraph")
        for name in ("facts", "evidence", "links"):
            if not isinstance(getattr(self, name), dict):
                raise BadInput(f"{where}: {name}", "must be a JSON object", f"pass {name} as a dict")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.links.items()):
            raise BadInput(f"{where}: links", "must map names to paths or URLs (strings)", "fix the links dict")
        if not all(isinstance(x, str) and x for x in self.extra_labels):
            raise BadInput(f"{where}: extra_labels", "must be non-empty strings", "fix extra_labels")
        try:
            jsonio.canonical({"facts": self.facts, "evidence": self.evidence})
        except (TypeError, ValueError) as exc:
            raise BadInput(
                f"{where}: evidence", f"not JSON-serialisable ({exc})", "pass plain numbers/strings"
            ) from None

    def labels(self) -> list[str]:
        out = ["ml-ops", *KIND_LABELS[self.kind], *self.extra_labels]
        return list(dict.fromkeys(out))

    def clean_title(self) -> str:
        return " ".join(self.title.split())[:200]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "summary": self.summary,
            "facts": self.facts,
            "evidence": self.evidence,
            "fingerprint": self.fingerprint,
            "severity": self.severity,
            "links": dict(self.links),
            "extra_labels": list(self.extra_labels),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Alert:
        """Build and validate an Alert from JSON (outbox entries, `mlops alerts raise --from-json`)."""
        if not isinstance(data, dict):
            raise BadInput(where, "an alert must be a JSON object", "write {kind, title, summary, fingerprint, ...}")
        missing = [k for k in ("kind", "title", "summary", "fingerprint") if k not in data]
        if missing:
            raise BadInput(f"{where}: {missing[0]}", "missing", "add it (see docs/alerts.md)")
        if not isinstance(data.get("extra_labels", []), list):
            raise BadInput(f"{where}: extra_labels", "must be a list of label names", 'write ["name", ...]')
        alert = cls(
            kind=data["kind"],
            title=data["title"],
            summary=data["summary"],
            facts=data.get("facts", {}),
            evidence=data.get("evidence", {}),
            fingerprint=data["fingerprint"],
            severity=data.get("severity", "warning"),
            links=data.get("links", {}),
            extra_labels=tuple(data.get("extra_labels", ())),
        )
        alert.validate(where)
        return alert


# ---- settings and environment ---------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    timeout_seconds: int = 10
    max_attempts: int = 4
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 30.0
    max_wait_seconds: float = 120.0
    per_page: int = 100
    seconds_between_writes: float = 1.0
    resolve_after_clean_runs: int = 3
    workflow: str = "ml-training.yml"
    ref: str = "main"
    cooldown_hours: float = 24.0

    @classmethod
    def from_config(cls, cfg: Any) -> Settings:
        raw = cfg.section("alerts")
        delivery, retrain = raw.get("delivery", {}), raw.get("retrain", {})
        d = cls()
        return cls(
            timeout_seconds=int(delivery.get("timeout_seconds", d.timeout_seconds)),
            max_attempts=int(delivery.get("max_attempts", d.max_attempts)),
            backoff_base_seconds=float(delivery.get("backoff_base_seconds", d.backoff_base_seconds)),
            backoff_max_seconds=float(delivery.get("backoff_max_seconds", d.backoff_max_seconds)),
            max_wait_seconds=float(delivery.get("max_wait_seconds", d.max_wait_seconds)),
            per_page=int(delivery.get("per_page", d.per_page)),
            seconds_between_writes=float(delivery.get("seconds_between_writes", d.seconds_between_writes)),
            resolve_after_clean_runs=int(raw.get("resolve_after_clean_runs", d.resolve_after_clean_runs)),
            workflow=str(retrain.get("workflow", d.workflow)),
            ref=str(retrain.get("ref", d.ref)),
            cooldown_hours=float(retrain.get("cooldown_hours", d.cooldown_hours)),
        )


@dataclass(frozen=True)
class Target:
    token: str | None
    repository: str  # owner/name, or "" in a dry run outside Actions
    api_url: str
    server_url: str
    run_id: str | None
    run_key: str
    sha: str | None

    @property
    def run_url(self) -> str | None:
        if not (self.run_id and self.repository):
            return None
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}"


def target_from_env() -> Target:
    """Read GITHUB_* variables; a malformed repository or API URL is BadInput whether or not a token is set."""
    token = os.environ.get("GITHUB_TOKEN") or None
    repository = os.environ.get("GITHUB_REPOSITORY", "").strip()
    if repository and not REPOSITORY_RE.match(repository):
        raise BadInput(
            "GITHUB_REPOSITORY", f"{repository!r} is not owner/name", "set it like acme/churn-model (Actions sets it)"
        )
    if token and not repository:
        raise BadInput("GITHUB_REPOSITORY", "not set while GITHUB_TOKEN is", "set GITHUB_REPOSITORY=owner/name")
    api_url = (os.environ.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")
    if not re.match(r"^https?://[^\s/]+", api_url):
        raise BadInput("GITHUB_API_URL", f"{api_url!r} is not an http(s) URL", "unset it or use https://api.github.com")
    server_url = (os.environ.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
    run_id = os.environ.get("GITHUB_RUN_ID") or None
    run_key = f"{run_id}.{os.environ.get('GITHUB_RUN_ATTEMPT') or '1'}" if run_id else _PROCESS_RUN
    return Target(token, repository, api_url, server_url, run_id, run_key, os.environ.get("GITHUB_SHA") or None)


_TOKEN_PATTERNS = re.compile(
    r"(gh[pousr]_[A-Za-z0-9_]{8,}|github_pat_[A-Za-z0-9_]{8,}|(?i:(?:token|bearer)\s+)[A-Za-z0-9_.=-]{20,})"
)


def scrub(text: str, token: str | None = None) -> str:
    """Remove the token (and anything shaped like one) from text that may be printed or stored."""
    if token:
        text = text.replace(token, "***")
    return _TOKEN_PATTERNS.sub("***", text)


# ---- rendering ----------------------------------------------------------------------------------


def _safe_text(text: str) -> str:
    # A summary must not smuggle a fingerprint marker (or any HTML comment) into the body.
    return str(text).replace("<!--", "&lt;!--").replace("-->", "--&gt;")


def _cell(value: object) -> object:
    if value is None:
        return "—"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return _safe_text(value) if isinstance(value, str) else value


def _link(target: Target, commit: str, name: str, value: str) -> str:
    label = _safe_text(name).replace("[", "(").replace("]", ")")
    if re.match(r"^https?://", value):
        return f"[{label}]({value})"
    if target.repository:
        path = urllib.parse.quote(value.lstrip("/"))
        return f"[{label}]({target.server_url}/{target.repository}/blob/{commit}/{path})"
    return f"{label}: `{value}`"


def _json_block(data: Any, limit: int) -> str:
    text = jsonio.dumps(data).rstrip("\n")
    if len(text) > limit:
        text = text[:limit] + "\n... (truncated; the full evidence is in the report files linked above)"
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}json\n{text}\n{fence}"


def render_body(alert: Alert, target: Target, commit: str, *, note: str = "") -> str:
    """The issue body: marker, summary paragraph, facts table, run/file/audit links, raw JSON in <details>."""
    lines = [fingerprint_marker(alert.fingerprint), ""]
    lines.append(f"**{KIND_NAMES[alert.kind]}** · severity **{alert.severity}** · fingerprint `{alert.fingerprint}`")
    lines += ["", _safe_text(" ".join(alert.summary.split())) or "_No summary given._", ""]
    if alert.facts:
        lines += [gha.md_table(["Measure", "Value"], [(_cell(k), _cell(v)) for k, v in alert.facts.items()]), ""]
    run = f"[run {target.run_id}]({target.run_url})" if target.run_url else "not run in GitHub Actions"
    lines.append(f"- **Workflow run:** {run}")
    if alert.links:
        files = " · ".join(_link(target, commit, k, v) for k, v in alert.links.items())
        lines.append(f"- **Files:** {files}")
    seq = alert.evidence.get("audit_seq") if isinstance(alert.evidence, dict) else None
    audit = (
        f"entry #{seq} in `metadata/audit/`" if isinstance(seq, int) else "the `alert_*` events in `metadata/audit/`"
    )
    lines.append(f"- **Audit log:** {audit}")
    if note:
        lines.append(f"- **Note:** {_safe_text(note)}")
    head = "\n".join(lines)
    budget = max(MAX_BODY - len(head) - 200, 1000)
    lines += ["", "<details><summary>Raw evidence (JSON)</summary>", "", _json_block(alert.evidence, budget)]
    lines += [
        "",
        "</details>",
        "",
        "<sub>Raised by `mlops alerts`; recurrences comment here, recovery closes it.</sub>",
    ]
    return "\n".join(lines) + "\n"


def _fingerprint_of(body: str | None) -> str | None:
    # Only the first line counts, so evidence quoting a marker can never match.
    first = (body or "").split("\n", 1)[0].strip()
    m = re.fullmatch(r"<!-- mlops-fingerprint: (\S+) -->", first)
    return m.group(1) if m else None


# ---- delivery ------------------------------------------------------------------------------------


class Undeliverable(Exception):
    """Delivery gave up; the message (already scrubbed) says why."""


class _Channel:
    """One PyGithub client plus the retry policy and the waiting budget of one command."""

    def __init__(self, settings: Settings, target: Target):
        import github
        from github import Auth
        from urllib3.util.retry import Retry

        self.settings = settings
        self.target = target
        self.waited = 0.0
        self.answered = 0  # successful calls so far: a 401 before any is a bad token, after one a lost token
        self.blocked: str | None = None
        # Transport retries are off on purpose: urllib3 (and PyGithub's GithubRetry) would resend POSTs
        # blindly and sleep any Retry-After uncapped. Every failure comes back to call(), which re-checks
        # POSTs by fingerprint, honours Retry-After within max_wait_seconds and counts attempts.
        retry = Retry(
            total=0,
            connect=0,
            read=False,
            status=0,
            redirect=0,
            status_forcelist=(),
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        self.gh = github.Github(
            auth=Auth.Token(target.token or ""),
            base_url=target.api_url,
            timeout=settings.timeout_seconds,
            retry=retry,
            per_page=settings.per_page,
            lazy=True,
            seconds_between_requests=0,
            seconds_between_writes=settings.seconds_between_writes,
        )
        self.repo = self.gh.get_repo(target.repository)

    def close(self) -> None:
        try:
            self.gh.close()
        except Exception:  # noqa: BLE001 - closing a pool must never mask the outcome
            pass

    def _scrub(self, text: str) -> str:
        return scrub(text, self.target.token)

    def call(
        self,
        what: str,
        fn: Callable[[], T],
        *,
        post: bool = False,
        recheck: Callable[[], Any] | None = None,
        not_found: Callable[[], BaseException] | None = None,
    ) -> T:
        """Run one API step with bounded retries; a POST that may have landed is re-checked, never blindly resent."""
        import requests
        from github import GithubException

        attempt = 0
        while True:
            if self.blocked:
                raise Undeliverable(self.blocked)
            attempt += 1
            try:
                value = fn()
                self.answered += 1
                return value
            except GithubException as exc:
                wait, ambiguous, reason = self._judge_status(what, exc, not_found)
            except requests.exceptions.RequestException as exc:
                never_sent = isinstance(exc, requests.exceptions.ConnectTimeout) or (
                    isinstance(exc, requests.exceptions.ConnectionError) and "NewConnectionError" in repr(exc.args)
                )
                kind = "timed out" if isinstance(exc, requests.exceptions.Timeout) else "connection failed"
                wait, ambiguous, reason = None, not never_sent, f"{what}: {kind} ({type(exc).__name__})"
            if post and ambiguous and recheck is None:
                raise Undeliverable(f"{reason}; not retried because GitHub may have acted on it")
            if attempt >= self.settings.max_attempts:
                raise Undeliverable(f"{reason}; gave up after {attempt} attempts")
            if wait is None:
                step = self.settings.backoff_base_seconds * (2 ** (attempt - 1))
                wait = min(self.settings.backoff_max_seconds, step) * (0.5 + random.random() / 2)
            left = self.settings.max_wait_seconds - self.waited
            if wait > left:
                self.blocked = (
                    f"{reason}; waiting {wait:.0f}s would pass the {self.settings.max_wait_seconds:g}s cap "
                    "(config/alerts.json delivery.max_wait_seconds)"
                )
                raise Undeliverable(self.blocked)
            if wait > 0:
                time.sleep(wait)
                self.waited += wait
            if post and ambiguous and recheck is not None:
                found = self.call(f"re-check after {what}", recheck)
                if found is not None:
                    return found

    def _judge_status(
        self, what: str, exc: Any, not_found: Callable[[], BaseException] | None
    ) -> tuple[float | None, bool, str]:
        """(server-requested wait or None for backoff, may-have-landed, reason); raises when retrying is pointless."""
        status = int(getattr(exc, "status", 0) or 0)
        headers = {str(k).lower(): str(v) for k, v in (getattr(exc, "headers", None) or {}).items()}
        data = getattr(exc, "data", None)
        message = str(data.get("message", "")) if isinstance(data, dict) else str(data or "")
        reason = self._scrub(f"{what}: GitHub answered {status} {message}".strip())
        if status == 401 and self.answered:
            # The token worked earlier in this command (expired or revoked mid-run): keep the alert.
            raise Undeliverable(reason)
        if status == 401:
            raise BadInput(
                "GITHUB_TOKEN",
                "GitHub rejected the token (401 Bad credentials)",
                "use a valid token with issues: write (and actions: write to dispatch retraining)",
            )
        if status == 404:
            if not_found is not None:
                raise not_found()
            raise BadInput(
                "GITHUB_REPOSITORY",
                f"{self.target.repository} not found at {self.target.api_url}, or the token cannot see it (404)",
                "check GITHUB_REPOSITORY and the token's repository access",
            )
        lowered = message.lower()
        rate_limited = status == 429 or (
            status == 403
            and (
                "retry-after" in headers
                or headers.get("x-ratelimit-remaining") == "0"
                or "rate limit" in lowered
                or "try again" in lowered
            )
        )
        if rate_limited:
            if "retry-after" in headers and headers["retry-after"].strip().isdigit():
                return float(headers["retry-after"]), False, reason
            if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset", "").isdigit():
                return max(float(headers["x-ratelimit-reset"]) - time.time() + 1, 0.0), False, reason
            return None, False, reason
        if status >= 500:
            return None, True, reason
        # 403 without a rate limit (missing permission), 422 and the rest: retrying cannot help.
        raise Undeliverable(reason)


def _raw(obj: Any) -> dict[str, Any]:
    # The JSON GitHub sent. PyGithub's raw_data (and any attribute the listing lacked, such as
    # pull_request) would re-fetch a lazily listed object: one extra GET per issue or comment.
    return obj._rawData


def _issue_fingerprints(ch: _Channel, fingerprint: str) -> tuple[list[Any], list[Any]]:
    """All ml-ops issues with this fingerprint, every page: (open oldest first, closed most recent first)."""

    def listing() -> list[Any]:
        found = []
        for issue in ch.repo.get_issues(state="all", labels=["ml-ops"], sort="created", direction="asc"):
            raw = _raw(issue)
            if raw.get("pull_request") is None and _fingerprint_of(raw.get("body")) == fingerprint:
                found.append(issue)
        return found

    matches = ch.call("list ml-ops issues", listing)
    opened = sorted((i for i in matches if _raw(i).get("state") == "open"), key=lambda i: i.number)
    closed = sorted(
        (i for i in matches if _raw(i).get("state") != "open"),
        key=lambda i: (_raw(i).get("closed_at") or "", i.number),
        reverse=True,
    )
    return opened, closed


def _ensure_labels(ch: _Channel, names: list[str]) -> list[str]:
    """Create the missing labels with our colours; existing ones are left exactly as they are."""
    from github import GithubException

    existing = ch.call("list labels", lambda: {label.name.lower() for label in ch.repo.get_labels()})
    created = []
    for name in names:
        if name.lower() in existing:
            continue
        colour, description = LABELS.get(name, ("ededed", "Added by mlops alerts"))

        def create(name: str = name, colour: str = colour, description: str = description) -> bool:
            try:
                ch.repo.create_label(name, colour, description)
            except GithubException as exc:
                if exc.status != 422:  # 422 already_exists: a concurrent run or our own landed retry
                    raise
                return False
            return True

        # Creating a label twice is harmless (422), so an uncertain POST may simply be retried.
        if ch.call(f"create label {name}", create, post=True, recheck=lambda: None):
            created.append(name)
    return created


def _upsert_comment(ch: _Channel, issue: Any, marker: str, text: str) -> tuple[Any, bool]:
    """At most one comment per run and action: edit this run's comment if it exists, else add one."""
    import datetime as dt

    body = f"{marker}\n\n{text}"
    # This run's comment was written during this run, so only recently updated comments can be it;
    # `since` keeps a years-old issue with hundreds of comments to one page. Real clock on purpose:
    # it is compared with GitHub's clock, not with MLOPS_NOW.
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=RUN_COMMENT_WINDOW_HOURS)

    def find() -> Any:
        for comment in issue.get_comments(since=since):
            if (_raw(comment).get("body") or "").startswith(marker):
                return comment
        return None

    existing = ch.call(f"list comments on #{issue.number}", find)
    if existing is not None:
        ch.call(f"edit comment on #{issue.number}", lambda: existing.edit(body))
        return existing, False
    comment = ch.call(f"comment on #{issue.number}", lambda: issue.create_comment(body), post=True, recheck=find)
    return comment, True


def _recurrence_text(alert: Alert, target: Target, commit: str, verb: str, note: str) -> str:
    body = render_body(alert, target, commit, note=note)
    # Drop the issue's own marker line; the comment carries the run marker instead.
    rest = body.split("\n", 1)[1].lstrip("\n")
    return f"**{verb}** — {alert.clean_title()}\n\n{rest}"


def _deliver_raise(ch: _Channel, alert: Alert, commit: str, note: str = "") -> dict[str, Any]:
    target = ch.target
    opened, closed = _issue_fingerprints(ch, alert.fingerprint)
    result: dict[str, Any] = {"fingerprint": alert.fingerprint, "labels_created": []}
    marker = run_marker(target.run_key, "raise")
    if opened:
        issue = opened[0]
        for dup in opened[1:]:  # heal a duplicate left by an old race: keep the oldest
            _upsert_comment(ch, dup, run_marker(target.run_key, "dedupe"), f"Duplicate of #{issue.number}.")
            ch.call(f"close duplicate #{dup.number}", lambda d=dup: d.edit(state="closed", state_reason="not_planned"))
            result.setdefault("closed_duplicates", []).append(dup.number)
        comment, created = _upsert_comment(
            ch, issue, marker, _recurrence_text(alert, target, commit, "Seen again", note)
        )
        result.update(status="commented", comment_created=created, comment_url=_raw(comment).get("html_url"))
    elif closed:
        issue = closed[0]
        result["labels_created"] = _ensure_labels(ch, alert.labels() + [n for n in LABELS if n not in alert.labels()])
        current = [label["name"] for label in _raw(issue).get("labels", [])]
        labels = list(dict.fromkeys(current + alert.labels()))
        ch.call(f"reopen #{issue.number}", lambda: issue.edit(state="open", labels=labels))
        comment, created = _upsert_comment(ch, issue, marker, _recurrence_text(alert, target, commit, "Recurred", note))
        result.update(status="reopened", comment_created=created, comment_url=_raw(comment).get("html_url"))
    else:
        result["labels_created"] = _ensure_labels(ch, alert.labels() + [n for n in LABELS if n not in alert.labels()])
        body = render_body(alert, target, commit, note=note)

        def still_open() -> Any:
            again, _ = _issue_fingerprints(ch, alert.fingerprint)
            return again[0] if again else None

        issue = ch.call(
            "create issue",
            lambda: ch.repo.create_issue(title=alert.clean_title(), body=body, labels=alert.labels()),
            post=True,
            recheck=still_open,
        )
        result.update(status="opened")
    result.update(issue=issue.number, url=_raw(issue).get("html_url"), title=alert.clean_title())
    return result


def _deliver_resolve(ch: _Channel, fingerprint: str, reason: str) -> dict[str, Any]:
    opened, _ = _issue_fingerprints(ch, fingerprint)
    if not opened:
        return {"status": "not-open", "fingerprint": fingerprint, "issues": []}
    closed = []
    for issue in opened:
        _upsert_comment(ch, issue, run_marker(ch.target.run_key, "resolve"), f"**Resolved** — {_safe_text(reason)}")
        ch.call(f"close #{issue.number}", lambda i=issue: i.edit(state="closed", state_reason="completed"))
        closed.append(issue.number)
    first = opened[0]
    return {
        "status": "closed",
        "fingerprint": fingerprint,
        "issue": first.number,
        "issues": closed,
        "url": _raw(first).get("html_url"),
        "reason": reason,
    }


# ---- outbox ----------------------------------------------------------------------------------------


def outbox_dir(repo: Any) -> Path:
    return repo.alerts_dir / "outbox"


def _queue(repo: Any, entry: dict[str, Any], target: Target) -> Path:
    now = jsonio.utc_now()
    entry = {**entry, "queued_at": jsonio.format_utc(now), "queued_ns": time.time_ns(), "run_key": target.run_key}
    if entry.get("error"):
        entry["error"] = scrub(entry["error"], target.token)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", entry["fingerprint"])[:80]
    path = outbox_dir(repo) / f"{now.strftime('%Y%m%dT%H%M%SZ')}-{slug}-{uuid.uuid4().hex[:6]}.json"
    jsonio.write_json(path, entry)
    return path


def read_outbox(repo: Any) -> list[tuple[Path, dict[str, Any]]]:
    """Every queued entry, validated (BadInput names a broken file before anything is sent), oldest first."""
    entries = []
    folder = outbox_dir(repo)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = jsonio.read_json(path, "outbox entry")
        where = repo.rel(path)
        if not isinstance(data, dict) or data.get("action") not in {"raise", "resolve"}:
            raise BadInput(f"{where}: /action", "expected raise or resolve", "fix or delete the file")
        if data["action"] == "raise":
            Alert.from_dict(data.get("alert"), f"{where}: /alert")
        elif not isinstance(data.get("reason"), str) or not FINGERPRINT_RE.match(str(data.get("fingerprint"))):
            raise BadInput(f"{where}: /fingerprint", "a resolve entry needs fingerprint and reason", "fix or delete it")
        entries.append((path, data))
    entries.sort(key=lambda e: (e[1].get("queued_ns", 0), e[0].name))
    return entries


def _drop_queued(repo: Any, fingerprint: str, upto_ns: int) -> int:
    """A delivered action supersedes every older queued one for the same fingerprint."""
    dropped = 0
    folder = outbox_dir(repo)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = jsonio.read_json(path, "outbox entry")
        except BadInput:
            continue  # a broken entry is reported by the next flush, not by a delivery that succeeded
        if isinstance(data, dict) and data.get("fingerprint") == fingerprint and data.get("queued_ns", 0) <= upto_ns:
            path.unlink(missing_ok=True)
            dropped += 1
    return dropped


# ---- audit ---------------------------------------------------------------------------------------------

_AUDIT_EVENTS = {
    "opened": "alert_opened",
    "commented": "alert_updated",
    "reopened": "alert_reopened",
    "closed": "alert_closed",
}


def _audit(repo: Any, event_type: str, payload: dict[str, Any]) -> int | None:
    from mlops import audit

    entry = audit.record(repo, event_type, payload)
    return entry.get("seq") if isinstance(entry, dict) else None


def _audit_preflight(repo: Any) -> None:
    """Before anything is sent: an issue must not be opened and then fail to be recorded for want of the signing key."""
    from mlops import audit

    audit.check_can_record(repo)


# ---- public API ------------------------------------------------------------------------------------


def _commit(cfg: Any, target: Target) -> str:
    if target.sha:
        return target.sha
    sha = cfg.repo.git_commit()
    return sha if sha != "unknown" else "HEAD"


def _summary_for_outbox(alert: Alert, body: str, path: str, why: str) -> None:
    gha.add_summary(
        f"### Alert queued, not sent: {_safe_text(alert.clean_title())}\n\n{_safe_text(why)}. Kept in `{path}`; "
        "`mlops alerts flush` sends it.\n\n"
        f"Labels: {', '.join(f'`{n}`' for n in alert.labels())}\n\n---\n\n{body}"
    )


def raise_alert(cfg: Any, alert: Alert) -> dict:
    """Open, update or reopen the issue for alert.fingerprint; on failure or without a token, queue it in the outbox."""
    alert.validate()
    target = target_from_env()
    settings = Settings.from_config(cfg)
    if target.token:
        _audit_preflight(cfg.repo)
    return _raise_with(cfg, settings, target, alert, queued_ns=None)


def _raise_with(
    cfg: Any,
    settings: Settings,
    target: Target,
    alert: Alert,
    *,
    queued_ns: int | None,
    note: str = "",
    channel: _Channel | None = None,
) -> dict[str, Any]:
    commit = _commit(cfg, target)
    repo = cfg.repo
    started_ns = time.time_ns()
    if not target.token:
        body = render_body(alert, target, commit, note=note)
        path = None
        if queued_ns is None:
            path = _queue(repo, _raise_entry(alert, body, "no GITHUB_TOKEN: dry run"), target)
            _summary_for_outbox(alert, body, repo.rel(path), "No GITHUB_TOKEN, so this is a dry run")
            gha.info(f"alert {alert.fingerprint}: dry run (no GITHUB_TOKEN); queued in {repo.rel(path)}")
        return {
            "status": "outbox",
            "dry_run": True,
            "delivered": False,
            "fingerprint": alert.fingerprint,
            "outbox": repo.rel(path) if path else None,
            "title": alert.clean_title(),
            "markdown": body,
        }
    own = channel is None
    ch = channel or _Channel(settings, target)
    try:
        result = _deliver_raise(ch, alert, commit, note=note)
    except Undeliverable as exc:
        why = scrub(str(exc), target.token)
        if queued_ns is not None:  # flushing: the entry stays where it is
            return {
                "status": "outbox",
                "dry_run": False,
                "delivered": False,
                "fingerprint": alert.fingerprint,
                "error": why,
            }
        body = render_body(alert, target, commit, note=note)
        path = _queue(repo, _raise_entry(alert, body, why), target)
        gha.warn(
            f"alert {alert.fingerprint} NOT delivered ({why}); queued in {repo.rel(path)}, "
            "`mlops alerts flush` will send it"
        )
        _summary_for_outbox(alert, body, repo.rel(path), f"Delivery failed: {why}")
        return {
            "status": "outbox",
            "dry_run": False,
            "delivered": False,
            "fingerprint": alert.fingerprint,
            "outbox": repo.rel(path),
            "error": why,
            "title": alert.clean_title(),
        }
    finally:
        if own:
            ch.close()
    result.update(delivered=True, dry_run=False)
    result["audit_seq"] = _audit(
        repo,
        _AUDIT_EVENTS[result["status"]],
        {
            "fingerprint": alert.fingerprint,
            "kind": alert.kind,
            "severity": alert.severity,
            "issue": result["issue"],
            "url": result["url"],
            "title": alert.clean_title(),
            "facts": alert.facts,
        },
    )
    # Only once the delivery is recorded: if recording fails, the queued entry stays for the next flush.
    result["superseded"] = _drop_queued(repo, alert.fingerprint, queued_ns if queued_ns is not None else started_ns)
    gha.info(f"alert {alert.fingerprint}: {result['status']} issue #{result['issue']} {result['url']}")
    gha.add_summary(
        f"### Alert {result['status']}: [{_safe_text(alert.clean_title())} #{result['issue']}]({result['url']})"
    )
    return result


def _raise_entry(alert: Alert, body: str, why: str) -> dict[str, Any]:
    return {
        "action": "raise",
        "fingerprint": alert.fingerprint,
        "alert": alert.to_dict(),
        "title": alert.clean_title(),
        "labels": alert.labels(),
        "markdown": body,
        "error": why,
    }


def resolve(cfg: Any, fingerprint: str, reason: str) -> dict:
    """Close the open issue(s) for a fingerprint with a comment giving the reason; queue it when GitHub fails."""
    if not isinstance(fingerprint, str) or not FINGERPRINT_RE.match(fingerprint):
        raise BadInput("fingerprint", f"{fingerprint!r} is not a fingerprint", "pass the fingerprint of the alert")
    if not isinstance(reason, str) or not reason.strip():
        raise BadInput("reason", "empty", "say why the problem is gone, e.g. '3 clean monitoring runs'")
    target = target_from_env()
    if target.token:
        _audit_preflight(cfg.repo)
    return _resolve_with(cfg, Settings.from_config(cfg), target, fingerprint, reason, queued_ns=None)


def _resolve_with(
    cfg: Any,
    settings: Settings,
    target: Target,
    fingerprint: str,
    reason: str,
    *,
    queued_ns: int | None,
    channel: _Channel | None = None,
) -> dict[str, Any]:
    repo = cfg.repo
    started_ns = time.time_ns()
    entry = {"action": "resolve", "fingerprint": fingerprint, "reason": reason}
    if not target.token:
        path = None
        if queued_ns is None:
            path = _queue(repo, {**entry, "error": "no GITHUB_TOKEN: dry run"}, target)
            gha.add_summary(f"### Alert resolve queued (dry run): `{fingerprint}`\n\n{_safe_text(reason)}")
            gha.info(f"resolve {fingerprint}: dry run (no GITHUB_TOKEN); queued in {repo.rel(path)}")
        return {
            "status": "outbox",
            "dry_run": True,
            "delivered": False,
            "fingerprint": fingerprint,
            "outbox": repo.rel(path) if path else None,
        }
    own = channel is None
    ch = channel or _Channel(settings, target)
    try:
        result = _deliver_resolve(ch, fingerprint, reason)
    except Undeliverable as exc:
        why = scrub(str(exc), target.token)
        if queued_ns is not None:
            return {"status": "outbox", "dry_run": False, "delivered": False, "fingerprint": fingerprint, "error": why}
        path = _queue(repo, {**entry, "error": why}, target)
        gha.warn(f"resolve {fingerprint} NOT delivered ({why}); queued in {repo.rel(path)}")
        gha.add_summary(f"### Alert resolve queued, not sent: `{fingerprint}`\n\n{_safe_text(why)}")
        return {
            "status": "outbox",
            "dry_run": False,
            "delivered": False,
            "fingerprint": fingerprint,
            "outbox": repo.rel(path),
            "error": why,
        }
    finally:
        if own:
            ch.close()
    result.update(delivered=True, dry_run=False)
    if result["status"] == "closed":
        for number in result["issues"]:
            result["audit_seq"] = _audit(
                repo, "alert_closed", {"fingerprint": fingerprint, "issue": number, "reason": reason}
            )
        gha.info(f"resolve {fingerprint}: closed #{', #'.join(str(n) for n in result['issues'])}")
        gha.add_summary(f"### Alert closed: [#{result['issue']}]({result['url']})\n\n{_safe_text(reason)}")
    else:
        gha.info(f"resolve {fingerprint}: no open issue")
    # Only once the delivery is recorded: if recording fails, the queued entry stays for the next flush.
    result["superseded"] = _drop_queued(repo, fingerprint, queued_ns if queued_ns is not None else started_ns)
    return result


def flush(cfg: Any) -> dict[str, Any]:
    """Send the outbox: per fingerprint, the newest queued action wins and supersedes the older ones."""
    repo = cfg.repo
    entries = read_outbox(repo)
    target = target_from_env()
    settings = Settings.from_config(cfg)
    latest: dict[str, tuple[Path, dict[str, Any], int]] = {}
    for path, data in entries:
        fp = data["fingerprint"]
        count = latest[fp][2] + 1 if fp in latest else 1
        latest[fp] = (path, data, count)
    outcome: dict[str, Any] = {"queued": len(entries), "delivered": [], "failed": [], "dry_run": not target.token}
    if not entries:
        gha.info("alerts outbox: empty")
        return outcome
    if not target.token:
        gha.info(f"alerts outbox: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} kept (no GITHUB_TOKEN)")
        rows = [(d["fingerprint"], d["action"], d.get("queued_at", "")) for _, d in entries]
        gha.add_summary(
            "### Alerts outbox (dry run, not sent)\n\n" + gha.md_table(["fingerprint", "action", "queued"], rows)
        )
        return outcome
    _audit_preflight(repo)
    ch = _Channel(settings, target)
    try:
        for fp, (path, data, count) in latest.items():
            queued_ns = int(data.get("queued_ns", 0))
            if data["action"] == "raise":
                alert = Alert.from_dict(data["alert"], f"{repo.rel(path)}: /alert")
                note = f"queued at {data.get('queued_at')}"
                if count > 1:
                    note += f"; {count - 1} earlier occurrence(s) were queued and are summarised by this one"
                result = _raise_with(cfg, settings, target, alert, queued_ns=queued_ns, note=note, channel=ch)
            else:
                result = _resolve_with(cfg, settings, target, fp, data["reason"], queued_ns=queued_ns, channel=ch)
            if result.get("delivered"):
                outcome["delivered"].append(
                    {"fingerprint": fp, "status": result["status"], "issue": result.get("issue")}
                )
            else:
                outcome["failed"].append({"fingerprint": fp, "error": result.get("error", "")})
                gha.warn(f"outbox {fp}: still not delivered ({result.get('error', '')}); kept in {repo.rel(path)}")
    finally:
        ch.close()
    return outcome


# ---- retraining -----------------------------------------------------------------------------------------


def retrain_state_path(repo: Any) -> Path:
    return repo.alerts_dir / "retrain.json"


def dispatch_retrain(cfg: Any, reason: str, *, force: bool = False) -> dict[str, Any]:
    """Dispatch the training workflow with the reason as input, unless the cool-down since the last one is running."""
    import datetime as dt

    if not isinstance(reason, str) or not reason.strip():
        raise BadInput("--reason", "empty", "say why retraining is needed, e.g. 'drift on 4 features'")
    reason = " ".join(reason.split())[:500]
    repo = cfg.repo
    settings = Settings.from_config(cfg)
    target = target_from_env()
    state_path = retrain_state_path(repo)
    last = jsonio.read_json(state_path, "retrain state") if state_path.exists() else None
    now = jsonio.utc_now()
    if last is not None:
        if not isinstance(last, dict) or not isinstance(last.get("dispatched_at"), str):
            raise BadInput(repo.rel(state_path), "no dispatched_at time", "fix or delete the file")
        since = jsonio.parse_utc(last["dispatched_at"], f"{repo.rel(state_path)}: /dispatched_at")
        until = since + dt.timedelta(hours=settings.cooldown_hours)
        if not force and now < until:
            gha.info(f"retrain not dispatched: cool-down until {jsonio.format_utc(until)} (last: {last.get('reason')})")
            return {"status": "cooldown", "dispatched": False, "next_allowed": jsonio.format_utc(until)}
    inputs = {"reason": reason}
    base = {"workflow": settings.workflow, "ref": settings.ref, "inputs": inputs}
    if not target.token:
        gha.info(f"retrain dry run (no GITHUB_TOKEN): would dispatch {settings.workflow} on {settings.ref}")
        gha.add_summary(
            f"### Retrain (dry run)\n\nWould dispatch `{settings.workflow}` on `{settings.ref}`: {_safe_text(reason)}"
        )
        return {"status": "dry-run", "dispatched": False, **base}

    def missing() -> BaseException:
        return BadInput(
            "config/alerts.json: /retrain/workflow",
            f"workflow {settings.workflow} not found in {target.repository} (404)",
            f"commit .github/workflows/{settings.workflow} or fix retrain.workflow; the token needs actions: write",
        )

    _audit_preflight(repo)
    ch = _Channel(settings, target)
    try:
        workflow = ch.repo.get_workflow(settings.workflow)
        ch.call(
            f"dispatch {settings.workflow}",
            lambda: workflow.create_dispatch(settings.ref, inputs, throw=True),
            post=True,
            not_found=missing,
        )
    except Undeliverable as exc:
        why = scrub(str(exc), target.token)
        gha.warn(f"retrain NOT dispatched: {why}")
        return {"status": "failed", "dispatched": False, "error": why, **base}
    finally:
        ch.close()
    record = {"dispatched_at": jsonio.format_utc(now), "reason": reason, **base}
    jsonio.write_json(state_path, record)
    seq = _audit(repo, "retrain_dispatched", {**base, "reason": reason})
    gha.info(f"retrain dispatched: {settings.workflow} on {settings.ref} ({reason})")
    gha.add_summary(f"### Retrain dispatched\n\n`{settings.workflow}` on `{settings.ref}`: {_safe_text(reason)}")
    return {"status": "dispatched", "dispatched": True, "audit_seq": seq, **base}


# ---- gate records (training) ----------------------------------------------------------------------------


def _metric_map(value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and isinstance(value.get("metrics"), dict):
        return value["metrics"]
    return value if isinstance(value, dict) else {}


def alert_from_gate(cfg: Any, path: Path) -> Alert | None:
    """The regression alert for a gate record with regression=true (None when the gate saw no regression)."""
    repo = cfg.repo
    where = repo.rel(path)
    gate = jsonio.read_json(path, "gate record")
    if not isinstance(gate, dict):
        raise BadInput(where, "a gate record must be a JSON object", "pass metadata/gates/<version>.json")
    if not isinstance(gate.get("regression"), bool):
        raise BadInput(
            f"{where}: /regression",
            f"expected true or false, found {gate.get('regression')!r}",
            "pass a gate record written by `mlops train`",
        )
    if not gate["regression"]:
        return None
    version = gate.get("version")
    if not isinstance(version, str) or not version:
        raise BadInput(f"{where}: /version", "missing", "pass a gate record written by `mlops train`")
    metric = gate.get("primary_metric") or cfg.training.primary_metric
    if not isinstance(metric, str):
        raise BadInput(f"{where}: /primary_metric", "expected a metric name", "fix the gate record")
    candidate = _metric_map(gate.get("candidate"))
    champion_block = gate.get("champion") if isinstance(gate.get("champion"), dict) else {}
    champion = _metric_map(champion_block)
    cand_value, champ_value = candidate.get(metric), champion.get(metric)
    tolerance = gate.get("tolerance", cfg.training.promotion.primary_metric_tolerance)
    facts: dict[str, object] = {
        "candidate version": version,
        "model type": gate.get("model_type", "unknown"),
        "champion version": champion_block.get("version", "none"),
        f"candidate {metric}": cand_value,
        f"champion {metric}": champ_value,
    }
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (cand_value, champ_value))
    if numeric:
        facts[f"difference ({metric})"] = round(float(cand_value) - float(champ_value), 6)
    facts["tolerance"] = tolerance
    for name, value in sorted(candidate.items()):
        if name != metric and isinstance(value, (int, float)) and not isinstance(value, bool):
            facts[f"candidate {name}"] = value
    links = {"gate record": where}
    card = repo.cards / f"{version}.md"
    if card.exists():
        links["model card"] = repo.rel(card)
    drop = f" (a drop of {float(champ_value) - float(cand_value):.4f})" if numeric else ""
    summary = (
        f"Training produced candidate `{version}` ({gate.get('model_type', 'unknown')}) whose {metric} is "
        f"{cand_value if cand_value is not None else 'unknown'} against the champion's "
        f"{champ_value if champ_value is not None else 'unknown'}{drop}, beyond the tolerance of {tolerance}. "
        "The candidate was not promoted; the champion keeps serving. Check the data and features of this run."
    )
    alert = Alert(
        kind="regression",
        title=f"Model regression: training candidates fall below the champion on {metric}",
        summary=summary,
        facts=facts,
        evidence=gate,
        fingerprint=make_fingerprint("regression", cfg.dataset.name, metric),
        severity="warning",
        links=links,
    )
    alert.validate(where)
    return alert
