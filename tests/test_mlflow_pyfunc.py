"""The pyfunc every logged model runs (mlops/mlflow_pyfunc.py): scores, not labels, from a sha256-checked skops file.

The end-to-end check (`mlflow models serve` against `mlops predict`) is tests/test_card_mlflow.py."""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mlops import registry

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def pyfunc(monkeypatch):
    import mlflow.models.model

    monkeypatch.setattr(mlflow.models.model, "__mlflow_model__", None)  # the file sets it, as MLflow's loader expects
    spec = importlib.util.spec_from_file_location("mlflow_pyfunc_under_test", ROOT / "mlops" / "mlflow_pyfunc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert isinstance(mlflow.models.model.__mlflow_model__, module.PositiveScore)
    return module


def _model(tmp_path):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    y = (X["a"] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    sha, trusted = registry.dump_model(model, tmp_path / "model.skops")
    return model, X, SimpleNamespace(artifacts={"model": str(tmp_path / "model.skops")},
                                     model_config={"sha256": sha, "trusted_types": trusted})  # fmt: skip


def test_predict_answers_the_positive_class_score_of_each_row(pyfunc, tmp_path):
    model, X, context = _model(tmp_path)
    scorer = pyfunc.PositiveScore()
    scorer.load_context(context)
    scores = scorer.predict(context, X.head(20))
    assert scores.shape == (20,) and len(set(np.round(scores, 6))) > 2  # probabilities, not 0/1 labels
    assert np.array_equal(scores, model.predict_proba(X.head(20))[:, 1])


def test_a_skops_file_that_does_not_match_its_logged_sha256_is_not_loaded(pyfunc, tmp_path):
    _, _, context = _model(tmp_path)
    context.model_config["sha256"] = "0" * 64
    with pytest.raises(ValueError, match=r"model.skops: sha256 [0-9a-f]{12} does not match the logged 000000000000"):
        pyfunc.PositiveScore().load_context(context)
