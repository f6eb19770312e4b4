import subprocess

from mlops.repo import Repo


def test_layout_follows_the_design(tmp_path):
    repo = Repo.at(tmp_path)
    assert repo.deployment_state == tmp_path.resolve() / "models" / "deployment.json"
    assert repo.audit_dir == tmp_path.resolve() / "metadata" / "audit"
    assert repo.production_logs == tmp_path.resolve() / "datasets" / "production"
    assert repo.rel(repo.gates / "x.json") == "metadata/gates/x.json"
    assert repo.rel(tmp_path.parent / "elsewhere") == str(tmp_path.parent / "elsewhere")


def test_tracking_uri_env_wins_else_local_sqlite(tmp_path, monkeypatch):
    repo = Repo.at(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert repo.tracking_uri() == f"sqlite:///{(tmp_path.resolve() / '.mlflow' / 'mlflow.db').as_posix()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert repo.tracking_uri() == "http://127.0.0.1:5000"


def test_git_commit_from_env_then_git_then_unknown(tmp_path, monkeypatch):
    repo = Repo.at(tmp_path)
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    assert repo.git_commit() == "unknown"  # not a checkout
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "x"],
        cwd=tmp_path,
        check=True,
        env={**env, "PATH": "/usr/bin:/bin"},
    )
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert repo.git_commit() == head
    monkeypatch.setenv("GITHUB_SHA", "a" * 40)
    assert repo.git_commit() == "a" * 40
