"""The GitHub client of the alert channel: where alerts go (GITHUB_* variables) and one PyGithub
client with the retry policy and waiting budget of one command (docs/alerts.md, "Retry policy").

PyGithub is imported inside `Channel`, so importing this module stays cheap.
"""

from __future__ import annotations

import os
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from mlops.errors import BadInput

if TYPE_CHECKING:
    from mlops.config import AlertsDelivery

T = TypeVar("T")

REPOSITORY_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_PROCESS_RUN = f"local-{uuid.uuid4().hex[:12]}"  # the run key outside Actions: one per process


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


class Undeliverable(Exception):
    """Delivery gave up; the message (already scrubbed) says why.

    `refusal` is 410 (Issues disabled) or 403 (the token may not write) when GitHub refused for a reason
    that retrying cannot fix and a person must change a setting; None otherwise.
    """

    def __init__(self, message: str, *, refusal: int | None = None):
        super().__init__(message)
        self.refusal = refusal


class Channel:
    """One PyGithub client plus the retry policy and the waiting budget of one command."""

    def __init__(self, delivery: AlertsDelivery, target: Target):
        import github
        from github import Auth
        from urllib3.util.retry import Retry

        self.delivery = delivery
        self.target = target
        self.waited = 0.0
        self.answered = 0  # successful calls so far: a 401 before any is a bad token, after one a lost token
        # Set when retrying in this command is pointless (wait cap passed, or a 410/403 refusal):
        # every later call fails at once with the same reason, without a request.
        self.blocked: Undeliverable | None = None
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
            timeout=delivery.timeout_seconds,
            retry=retry,
            per_page=delivery.per_page,
            lazy=True,
            seconds_between_requests=0,
            seconds_between_writes=delivery.seconds_between_writes,
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
            if self.blocked is not None:
                raise Undeliverable(str(self.blocked), refusal=self.blocked.refusal)
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
            if attempt >= self.delivery.max_attempts:
                raise Undeliverable(f"{reason}; gave up after {attempt} attempts")
            if wait is None:
                step = self.delivery.backoff_base_seconds * (2 ** (attempt - 1))
                wait = min(self.delivery.backoff_max_seconds, step) * (0.5 + random.random() / 2)
            left = self.delivery.max_wait_seconds - self.waited
            if wait > left:
                self.blocked = Undeliverable(
                    f"{reason}; waiting {wait:.0f}s would pass the {self.delivery.max_wait_seconds:g}s cap "
                    "(config/alerts.json delivery.max_wait_seconds)"
                )
                raise Undeliverable(str(self.blocked))
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
        if status == 410 or (status == 403 and "locked" not in lowered):
            # 410: Issues are disabled on the repository (forks start so); 403 without a rate limit: the
            # token lacks the permission ("Resource not accessible by integration"), unless it is one
            # locked issue refusing comments. Not transient: no retry, nor any other call in this command.
            self.blocked = Undeliverable(reason, refusal=status)
            raise Undeliverable(reason, refusal=status)
        # 422 and the rest: retrying cannot help.
        raise Undeliverable(reason)


def raw_json(obj: Any) -> dict[str, Any]:
    # The JSON GitHub sent. PyGithub's raw_data (and any attribute the listing lacked, such as
    # pull_request) would re-fetch a lazily listed object: one extra GET per issue or comment.
    return obj._rawData
