"""mlops.doctor against the fake GitHub (real PyGithub over HTTP): a fresh fork, a ready repository, each
check's problem and fix, unreadable settings, bad input; the local log store and MLflow checks."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from mlops import config, doctor
from mlops.alerts.model import LABELS
from mlops.errors import BadInput
from mlops.repo import Repo
from tests.support.fake_github import FakeGitHub, Fault
from tests.support.repo import ROOT, make_repo

SCHEDULED = """name: Nightly
on:
  schedule:
    - cron: "0 3 * * *"
  workflow_dispatch:
permissions: {}
jobs:
  train:
    runs-on: ubuntu-latest
    permissions:
      contents: write
    steps:
      - run: echo "${{ secrets.KAGGLE_KEY }} ${{ secrets['MLOPS_AUDIT_SIGNING_KEY'] }} ${{ secrets.GITHUB_TOKEN }}"
"""
ON_PUSH = """name: CI
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    permissions:
      contents: read
    steps:
      - run: echo "${{ secrets.KAGGLE_KEY }}"
"""
SECRETS = ("KAGGLE_KEY", "MLOPS_AUDIT_SIGNING_KEY")


@pytest.fixture
def gh(monkeypatch):
    server = FakeGitHub(workflows=("nightly.yml", "ci.yml")).start()
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    try:
        yield server
    finally:
        server.stop()


def _cfg(tmp_path: Path, **overrides: dict) -> config.Config:
    root = make_repo(tmp_path / "repo", **overrides)
    folder = root / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "nightly.yml").write_text(SCHEDULED)
    (folder / "ci.yml").write_text(ON_PUSH)
    return config.load(Repo.at(root))


def _ready(gh: FakeGitHub) -> None:
    gh.ready_repository(labels=list(LABELS), secrets=SECRETS)


def _by_check(findings: list[doctor.Finding]) -> dict[str, list[doctor.Finding]]:
    out: dict[str, list[doctor.Finding]] = {}
    for f in findings:
        out.setdefault(f.check, []).append(f)
    return out


def _problems(findings: list[doctor.Finding]) -> list[str]:
    return [f.text for f in doctor.problems(findings)]


# ---- the checkout's workflows ---------------------------------------------------------------------


def test_read_workflows_finds_schedules_secrets_and_jobs_without_permissions(tmp_path):
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "nightly.yml").write_text(SCHEDULED)
    (folder / "loose.yaml").write_text("on: [push]\njobs:\n  a: {runs-on: x}\n  b: {runs-on: x, permissions: {}}\n")
    loose, nightly = doctor.read_workflows(tmp_path)
    assert (nightly.file, nightly.title, nightly.scheduled) == ("nightly.yml", "Nightly", True)
    assert nightly.secrets == SECRETS  # dotted and indexed forms; GITHUB_TOKEN is not a secret to set
    assert nightly.undeclared_jobs == ()
    assert (loose.scheduled, loose.undeclared_jobs) == (False, ("a",))


def test_the_projects_own_workflows_declare_permissions_and_three_are_scheduled():
    found = {wf.file: wf for wf in doctor.read_workflows(ROOT)}
    assert {f for f, wf in found.items() if wf.scheduled} == {
        "dataset-validation.yml",
        "ml-training.yml",
        "model-monitoring.yml",
    }
    assert all(wf.undeclared_jobs == () for wf in found.values())
    assert "MLOPS_AUDIT_SIGNING_KEY" in found["ml-training.yml"].secrets
    assert not any("GITHUB_TOKEN" in wf.secrets for wf in found.values())


# ---- a fresh fork and a ready repository -------------------------------------------------------------


def test_a_fresh_fork_lists_each_problem_with_its_fix(gh, tmp_path):
    gh.fresh_fork()
    findings = doctor.diagnose(_cfg(tmp_path))
    checks = _by_check(findings)
    assert "I understand my workflows" in checks["Actions"][0].text
    assert [f.status for f in checks["Workflows"]] == ["problem", "problem"]
    assert "scheduled workflow nightly.yml ('Nightly')" in checks["Workflows"][1].text
    assert "(disabled_fork): Actions tab → Nightly → Enable workflow" in checks["Workflows"][1].text
    assert checks["Issues"][0].text.endswith("Settings → General → Features → Issues")
    assert "alert labels missing: ml-ops, regression" in checks["Labels"][0].text
    assert "requires a pull request" in checks["Branch protection"][0].text
    assert "set `commit.mode: pull-request` in config/gitops.json" in checks["Branch protection"][0].text
    missing = [f.text for f in checks["Secrets"]]
    assert [t.split(" ")[0] for t in missing] == list(SECRETS)
    assert "used by ci.yml, nightly.yml" in missing[0] and "`gh secret set KAGGLE_KEY`" in missing[0]
    # Every job declares its permissions, so a read-only default is fine; push mode needs no PR permission.
    assert [f.status for f in checks["Workflow token"]] == ["ok"]
    assert len(doctor.problems(findings)) == 8  # 1 + 2 workflows + 1 + 1 + 1 + 2 secrets
    assert all(f.status == "problem" for name in ("Actions", "Issues", "Labels") for f in checks[name])
    assert {r.method for r in gh.requests} == {"GET"}  # the doctor changes nothing


def test_a_ready_repository_has_no_problem(gh, tmp_path):
    _ready(gh)
    findings = doctor.diagnose(_cfg(tmp_path))
    assert _problems(findings) == []
    assert [f.check for f in findings if f.status == "ok"] == [
        "Actions",
        "Workflows",
        "Issues",
        "Labels",
        "Workflow token",
        "Branch protection",
        "Secrets",
        "Log store",
    ]
    assert findings[-1].check == "MLflow" and findings[-1].status == "note"  # MLFLOW_TRACKING_URI unset
    assert "all 2 active (1 scheduled)" in findings[1].text


def test_the_summary_is_a_markdown_checklist(gh, tmp_path):
    gh.fresh_fork()
    text = doctor.summary_markdown("acme/model", doctor.diagnose(_cfg(tmp_path)))
    assert text.startswith("### mlops doctor: acme/model\n\n- [ ] **Actions**: GitHub Actions are off")
    assert "- [x] **Log store**:" in text


# ---- one setting at a time -------------------------------------------------------------------------


def test_actions_limited_to_local_actions_is_a_problem_selected_ones_a_note(gh, tmp_path):
    _ready(gh)
    cfg = _cfg(tmp_path)
    gh.repo().allowed_actions = "local_only"
    assert "Allow all actions and reusable workflows" in _problems(doctor.diagnose(cfg))[0]
    gh.repo().allowed_actions = "selected"
    findings = doctor.diagnose(cfg)
    assert _problems(findings) == [] and _by_check(findings)["Actions"][0].status == "note"


def test_a_workflow_disabled_for_inactivity_or_missing_on_github(gh, tmp_path):
    _ready(gh)
    cfg = _cfg(tmp_path)
    gh.repo().workflows["nightly.yml"]["state"] = "disabled_inactivity"
    del gh.repo().workflows["ci.yml"]
    texts = _problems(doctor.diagnose(cfg))
    assert texts == [
        "workflow ci.yml is in .github/workflows but GitHub does not list it: push it to the default branch (main)",
        "scheduled workflow nightly.yml ('Nightly') is disabled by GitHub after 60 days without repository "
        "activity (disabled_inactivity): Actions tab → Nightly → Enable workflow (or `gh workflow enable nightly.yml`)",
    ]


def test_read_only_token_is_a_problem_only_for_a_job_without_permissions(gh, tmp_path):
    _ready(gh)
    cfg = _cfg(tmp_path)
    gh.repo().default_workflow_permissions = "read"
    assert _problems(doctor.diagnose(cfg)) == []
    (cfg.repo.root / ".github" / "workflows" / "ci.yml").write_text(ON_PUSH.replace("    permissions:\n", "    x:\n"))
    [text] = _problems(doctor.diagnose(cfg))
    assert text.startswith("default permissions are read-only and job(s) ci.yml:test declare none: Settings")
    assert "Workflow permissions → Read and write permissions" in text


def test_push_mode_on_a_branch_protected_by_a_ruleset(gh, tmp_path):
    _ready(gh)
    cfg = _cfg(tmp_path)
    gh.repo().rules["main"] = [{"type": "deletion"}, {"type": "non_fast_forward"}]
    assert _problems(doctor.diagnose(cfg)) == []  # no rule refuses a plain push
    gh.repo().rules["main"].append({"type": "required_status_checks", "parameters": {}})
    [text] = _problems(doctor.diagnose(cfg))
    assert text.startswith("main requires status checks, so the workflows cannot push their state")
    assert "`commit.mode: pull-request`" in text


def test_protection_this_token_cannot_read_is_a_problem_in_push_mode(gh, tmp_path):
    _ready(gh)
    cfg = _cfg(tmp_path)
    gh.repo().protection["main"] = gh.protection_requiring_reviews()
    gh.inject(Fault(status=403, message="Resource not accessible by integration"), route=r"/protection$", times=9)
    [text] = _problems(doctor.diagnose(cfg))
    assert text.startswith("main is protected and this token cannot read how")
    assert "`commit.mode: pull-request`" in text and "gh auth token" in text


def test_pull_request_mode_needs_actions_allowed_to_create_pull_requests(gh, tmp_path):
    _ready(gh)
    cfg = _cfg(tmp_path, gitops={"commit": {"mode": "pull-request"}})
    gh.repo().protection["main"] = gh.protection_requiring_reviews()
    gh.repo().can_approve_pull_request_reviews = False
    [text] = _problems(doctor.diagnose(cfg))
    assert "commit.mode is pull-request but GitHub Actions may not create pull requests" in text
    assert "tick 'Allow GitHub Actions to create and approve pull requests'" in text
    gh.repo().can_approve_pull_request_reviews = True
    findings = doctor.diagnose(cfg)
    assert _problems(findings) == []
    notes = [f.text for f in findings if f.status == "note" and f.check == "Branch protection"]
    assert notes and "Allow auto-merge" in notes[0]  # the fake's default: auto-merge off


def test_a_secret_left_unset_on_purpose_is_a_note(gh, tmp_path):
    _ready(gh)
    cfg = _cfg(tmp_path)
    gh.repo().secrets.pop("KAGGLE_KEY")
    [text] = _problems(doctor.diagnose(cfg))
    assert text.endswith("if its fallback in docs/workflows.md#secrets will do, pass --optional-secret KAGGLE_KEY")
    findings = doctor.diagnose(cfg, optional_secrets=["kaggle_key"])
    assert _problems(findings) == []
    secrets = _by_check(findings)["Secrets"]
    assert [f.status for f in secrets] == ["ok", "note"]
    assert secrets[0].text == "1 of the 2 secrets the workflows use are set"


# ---- answers the doctor cannot use --------------------------------------------------------------------


def test_a_setting_this_token_may_not_read_is_one_could_not_check_line(gh, tmp_path):
    _ready(gh)
    message = f"Must have admin rights (token {gh.token})"
    gh.inject(Fault(status=403, message=message), route=r"/actions/permissions$", times=9)
    findings = doctor.diagnose(_cfg(tmp_path))
    [text] = _problems(findings)
    assert text.startswith("could not check whether Actions are enabled (GitHub answered 403 Must have admin")
    assert gh.token not in text and "gh auth token" in text
    assert len(findings) == 9  # every other check still ran


def test_a_passing_server_error_is_retried(gh, tmp_path):
    _ready(gh)
    gh.inject(Fault.server_error(502), route=r"/actions/secrets$")
    assert _problems(doctor.diagnose(_cfg(tmp_path))) == []
    assert gh.count("GET", r"/actions/secrets$") == 2


def test_a_lasting_server_error_is_a_problem_not_a_crash(gh, tmp_path):
    _ready(gh)
    gh.inject(Fault.server_error(503), route=r"/labels$", times=9)
    [text] = _problems(doctor.diagnose(_cfg(tmp_path)))
    assert text == "could not check the labels (GitHub answered 503 Server Error): run `mlops doctor` again"


# ---- bad input ------------------------------------------------------------------------------------------


def test_no_token_or_a_malformed_name_is_bad_input(monkeypatch, tmp_path):
    cfg = _cfg(tmp_path)
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/model")
    with pytest.raises(BadInput, match=r"^GITHUB_TOKEN: not set; .*export GITHUB_TOKEN=\$\(gh auth token\)"):
        doctor.diagnose(cfg)
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    with pytest.raises(BadInput, match=r"^--repo: 'acme' is not owner/name; name it like acme/churn-model$"):
        doctor.diagnose(cfg, "acme")
    monkeypatch.setenv("GITHUB_REPOSITORY", "not a repo")
    with pytest.raises(BadInput, match=r"^GITHUB_REPOSITORY: 'not a repo' is not owner/name"):
        doctor.diagnose(cfg)
    monkeypatch.delenv("GITHUB_REPOSITORY")
    with pytest.raises(BadInput, match=r"^GITHUB_REPOSITORY: no repository to check; pass --repo owner/name"):
        doctor.diagnose(cfg)
    monkeypatch.setenv("GITHUB_API_URL", "ftp://x")
    with pytest.raises(BadInput, match=r"^GITHUB_API_URL: 'ftp://x' is not an http\(s\) URL"):
        doctor.diagnose(cfg, "acme/model")


def test_a_refused_token_or_an_unknown_repository_is_bad_input(gh, monkeypatch, tmp_path):
    cfg = _cfg(tmp_path)
    with pytest.raises(BadInput, match=r"^GITHUB_REPOSITORY: acme/other not found at http://127\.0\.0\.1:\d+"):
        doctor.diagnose(cfg, "acme/other")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_wrongTOKEN0123456789")
    with pytest.raises(BadInput, match=r"^GITHUB_TOKEN: GitHub rejected the token \(401 Bad credentials\)"):
        doctor.diagnose(cfg)


def test_the_repo_flag_wins_over_the_environment(gh, monkeypatch, tmp_path):
    _ready(gh)
    monkeypatch.setenv("GITHUB_REPOSITORY", "someone/else")
    assert _problems(doctor.diagnose(_cfg(tmp_path), "acme/model")) == []
    assert doctor.target("acme/model").repository == "acme/model"


# ---- the local checks -------------------------------------------------------------------------------------


def test_the_log_store_must_be_reachable(tmp_path):
    cfg = _cfg(tmp_path)
    [ok] = doctor.check_store(cfg)
    assert (ok.status, ok.text) == ("ok", "datasets/production/store reachable (config/store.json)")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    [bad] = doctor.check_store(_cfg(tmp_path / "two", store={"uri": str(blocker)}))
    assert bad.status == "problem" and bad.text.startswith("config/store.json: /uri: the log store")


class _MlflowHandler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b'{"experiments": []}'
        wanted = self.headers.get("Authorization") == "Bearer good"
        self.send_response(self.status if wanted or self.status != 200 else 401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def mlflow_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MlflowHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_mlflow_is_checked_when_a_tracking_uri_is_set(mlflow_server, monkeypatch, tmp_path):
    cfg = _cfg(tmp_path)
    assert doctor.check_mlflow(cfg)[0].status == "note"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "good")
    assert doctor.check_mlflow(cfg)[0].text == f"{mlflow_server} answers"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "bad")
    [refused] = doctor.check_mlflow(cfg)
    assert refused.status == "problem" and "refused the credentials (401)" in refused.text
    with socket_closed() as url:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        [gone] = doctor.check_mlflow(cfg, timeout=2)
    assert gone.status == "problem" and gone.text.startswith(f"{url} cannot be reached (ConnectionError)")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    assert doctor.check_mlflow(cfg)[0].status == "ok"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'repo' / 'config' / 'gitops.json'}/x.db")
    assert doctor.check_mlflow(cfg)[0].status == "problem"


class socket_closed:  # noqa: N801 - used as a context manager
    """A loopback URL on which nothing listens."""

    def __enter__(self) -> str:
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.sock = sock
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_the_fork_steps_create_exactly_the_alert_labels():
    text = (ROOT / "docs" / "doctor.md").read_text()
    for name, (colour, description) in LABELS.items():
        assert f'gh label create {name} -c {colour} -d "{description}"' in text
    assert text.count("gh label create ") == len(LABELS) + 1  # + the one in the Labels fix
