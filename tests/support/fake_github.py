"""A stateful fake of the GitHub REST API on 127.0.0.1, for tests that drive the real PyGithub over HTTP.

It keeps issues (and pull requests, which GitHub also serves as issues), comments, labels and
workflow dispatches per repository, paginates with ``Link`` headers, returns absolute ``url`` /
``html_url`` fields on its own host, records every request, and injects faults per request
(by position or by route): an error status with optional ``Retry-After`` / rate-limit headers,
or a delay longer than the client's time-out.

Use the ``fake_github`` fixture (import it into a test module) or ``FakeGitHub`` directly.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

DEFAULT_TOKEN = "ghs_fakeTOKEN0123456789abcdefSECRET"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Fault:
    """What to do instead of (or after) serving one request."""

    status: int | None = None  # None: serve normally (use with delay)
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to sleep before answering
    apply: bool = False  # perform the request's effect before failing (it "reached GitHub")
    echo_auth: bool = False  # put the caller's Authorization header into the error body (leak test)
    name: str = ""

    @classmethod
    def server_error(cls, status: int = 502, *, apply: bool = False) -> Fault:
        return cls(status=status, message="Server Error", apply=apply, name=f"{status}{'-applied' if apply else ''}")

    @classmethod
    def secondary_rate_limit(cls, retry_after: int = 0) -> Fault:
        return cls(
            status=403,
            message="You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            headers={"Retry-After": str(retry_after)},
            name=f"403-secondary-retry-after-{retry_after}",
        )

    @classmethod
    def too_many_requests(cls, retry_after: int | None = 0) -> Fault:
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return cls(status=429, message="Too Many Requests", headers=headers, name="429")

    @classmethod
    def primary_rate_limit(cls, reset_in: int = 3600) -> Fault:
        return cls(
            status=403,
            message="API rate limit exceeded for installation ID 1.",
            headers={
                "X-RateLimit-Limit": "5000",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Used": "5000",
                "X-RateLimit-Reset": str(int(time.time()) + reset_in),
            },
            name=f"403-primary-reset-in-{reset_in}",
        )

    @classmethod
    def bad_credentials(cls) -> Fault:
        return cls(status=401, message="Bad credentials", name="401")

    @classmethod
    def timeout(cls, delay: float = 1.6, *, apply: bool = True) -> Fault:
        # apply=True is the nasty case: GitHub did the work, the answer never arrived in time.
        return cls(status=None, delay=delay, apply=apply, name=f"timeout-{delay}s")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]
    status: int = 0
    fault: str = ""


@dataclass
class _Armed:
    fault: Fault
    at: int | None  # absolute request index
    method: str | None
    route: re.Pattern[str] | None
    times: int


@dataclass
class RepoState:
    owner: str
    name: str
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> comment (with "_issue")
    review_comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower-case name -> label
    workflows: dict[str, dict[str, Any]] = field(default_factory=dict)  # file name -> workflow
    dispatches: list[dict[str, Any]] = field(default_factory=list)
    next_number: int = 1
    allow_auto_merge: bool = False  # the repository setting "Allow auto-merge" (GitHub's default: off)
    # Settings `mlops doctor` reads (defaults: a repository GitHub just created; see fresh_fork/ready_repository).
    has_issues: bool = True
    actions_enabled: bool = True
    allowed_actions: str = "all"
    default_workflow_permissions: str = "read"
    can_approve_pull_request_reviews: bool = False
    protection: dict[str, dict[str, Any]] = field(default_factory=dict)  # branch -> GET .../protection answer
    rules: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # branch -> GET /rules/branches/{b}
    secrets: dict[str, str] = field(default_factory=dict)  # repository secret name -> updated_at

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, extra: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra or {}


class FakeGitHub:
    """The fake server: start(), then point PyGithub's base_url at .url."""

    def __init__(
        self,
        repos: tuple[str, ...] = ("acme/model",),
        token: str | None = DEFAULT_TOKEN,
        workflows: tuple[str, ...] = ("ml-training.yml",),
    ):
        self.token = token  # None accepts any token
        self.lock = threading.RLock()
        self.repos: dict[str, RepoState] = {}
        self.requests: list[Recorded] = []
        self._faults: list[_Armed] = []
        self._ids = itertools.count(1000)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for full in repos:
            owner, name = full.split("/")
            state = RepoState(owner, name)
            for wf in workflows:
                state.workflows[wf] = {"id": next(self._ids), "name": wf.rsplit(".", 1)[0], "path": wf}
            self.repos[full.lower()] = state

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeGitHub:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        # A short poll interval keeps stop() (shutdown waits for one poll) from costing half a second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True, name="fake-github"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ---- test-side helpers -----------------------------------------------------------------
    def env(self, repository: str = "acme/model") -> dict[str, str]:
        """The GITHUB_* variables that point mlops at this fake (use with monkeypatch.setenv)."""
        return {"GITHUB_TOKEN": self.token or "any-token", "GITHUB_REPOSITORY": repository, "GITHUB_API_URL": self.url}

    def repo(self, full: str = "acme/model") -> RepoState:
        return self.repos[full.lower()]

    def inject(
        self,
        fault: Fault,
        *,
        at: int | None = None,
        route: str | None = None,
        method: str | None = None,
        times: int = 1,
    ) -> None:
        """Arm a fault for the request `at` positions from now (0 = the next one), or for a route regex."""
        with self.lock:
            absolute = None if at is None else len(self.requests) + at
            pattern = re.compile(route) if route else None
            self._faults.append(_Armed(fault, absolute, method.upper() if method else None, pattern, times))

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    def issues(self, full: str = "acme/model", *, state: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            out = [i for i in self.repo(full).issues.values() if "pull_request" not in i]
            return [dict(i) for i in out if state is None or i["state"] == state]

    def comments_on(self, number: int, full: str = "acme/model") -> list[dict[str, Any]]:
        with self.lock:
            return [dict(c) for c in self.repo(full).comments.values() if c["_issue"] == number]

    def add_pull(self, title: str, full: str = "acme/model") -> int:
        """Create a pull request record (served as an issue too, as GitHub does)."""
        with self.lock:
            state = self.repo(full)
            issue = self._new_issue(state, {"title": title, "body": ""})
            base = f"{self.url}/repos/{state.full_name}"
            issue["pull_request"] = {"url": f"{base}/pulls/{issue['number']}"}
            return issue["number"]

    def count(self, method: str, pattern: str) -> int:
        rx = re.compile(pattern)
        with self.lock:
            return sum(1 for r in self.requests if r.method == method and rx.search(r.path))

    # ---- repository settings (what `mlops doctor` reads) -------------------------------------
    def fresh_fork(self, full: str = "acme/model", *, workflows: tuple[str, ...] | list[str] = ()) -> RepoState:
        """The repository as a fork starts: Actions off, workflows disabled (GitHub's ``disabled_fork``),
        Issues off, no labels, no secrets, read-only workflow token that may not open pull requests, and
        ``main`` protected by a rule that requires pull requests (the upstream's protection does not carry
        over to a fork, but a fork owner adding it is the case to catch). `workflows`: file names to serve
        instead of the constructor's."""
        with self.lock:
            state = self.repo(full)
            if workflows:
                self._set_workflows(state, workflows)
            for wf in state.workflows.values():
                wf["state"] = "disabled_fork"
            state.actions_enabled, state.allowed_actions = False, "all"
            state.has_issues = False
            state.labels.clear()
            state.secrets.clear()
            state.default_workflow_permissions, state.can_approve_pull_request_reviews = "read", False
            state.protection = {"main": self.protection_requiring_reviews()}
            state.rules.clear()
            return state

    def ready_repository(
        self,
        full: str = "acme/model",
        *,
        workflows: tuple[str, ...] | list[str] = (),
        labels: tuple[str, ...] | list[str] = (),
        secrets: tuple[str, ...] | list[str] = (),
    ) -> RepoState:
        """The repository once every onboarding step is done: Actions on, workflows active, Issues on,
        `labels` and `secrets` present, write token allowed to open pull requests, ``main`` unprotected."""
        with self.lock:
            state = self.repo(full)
            if workflows:
                self._set_workflows(state, workflows)
            for wf in state.workflows.values():
                wf["state"] = "active"
            state.actions_enabled, state.allowed_actions = True, "all"
            state.has_issues = True
            for name in labels:
                self._ensure_label(state, name)
            state.secrets = {name: _now() for name in secrets}
            state.default_workflow_permissions, state.can_approve_pull_request_reviews = "write", True
            state.protection.clear()
            state.rules.clear()
            return state

    @staticmethod
    def protection_requiring_reviews() -> dict[str, Any]:
        """A GET .../branches/{b}/protection answer for "Require a pull request before merging"."""
        return {
            "required_pull_request_reviews": {"required_approving_review_count": 1, "dismiss_stale_reviews": False},
            "enforce_admins": {"enabled": False},
            "allow_force_pushes": {"enabled": False},
            "allow_deletions": {"enabled": False},
        }

    def _set_workflows(self, state: RepoState, workflows: tuple[str, ...] | list[str]) -> None:
        state.workflows = {
            name: {"id": next(self._ids), "name": name.rsplit(".", 1)[0], "path": name} for name in workflows
        }

    # ---- request handling (server threads) ---------------------------------------------------
    def _take_fault(self, index: int, method: str, path: str) -> Fault | None:
        with self.lock:
            for armed in self._faults:
                hit = armed.at == index if armed.at is not None else True
                if armed.method and armed.method != method:
                    hit = False
                if armed.route and not armed.route.search(path):
                    hit = False
                if hit and armed.times > 0:
                    armed.times -= 1
                    if armed.times == 0:
                        self._faults.remove(armed)
                    return armed.fault
            # Position faults that can never fire again are dropped.
            self._faults = [a for a in self._faults if a.at is None or a.at > index]
        return None

    def _authorized(self, headers: dict[str, str]) -> bool:
        if self.token is None:
            return True
        auth = headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        return scheme.lower() in {"token", "bearer"} and value == self.token

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: Any) -> tuple[int, dict, Any, float]:
        """Serve one request: (status, headers, json body, delay before answering)."""
        parsed = urllib.parse.urlsplit(raw_path)
        path, query = parsed.path.rstrip("/") or "/", urllib.parse.parse_qs(parsed.query)
        with self.lock:
            rec = Recorded(method, path, query, body, headers)
            index = len(self.requests)
            self.requests.append(rec)
        fault = self._take_fault(index, method, path)
        rec.fault = fault.name if fault else ""
        if fault is not None and fault.status is not None and not fault.apply:
            return self._fault_response(rec, fault, headers)
        if not self._authorized(headers):
            rec.status = 401
            return 401, {}, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}, 0.0
        try:
            with self.lock:
                status, extra_headers, payload = self._route(method, path, query, body)
        except _HTTPError as exc:
            status, extra_headers, payload = exc.status, {}, {"message": exc.message, **exc.extra}
        if fault is not None and fault.status is not None:
            return self._fault_response(rec, fault, headers)
        rec.status = status
        return status, extra_headers, payload, fault.delay if fault else 0.0

    def _fault_response(self, rec: Recorded, fault: Fault, headers: dict[str, str]) -> tuple[int, dict, Any, float]:
        rec.status = fault.status or 0
        message = fault.message
        if fault.echo_auth:
            message += f" (request had Authorization: {headers.get('authorization', '')})"
        payload = {"message": message, "documentation_url": "https://docs.github.com/rest"}
        return fault.status or 500, dict(fault.headers), payload, fault.delay

    # ---- the REST surface --------------------------------------------------------------------
    def _route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, dict, Any]:
        if path == "/graphql" and method == "POST":
            return self._graphql(body if isinstance(body, dict) else {})
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)?", path)
        if not m:
            raise _HTTPError(404, "Not Found")
        state = self.repos.get(f"{m.group(1)}/{m.group(2)}".lower())
        if state is None:
            raise _HTTPError(404, "Not Found")
        rest = m.group(3) or ""
        if isinstance(body, list):  # POST .../labels also takes a bare list of names
            body = {"labels": body}
        body = body if isinstance(body, dict) else {}
        routes: list[tuple[str, str, Any]] = [
            ("GET", r"", self._get_repo),
            ("GET", r"/issues", self._list_issues),
            ("POST", r"/issues", self._create_issue),
            ("GET", r"/issues/comments/(\d+)", self._get_comment),
            ("PATCH", r"/issues/comments/(\d+)", self._edit_comment),
            ("GET", r"/issues/(\d+)", self._get_issue),
            ("PATCH", r"/issues/(\d+)", self._edit_issue),
            ("GET", r"/issues/(\d+)/comments", self._list_comments),
            ("POST", r"/issues/(\d+)/comments", self._create_comment),
            ("POST", r"/issues/(\d+)/labels", self._add_issue_labels),
            ("GET", r"/labels", self._list_labels),
            ("POST", r"/labels", self._create_label),
            ("GET", r"/labels/([^/]+)", self._get_label),
            ("GET", r"/pulls", self._list_pulls),
            ("POST", r"/pulls", self._create_pull),
            ("GET", r"/pulls/(\d+)", self._get_pull),
            ("PATCH", r"/pulls/(\d+)", self._edit_pull),
            ("GET", r"/pulls/(\d+)/comments", self._list_review_comments),
            ("POST", r"/pulls/(\d+)/comments", self._create_review_comment),
            ("GET", r"/actions/workflows", self._list_workflows),
            ("GET", r"/actions/workflows/([^/]+)", self._get_workflow),
            ("GET", r"/actions/permissions", self._actions_permissions),
            ("GET", r"/actions/permissions/workflow", self._workflow_permissions),
            ("GET", r"/actions/secrets", self._list_secrets),
            ("GET", r"/actions/organization-secrets", self._list_org_secrets),
            ("GET", r"/branches/([^/]+)", self._get_branch),
            ("GET", r"/branches/([^/]+)/protection", self._get_protection),
            ("GET", r"/rules/branches/([^/]+)", self._branch_rules),
            ("POST", r"/actions/workflows/([^/]+)/dispatches", self._dispatch),
        ]
        if not state.has_issues and re.fullmatch(r"/issues", rest):
            raise _HTTPError(410, "Issues are disabled for this repo")
        for verb, pattern, func in routes:
            hit = re.fullmatch(pattern, rest)
            if hit and verb == method:
                return func(state, *hit.groups(), query=query, body=body)
        raise _HTTPError(404, "Not Found")

    # -- helpers
    def _base(self, state: RepoState) -> str:
        return f"{self.url}/repos/{state.full_name}"

    def _page(self, items: list[Any], query: dict, path: str) -> tuple[int, dict, Any]:
        per_page = min(int(query.get("per_page", ["30"])[0]), 100)
        page = max(int(query.get("page", ["1"])[0]), 1)
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []

        def link(p: int, rel: str) -> str:
            q = {k: v[0] for k, v in query.items()}
            q.update(per_page=str(per_page), page=str(p))
            return f'<{self.url}{path}?{urllib.parse.urlencode(q)}>; rel="{rel}"'

        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(page - 1, "prev")]
        return 200, ({"Link": ", ".join(links)} if links else {}), chunk

    def _label_json(self, state: RepoState, label: dict[str, Any]) -> dict[str, Any]:
        quoted = urllib.parse.quote(label["name"])
        return {**label, "url": f"{self._base(state)}/labels/{quoted}", "default": False}

    def _issue_json(self, state: RepoState, issue: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in issue.items() if not k.startswith("_")}
        out["labels"] = [self._label_json(state, state.labels[n.lower()]) for n in issue["_labels"]]
        out["comments"] = sum(1 for c in state.comments.values() if c["_issue"] == issue["number"])
        return out

    def _comment_json(self, comment: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in comment.items() if not k.startswith("_")}

    def _ensure_label(self, state: RepoState, name: str) -> str:
        # GitHub creates unknown labels on the fly (grey, no description) when an issue names them.
        key = name.lower()
        if key not in state.labels:
            state.labels[key] = {"id": next(self._ids), "name": name, "color": "ededed", "description": None}
        return state.labels[key]["name"]

    def _issue(self, state: RepoState, number: str) -> dict[str, Any]:
        issue = state.issues.get(int(number))
        if issue is None:
            raise _HTTPError(404, "Not Found")
        return issue

    def _new_issue(self, state: RepoState, body: dict[str, Any]) -> dict[str, Any]:
        number = state.next_number
        state.next_number += 1
        base = self._base(state)
        stamp = _now()
        issue = {
            "id": next(self._ids),
            "node_id": f"I_{number}",
            "number": number,
            "title": body["title"],
            "body": body.get("body") or "",
            "state": "open",
            "state_reason": None,
            "locked": False,
            "assignees": [],
            "user": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"},
            "url": f"{base}/issues/{number}",
            "html_url": f"{self.url}/{state.full_name}/issues/{number}",
            "comments_url": f"{base}/issues/{number}/comments",
            "labels_url": f"{base}/issues/{number}/labels{{/name}}",
            "repository_url": base,
            "created_at": stamp,
            "updated_at": stamp,
            "closed_at": None,
            "_labels": [self._ensure_label(state, n) for n in body.get("labels") or []],
        }
        state.issues[number] = issue
        return issue

    # -- routes
    def _get_repo(self, state: RepoState, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        return (
            200,
            {},
            {
                "id": 1,
                "name": state.name,
                "full_name": state.full_name,
                "owner": {"login": state.owner},
                "private": False,
                "default_branch": "main",
                "allow_auto_merge": state.allow_auto_merge,
                "allow_merge_commit": True,
                "allow_squash_merge": True,
                "allow_rebase_merge": True,
                "url": self._base(state),
                "html_url": f"{self.url}/{state.full_name}",
                "has_issues": state.has_issues,
            },
        )

    def _list_issues(self, state: RepoState, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        want_state = query.get("state", ["open"])[0]
        wanted = [w.strip().lower() for w in query.get("labels", [""])[0].split(",") if w.strip()]
        items = []
        for issue in state.issues.values():
            if want_state != "all" and issue["state"] != want_state:
                continue
            names = {n.lower() for n in issue["_labels"]}
            if any(w not in names for w in wanted):
                continue
            items.append(issue)
        reverse = query.get("direction", ["desc"])[0] == "desc"
        sort_key = query.get("sort", ["created"])[0]
        items.sort(key=lambda i: (i["updated_at"] if sort_key == "updated" else "", i["number"]), reverse=reverse)
        status, headers, chunk = self._page(items, query, f"/repos/{state.full_name}/issues")
        return status, headers, [self._issue_json(state, i) for i in chunk]

    def _create_issue(self, state: RepoState, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        if not isinstance(body.get("title"), str) or not body["title"].strip():
            raise _HTTPError(422, "Validation Failed", {"errors": [{"field": "title", "code": "missing_field"}]})
        issue = self._new_issue(state, body)
        return 201, {"Location": issue["url"]}, self._issue_json(state, issue)

    def _get_issue(self, state: RepoState, number: str, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        return 200, {}, self._issue_json(state, self._issue(state, number))

    def _edit_issue(self, state: RepoState, number: str, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        issue = self._issue(state, number)
        if "state" in body:
            if body["state"] not in {"open", "closed"}:
                raise _HTTPError(422, "Validation Failed", {"errors": [{"field": "state", "code": "invalid"}]})
            if body["state"] != issue["state"]:
                issue["closed_at"] = _now() if body["state"] == "closed" else None
            issue["state"] = body["state"]
            issue["state_reason"] = body.get("state_reason") or ("completed" if body["state"] == "closed" else None)
        for key in ("title", "body"):
            if key in body:
                issue[key] = body[key]
        if "labels" in body:
            issue["_labels"] = [self._ensure_label(state, n) for n in body["labels"]]
        issue["updated_at"] = _now()
        return 200, {}, self._issue_json(state, issue)

    def _add_issue_labels(self, state: RepoState, number: str, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        issue = self._issue(state, number)
        for name in body.get("labels") or []:
            name = self._ensure_label(state, name)
            if name.lower() not in {n.lower() for n in issue["_labels"]}:
                issue["_labels"].append(name)
        return 200, {}, [self._label_json(state, state.labels[n.lower()]) for n in issue["_labels"]]

    def _list_comments(self, state: RepoState, number: str, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        self._issue(state, number)
        items = sorted((c for c in state.comments.values() if c["_issue"] == int(number)), key=lambda c: c["id"])
        if "since" in query:  # only comments updated at or after this time (same ISO format: strings compare)
            items = [c for c in items if c["updated_at"] >= query["since"][0]]
        status, headers, chunk = self._page(items, query, f"/repos/{state.full_name}/issues/{number}/comments")
        return status, headers, [self._comment_json(c) for c in chunk]

    def _create_comment(self, state: RepoState, number: str, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        issue = self._issue(state, number)
        if not isinstance(body.get("body"), str) or not body["body"]:
            raise _HTTPError(422, "Validation Failed", {"errors": [{"field": "body", "code": "missing_field"}]})
        cid = next(self._ids)
        stamp = _now()
        comment = {
            "id": cid,
            "node_id": f"IC_{cid}",
            "body": body["body"],
            "user": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"},
            "url": f"{self._base(state)}/issues/comments/{cid}",
            "html_url": f"{issue['html_url']}#issuecomment-{cid}",
            "issue_url": issue["url"],
            "created_at": stamp,
            "updated_at": stamp,
            "_issue": issue["number"],
        }
        state.comments[cid] = comment
        issue["updated_at"] = stamp
        return 201, {"Location": comment["url"]}, self._comment_json(comment)

    def _comment(self, state: RepoState, cid: str) -> dict[str, Any]:
        comment = state.comments.get(int(cid))
        if comment is None:
            raise _HTTPError(404, "Not Found")
        return comment

    def _get_comment(self, state: RepoState, cid: str, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        return 200, {}, self._comment_json(self._comment(state, cid))

    def _edit_comment(self, state: RepoState, cid: str, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        comment = self._comment(state, cid)
        if not isinstance(body.get("body"), str) or not body["body"]:
            raise _HTTPError(422, "Validation Failed", {"errors": [{"field": "body", "code": "missing_field"}]})
        comment["body"] = body["body"]
        comment["updated_at"] = _now()
        return 200, {}, self._comment_json(comment)

    def _list_labels(self, state: RepoState, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        items = sorted(state.labels.values(), key=lambda label: label["id"])
        status, headers, chunk = self._page(items, query, f"/repos/{state.full_name}/labels")
        return status, headers, [self._label_json(state, label) for label in chunk]

    def _create_label(self, state: RepoState, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise _HTTPError(422, "Validation Failed", {"errors": [{"field": "name", "code": "missing_field"}]})
        if name.lower() in state.labels:
            raise _HTTPError(
                422, "Validation Failed", {"errors": [{"resource": "Label", "code": "already_exists", "field": "name"}]}
            )
        color = str(body.get("color", "ededed")).lstrip("#")
        if not re.fullmatch(r"[0-9a-fA-F]{6}", color):
            raise _HTTPError(422, "Validation Failed", {"errors": [{"field": "color", "code": "invalid"}]})
        label = {"id": next(self._ids), "name": name, "color": color, "description": body.get("description")}
        state.labels[name.lower()] = label
        return 201, {}, self._label_json(state, label)

    def _get_label(self, state: RepoState, name: str, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        label = state.labels.get(urllib.parse.unquote(name).lower())
        if label is None:
            raise _HTTPError(404, "Not Found")
        return 200, {}, self._label_json(state, label)

    def _get_pull(self, state: RepoState, number: str, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        issue = self._issue(state, number)
        if "pull_request" not in issue:
            raise _HTTPError(404, "Not Found")
        return 200, {}, self._pull_json(state, issue)

    def _pull_json(self, state: RepoState, issue: dict[str, Any]) -> dict[str, Any]:
        out = self._issue_json(state, issue)
        out["url"] = issue["pull_request"]["url"]
        out["html_url"] = f"{self.url}/{state.full_name}/pull/{issue['number']}"
        out["issue_url"] = issue["url"]
        out["node_id"] = f"PR_{state.full_name}#{issue['number']}"
        head = issue.get("_head") or "experiment"
        out["head"] = {"ref": head, "label": f"{state.owner}:{head}", "repo": {"full_name": state.full_name}}
        out["base"] = {"ref": issue.get("_base") or "main", "repo": {"full_name": state.full_name}}
        out["auto_merge"] = issue.get("_auto_merge")
        out["merged"] = False
        return out

    def pulls(self, full: str = "acme/model", *, state: str | None = None) -> list[dict[str, Any]]:
        """Pull requests as the REST API shows them (head, base, auto_merge), oldest first."""
        with self.lock:
            repo = self.repo(full)
            out = [self._pull_json(repo, i) for i in repo.issues.values() if "pull_request" in i]
            return [p for p in out if state is None or p["state"] == state]

    def _list_pulls(self, state: RepoState, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        want_state = query.get("state", ["open"])[0]
        head = query.get("head", [""])[0]
        base = query.get("base", [""])[0]
        items = []
        for issue in state.issues.values():
            if "pull_request" not in issue or (want_state != "all" and issue["state"] != want_state):
                continue
            label = f"{state.owner}:{issue.get('_head') or 'experiment'}"
            if (head and head != label) or (base and base != (issue.get("_base") or "main")):
                continue
            items.append(issue)
        status, headers, chunk = self._page(items, query, f"/repos/{state.full_name}/pulls")
        return status, headers, [self._pull_json(state, i) for i in chunk]

    def _create_pull(self, state: RepoState, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        if not all(isinstance(body.get(k), str) and body[k] for k in ("title", "head", "base")):
            raise _HTTPError(422, "Validation Failed", {"errors": [{"resource": "PullRequest", "code": "missing"}]})
        head = body["head"].split(":", 1)[-1]
        for issue in state.issues.values():
            if issue.get("_head") == head and issue["state"] == "open":
                message = f"A pull request already exists for {state.owner}:{head}."
                errors = [{"resource": "PullRequest", "code": "custom", "message": message}]
                raise _HTTPError(422, "Validation Failed", {"errors": errors})
        issue = self._new_issue(state, {"title": body["title"], "body": body.get("body") or ""})
        issue["pull_request"] = {"url": f"{self._base(state)}/pulls/{issue['number']}"}
        issue["_head"], issue["_base"], issue["_auto_merge"] = head, body["base"], None
        return 201, {}, self._pull_json(state, issue)

    def _edit_pull(self, state: RepoState, number: str, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        self._get_pull(state, number, query=query, body=body)
        self._edit_issue(state, number, query=query, body={k: body[k] for k in ("title", "body", "state") if k in body})
        return 200, {}, self._pull_json(state, self._issue(state, number))

    def _graphql(self, body: dict[str, Any]) -> tuple[int, dict, Any]:
        """Only the mutation enablePullRequestAutoMerge; GraphQL reports errors with HTTP 200."""
        query = str(body.get("query") or "")
        if "enablePullRequestAutoMerge" not in query:
            return 200, {}, {"errors": [{"message": "the fake serves only enablePullRequestAutoMerge"}]}
        given = (body.get("variables") or {}).get("input") or {}
        for state in self.repos.values():
            for issue in state.issues.values():
                if "pull_request" in issue and f"PR_{state.full_name}#{issue['number']}" == given.get("pullRequestId"):
                    if not state.allow_auto_merge:
                        message = "Pull request Auto merge is not allowed for this repository"
                        return 200, {}, {"data": {"enablePullRequestAutoMerge": None},
                                         "errors": [{"type": "UNPROCESSABLE", "message": message}]}  # fmt: skip
                    method = given.get("mergeMethod", "MERGE")
                    issue["_auto_merge"] = {
                        "merge_method": method.lower(),
                        "enabled_by": {"login": "github-actions[bot]"},
                    }
                    return 200, {}, {"data": {"enablePullRequestAutoMerge": {"clientMutationId": None,
                                     "actor": {"login": "github-actions[bot]"}}}}  # fmt: skip
        message = f"Could not resolve to a node with the global id of '{given.get('pullRequestId')}'"
        return (
            200,
            {},
            {"data": {"enablePullRequestAutoMerge": None}, "errors": [{"type": "NOT_FOUND", "message": message}]},
        )

    def _list_review_comments(self, state: RepoState, number: str, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        self._get_pull(state, number, query=query, body=body)
        items = sorted((c for c in state.review_comments.values() if c["_pull"] == int(number)), key=lambda c: c["id"])
        status, headers, chunk = self._page(items, query, f"/repos/{state.full_name}/pulls/{number}/comments")
        return status, headers, [self._comment_json(c) for c in chunk]

    def _create_review_comment(
        self, state: RepoState, number: str, *, query: dict, body: dict
    ) -> tuple[int, dict, Any]:
        self._get_pull(state, number, query=query, body=body)
        if not isinstance(body.get("body"), str) or not body["body"]:
            raise _HTTPError(422, "Validation Failed", {"errors": [{"field": "body", "code": "missing_field"}]})
        cid = next(self._ids)
        comment = {
            "id": cid,
            "body": body["body"],
            "path": body.get("path"),
            "commit_id": body.get("commit_id"),
            "line": body.get("line"),
            "url": f"{self._base(state)}/pulls/comments/{cid}",
            "html_url": f"{self.url}/{state.full_name}/pull/{number}#discussion_r{cid}",
            "created_at": _now(),
            "updated_at": _now(),
            "_pull": int(number),
        }
        state.review_comments[cid] = comment
        return 201, {}, self._comment_json(comment)

    def _workflow(self, state: RepoState, key: str) -> dict[str, Any]:
        key = urllib.parse.unquote(key)
        for file_name, wf in state.workflows.items():
            if key in (file_name, str(wf["id"])):
                return {
                    **wf,
                    "state": wf.get("state", "active"),
                    "url": f"{self._base(state)}/actions/workflows/{wf['id']}",
                    "html_url": f"{self.url}/{state.full_name}/blob/main/.github/workflows/{file_name}",
                    "path": f".github/workflows/{file_name}",
                }
        raise _HTTPError(404, "Not Found")

    def _get_workflow(self, state: RepoState, key: str, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        return 200, {}, self._workflow(state, key)

    def _dispatch(self, state: RepoState, key: str, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        wf = self._workflow(state, key)
        if not isinstance(body.get("ref"), str) or not body["ref"]:
            raise _HTTPError(422, 'Invalid request.\n\n"ref" wasn\'t supplied.')
        inputs = body.get("inputs") or {}
        if not isinstance(inputs, dict) or len(inputs) > 10:
            raise _HTTPError(422, "Invalid request.\n\nFor 'properties/inputs', expected an object of at most 10.")
        state.dispatches.append({"workflow": wf["path"].rsplit("/", 1)[-1], "ref": body["ref"], "inputs": inputs})
        return 204, {}, None

    # -- repository settings
    def _wrapped_page(self, items: list[Any], query: dict, path: str, key: str) -> tuple[int, dict, Any]:
        status, headers, chunk = self._page(items, query, path)
        return status, headers, {"total_count": len(items), key: chunk}

    def _list_workflows(self, state: RepoState, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        items = [self._workflow(state, name) for name in state.workflows]
        return self._wrapped_page(items, query, f"/repos/{state.full_name}/actions/workflows", "workflows")

    def _actions_permissions(self, state: RepoState, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        out: dict[str, Any] = {"enabled": state.actions_enabled}
        if state.actions_enabled:
            out["allowed_actions"] = state.allowed_actions
        return 200, {}, out

    def _workflow_permissions(self, state: RepoState, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        return (
            200,
            {},
            {
                "default_workflow_permissions": state.default_workflow_permissions,
                "can_approve_pull_request_reviews": state.can_approve_pull_request_reviews,
            },
        )

    def _list_secrets(self, state: RepoState, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        items = [{"name": n, "created_at": t, "updated_at": t} for n, t in sorted(state.secrets.items())]
        return self._wrapped_page(items, query, f"/repos/{state.full_name}/actions/secrets", "secrets")

    def _list_org_secrets(self, state: RepoState, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        return self._wrapped_page([], query, f"/repos/{state.full_name}/actions/organization-secrets", "secrets")

    def _get_branch(self, state: RepoState, branch: str, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        branch = urllib.parse.unquote(branch)
        if branch != "main":
            raise _HTTPError(404, "Branch not found")
        protected = branch in state.protection
        return (
            200,
            {},
            {
                "name": branch,
                "commit": {"sha": "0" * 40, "url": f"{self._base(state)}/commits/{'0' * 40}"},
                "protected": protected,
                "protection": {
                    "enabled": protected,
                    "required_status_checks": {"enforcement_level": "off", "contexts": []},
                },
                "protection_url": f"{self._base(state)}/branches/{branch}/protection",
            },
        )

    def _get_protection(self, state: RepoState, branch: str, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        protection = state.protection.get(urllib.parse.unquote(branch))
        if protection is None:
            raise _HTTPError(404, "Branch not protected")
        return 200, {}, {"url": f"{self._base(state)}/branches/{branch}/protection", **protection}

    def _branch_rules(self, state: RepoState, branch: str, *, query: dict, body: dict) -> tuple[int, dict, Any]:
        items = state.rules.get(urllib.parse.unquote(branch), [])
        return self._page(items, query, f"/repos/{state.full_name}/rules/branches/{branch}")


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGitHub
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without TCP_NODELAY each answer waits ~40 ms for an ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read fake.requests instead
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, extra, payload, delay = self.fake.handle(self.command, self.path, headers, body)
        if delay:
            time.sleep(delay)
        data = b"" if payload is None else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-RateLimit-Limit", extra.pop("X-RateLimit-Limit", "5000"))
            self.send_header("X-RateLimit-Remaining", extra.pop("X-RateLimit-Remaining", "4999"))
            self.send_header("X-RateLimit-Reset", extra.pop("X-RateLimit-Reset", str(int(time.time()) + 3600)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            if data:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (time-out fault): exactly what a lost response looks like

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve


@pytest.fixture(name="fake_github")
def fake_github_fixture():
    """A started FakeGitHub serving acme/model with workflow ml-training.yml; stopped after the test."""
    server = FakeGitHub().start()
    try:
        yield server
    finally:
        server.stop()


# Import either name into a test module; the fixture is called `fake_github` in both cases.
# (`fake_github_fixture` avoids ruff's F811 when a test parameter is named fake_github.)
fake_github = fake_github_fixture
