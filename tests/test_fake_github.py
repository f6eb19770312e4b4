"""The fake GitHub itself: what the alert tests rely on must behave like GitHub, checked with real PyGithub."""

from __future__ import annotations

import time

import github
import pytest
import requests
from github import Auth

from tests.support.fake_github import DEFAULT_TOKEN, Fault
from tests.support.fake_github import fake_github as fake_github_fixture  # noqa: F401 - the fixture


def _client(fake, token=DEFAULT_TOKEN, per_page=3):
    return github.Github(
        auth=Auth.Token(token),
        base_url=fake.url,
        timeout=1,
        retry=None,
        per_page=per_page,
        lazy=True,
        seconds_between_requests=0,
        seconds_between_writes=0,
    )


def test_pagination_follows_link_headers_and_urls_are_absolute(fake_github):
    repo = _client(fake_github).get_repo("acme/model")
    for i in range(7):
        repo.create_issue(title=f"issue {i}", body="b", labels=["ml-ops"] if i % 2 == 0 else [])
    repo.create_issue(title="closed one", body="b", labels=["ml-ops"]).edit(state="closed")
    numbers = [i.number for i in repo.get_issues(state="open", labels=["ml-ops"], direction="asc")]
    assert numbers == [1, 3, 5, 7]
    pages = [
        r.query.get("page", ["1"])[0] for r in fake_github.requests if r.path.endswith("/issues") and r.method == "GET"
    ]
    assert pages == ["1", "2"]  # 4 matches at 3 per page
    first = fake_github.issues()[0]
    assert first["url"].startswith(fake_github.url + "/repos/acme/model/issues/")
    assert first["html_url"].startswith(fake_github.url + "/acme/model/issues/")
    assert [i.number for i in repo.get_issues(state="closed")] == [8]


def test_comments_labels_and_pull_requests(fake_github):
    repo = _client(fake_github).get_repo("acme/model")
    pr = fake_github.add_pull("a pull request")
    issue = repo.get_issue(pr)
    comment = issue.create_comment("first")
    comment.edit("edited")
    assert [c.body for c in issue.get_comments()] == ["edited"]
    repo.create_label("ml-ops", "5319e7", "ours")
    with pytest.raises(github.GithubException) as info:
        repo.create_label("ML-OPS", "000000", "again")
    assert info.value.status == 422
    assert {(label.name, label.color) for label in repo.get_labels()} == {("ml-ops", "5319e7")}
    issue.add_to_labels("brand-new")  # GitHub creates unknown labels, grey
    assert fake_github.repo().labels["brand-new"]["color"] == "ededed"


def test_dispatch_records_inputs_and_refuses_unknown_workflow(fake_github):
    repo = _client(fake_github).get_repo("acme/model")
    assert repo.get_workflow("ml-training.yml").create_dispatch("main", {"reason": "drift"}, throw=True)
    assert fake_github.repo().dispatches == [
        {"workflow": "ml-training.yml", "ref": "main", "inputs": {"reason": "drift"}}
    ]
    with pytest.raises(github.UnknownObjectException):
        repo.get_workflow("missing.yml").create_dispatch("main", throw=True)


def test_faults_by_position_and_route_and_bad_token(fake_github):
    repo = _client(fake_github).get_repo("acme/model")
    fake_github.inject(Fault.server_error(503), at=1)
    list(repo.get_labels())  # position 0: fine
    with pytest.raises(github.GithubException) as info:
        list(repo.get_labels())
    assert info.value.status == 503
    fake_github.inject(Fault.primary_rate_limit(reset_in=3600), route=r"/labels$", method="POST")
    with pytest.raises(github.RateLimitExceededException) as info:
        repo.create_label("x", "ffffff", "d")
    assert info.value.headers["x-ratelimit-remaining"] == "0"
    assert int(info.value.headers["x-ratelimit-reset"]) > time.time() + 3000
    fake_github.inject(Fault.secondary_rate_limit(retry_after=7), at=0)
    with pytest.raises(github.GithubException) as info:
        list(repo.get_labels())
    assert info.value.status == 403 and info.value.headers["retry-after"] == "7"
    with pytest.raises(github.BadCredentialsException):
        list(_client(fake_github, token="wrong-token").get_repo("acme/model").get_labels())
    assert [r.status for r in fake_github.requests] == [200, 503, 403, 403, 401]


def test_timeout_fault_applies_the_request_but_loses_the_answer(fake_github):
    repo = _client(fake_github).get_repo("acme/model")
    fake_github.inject(Fault.timeout(1.3), at=0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        repo.create_issue(title="slow", body="b")
    assert [i["title"] for i in fake_github.issues()] == ["slow"]
