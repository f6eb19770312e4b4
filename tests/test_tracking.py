"""MLflow tracking helpers that need no store: credentials kept out of files, the sqlite preflight."""

from __future__ import annotations

import pytest

from mlops import tracking
from mlops.errors import BadInput
from mlops.repo import Repo


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://user:secret@mlflow.example.com:8443/path?token=x", "https://mlflow.example.com:8443/path"),
        ("https://token@mlflow.example.com/", "https://mlflow.example.com/"),
        ("https://mlflow.example.com/path", "https://mlflow.example.com/path"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        ("databricks", "databricks"),
    ],
)
def test_redact_removes_credentials(uri, expected):
    assert tracking.redact(uri) == expected


def test_preflight_accepts_the_default_store_and_other_schemes(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracking.preflight(Repo.at(tmp_path))  # .mlflow/ does not exist yet: it can be created
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://mlflow.example.com")
    tracking.preflight(Repo.at(tmp_path))  # checked when the store is opened
    assert not (tmp_path / ".mlflow").exists()  # a preflight writes nothing


def test_preflight_refuses_a_path_through_a_file(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/afile/mlflow.db")
    with pytest.raises(BadInput, match=r"^MLFLOW_TRACKING_URI: cannot create .* is not a writable folder"):
        tracking.preflight(Repo.at(tmp_path))


def test_preflight_refuses_a_store_that_is_a_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / ".mlflow" / "mlflow.db").mkdir(parents=True)
    with pytest.raises(BadInput, match=r"^\.mlflow/mlflow\.db: .* is not a readable and writable sqlite file"):
        tracking.preflight(Repo.at(tmp_path))


def test_a_shard_that_loses_the_race_to_create_the_experiment_uses_the_winners(tmp_path, monkeypatch):
    # Two shards started together against a fresh server both find no experiment and both create it;
    # the server answers the loser RESOURCE_ALREADY_EXISTS (measured: 8 of 10 simultaneous pairs against
    # `mlflow server`). That shard used to exit 2 and leave its partner waiting for its trials.
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    repo = Repo.at(tmp_path)
    first = tracking.Tracker(repo, experiment="churn", registered_model="churn-classifier")  # the winner
    lookups = []
    real = mlflow.MlflowClient.get_experiment_by_name

    def raced(self, name):
        lookups.append(name)
        return None if len(lookups) == 1 else real(self, name)  # the loser's lookup came before the create

    monkeypatch.setattr(mlflow.MlflowClient, "get_experiment_by_name", raced)
    second = tracking.Tracker(repo, experiment="churn", registered_model="churn-classifier")
    assert second.experiment_id == first.experiment_id and lookups == ["churn", "churn"]
