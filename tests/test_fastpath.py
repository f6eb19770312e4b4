"""The single-row fast path (mlops.serving.fast_frame, mlops.fastpath's compiled pipeline) scores the same bits
as the general path (the pipeline on a pandas frame), for every bundled model type (issue 17), and leaves anything
unusual to the general path's checks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from mlops import synthetic
from mlops.fastpath import compile_pipeline
from mlops.serving import Loaded, Router, fast_frame, one_job
from training.model_types import available


def router_for(pipeline, numeric: list[str], categorical: list[str]) -> Router:
    """A router over one fitted pipeline, without a repository or a log (what route() needs)."""
    manifest = {"features": {"numeric": numeric, "categorical": categorical}}
    router = Router.__new__(Router)
    compiled = None if pipeline is None else compile_pipeline(pipeline)
    router.models = {"production": Loaded("production", "v-test", "0" * 64, pipeline, manifest, compiled)}
    router.traffic, router.log = 0.0, False
    router.features, router.numeric = numeric + categorical, set(numeric)
    return router


def request_rows(frame: pd.DataFrame) -> list[dict]:
    """What JSON clients send: numbers as int or float, text, null for a missing value, an unseen category."""
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    rows[0]["age"], rows[1]["region"], rows[2]["plan"] = None, None, "not-a-plan-seen-in-training"
    rows[3]["tenure_months"] = int(rows[3]["tenure_months"])  # an int where training saw floats
    rows[4]["income"], rows[4]["plan"] = 0, None
    return rows


@pytest.fixture(scope="module")
def data():
    df = synthetic.generate(600, 3)
    y = df.pop(synthetic.LABEL)
    categorical = [c for c in df.columns if df[c].dtype == object]
    numeric = [c for c in df.columns if c not in categorical]
    return df, y, numeric, categorical


@pytest.mark.parametrize("name", sorted(available()))
def test_fast_path_scores_are_bit_identical_to_the_batch_path(name, data):
    df, y, numeric, categorical = data
    with threadpool_limits(limits=1):  # OpenMP fitting on a busy 2-core machine is slower, not faster
        pipeline = one_job(available()[name].build(numeric, categorical, 0).fit(df, y))  # as load_pinned serves it
    router = router_for(pipeline, numeric, categorical)
    assert router.models["production"].compiled is not None  # every bundled type skips pandas for a few rows
    rows = request_rows(df.head(12))
    for i, row in enumerate(rows):
        assert fast_frame([row], router.features, router.numeric) is not None  # these rows do take the fast path
        fast, _records, _errors = router.route([row], [f"r{i}"])
        general, _records, _errors = router.route(pd.DataFrame.from_records([row]), [f"r{i}"])
        assert fast["score"].to_numpy().tobytes() == general["score"].to_numpy().tobytes(), (name, i)
    fast, fast_records, _ = router.route(rows[:5], [f"b{i}" for i in range(5)])
    general, general_records, _ = router.route(pd.DataFrame.from_records(rows[:5]), [f"b{i}" for i in range(5)])
    assert fast["score"].to_numpy().tobytes() == general["score"].to_numpy().tobytes()
    assert [r["score"] for r in fast_records] == [r["score"] for r in general_records]


def test_one_job_sets_every_n_jobs_so_a_forest_scores_the_same_bits_each_time(data):
    df, y, numeric, categorical = data
    pipeline = available()["random_forest"].build(numeric, categorical, 0)
    assert pipeline.get_params()["model__n_jobs"] == -1
    one_job(pipeline.fit(df, y))
    assert pipeline.get_params()["model__n_jobs"] == 1
    scores = {pipeline.predict_proba(df.head(1))[0, 1].tobytes() for _ in range(20)}
    assert len(scores) == 1


def test_unusual_values_go_the_general_way_with_its_errors(data):
    df, y, numeric, categorical = data
    router = router_for(None, numeric, categorical)
    row = request_rows(df.head(5))[0]
    for name, value in [("age", "42"), ("age", True), ("age", math.inf), ("age", [1]), ("region", 3), ("region", {})]:
        assert fast_frame([{**row, name: value}], router.features, router.numeric) is None, (name, value)
    assert fast_frame([{k: v for k, v in row.items() if k != "plan"}], router.features, router.numeric) is None
    frame = fast_frame([row, row], router.features, router.numeric)
    assert frame.dtypes["age"] == np.float64 and frame.dtypes["region"].kind == "O" and len(frame) == 2
    assert math.isnan(frame["age"][0])  # null is NaN, as the general path makes it


def test_a_pipeline_the_fast_path_does_not_know_is_left_to_sklearn(data):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures

    df, y, numeric, categorical = data
    odd = [
        Pipeline([("prepare", ColumnTransformer([("num", PolynomialFeatures(), numeric[:3])])),
                  ("model", LogisticRegression())]),
        Pipeline([("prepare", ColumnTransformer([("num", "passthrough", numeric)], remainder="passthrough")),
                  ("model", LogisticRegression())]),
        Pipeline([("prepare", ColumnTransformer([("cat", OneHotEncoder(), categorical)])),
                  ("model", LogisticRegression())]),
    ]  # fmt: skip
    filled = df.fillna({c: 0.0 for c in numeric} | {c: "none" for c in categorical})
    for pipeline, columns in zip(odd, [numeric, numeric, categorical], strict=True):
        assert compile_pipeline(pipeline.fit(filled[columns].head(200), y[:200])) is None
