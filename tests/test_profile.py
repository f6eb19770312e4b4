"""The reference profile: compact, close to the raw statistics, checked on load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlops import drift, jsonio, profile
from mlops.errors import BadInput
from mlops.synthetic import CATEGORICAL, LABEL, NUMERIC, generate
from tests.support.drift_refs import by_column, reference_from_frame
from training.model_types import logistic_regression


@pytest.fixture(scope="module")
def trained():
    df = generate(24000, 7)
    y = df.pop(LABEL).to_numpy()
    X_train, X_test, y_test = df.iloc[:16800], df.iloc[16800:], y[16800:]
    pipeline = logistic_regression.build(NUMERIC, CATEGORICAL, 0).fit(X_train, y[:16800])
    prof = profile.build_reference_profile(
        pipeline, X_train, X_test, y_test, NUMERIC, CATEGORICAL, {"accuracy": 0.9, "ece": 0.02}, 0
    )
    return prof, X_train


def test_profile_is_compact_json_with_every_part(trained):
    prof, _ = trained
    text = jsonio.dumps(prof)
    assert len(text.encode()) < 400_000  # far under the 1 MB budget, with 16,800 training rows
    assert set(prof["columns"]) == set(NUMERIC + CATEGORICAL)
    assert prof["columns"]["region"]["values"] == ["central", "east", "north", "south", "west"]
    assert "quantiles" in prof["columns"]["noise_t"] and "values" in prof["columns"]["devices"]
    assert 0 < prof["positive_rate"] < 1 and prof["metrics"] == {"accuracy": 0.9, "ece": 0.02}
    assert prof["score"]["n"] == 24000 - 16800
    imp = profile.importance(prof)
    # The generator's label depends on satisfaction and support calls, not on the noise columns.
    assert imp["satisfaction"] > 0.02 and imp["support_calls"] > 0.02
    assert max(abs(imp[c]) for c in ("noise_normal", "noise_uniform", "noise_lognormal", "noise_t")) < 0.01


@pytest.mark.parametrize("shift", [0.0, 0.5])
def test_drift_from_profile_is_within_0_01_of_raw(trained, shift):
    prof, X_train = trained
    from_profile = profile.references(json.loads(jsonio.dumps(prof)))  # through JSON, as stored
    raw = reference_from_frame(X_train, NUMERIC, CATEGORICAL)
    for seed in range(3):
        window = generate(20000, 300 + seed)
        for c in ("income", "noise_t", "account_balance", "tenure_months", "noise_lognormal"):
            window[c] = window[c] + shift * raw[c].std
        a = by_column(drift.compare(from_profile, window))
        b = by_column(drift.compare(raw, window))
        for c in NUMERIC + CATEGORICAL:
            assert a[c].method == b[c].method
            assert a[c].score == pytest.approx(b[c].score, abs=0.01), c
        assert a["noise_t"].drifted == (shift > 0)


def test_sketch_wasserstein_against_a_dense_exact_computation():
    rng = np.random.default_rng(1)
    ref = rng.standard_t(2, 30000)
    cur = np.sort(rng.standard_t(2, 20000) + 0.3)
    levels = profile.quantile_levels()
    col = profile.numeric_profile(ref, levels)
    sketch = drift.wasserstein_sketch(np.asarray(levels), np.asarray(col["quantiles"]), cur)
    exact = drift.wasserstein_sorted(np.sort(ref), cur)
    assert sketch / col["std"] == pytest.approx(exact / np.std(ref), abs=0.01)


def _write(tmp_path, prof):
    path = tmp_path / "reference-profile.json"
    path.write_text(jsonio.dumps(prof))
    return path


def test_load_round_trips(trained, tmp_path):
    prof, _ = trained
    assert profile.load_reference_profile(_write(tmp_path, prof))["columns"].keys() == prof["columns"].keys()


def test_load_names_the_missing_part(trained, tmp_path):
    prof, _ = trained
    broken = {k: v for k, v in prof.items() if k != "importance"}
    with pytest.raises(BadInput, match=r"reference-profile.json: /importance: missing from the reference profile"):
        profile.load_reference_profile(_write(tmp_path, broken))


def test_load_refuses_a_feature_without_a_column_profile(trained, tmp_path):
    prof, _ = trained
    broken = json.loads(jsonio.dumps(prof))
    del broken["columns"]["income"]
    with pytest.raises(BadInput, match=r"/columns/income: no numeric profile for feature 'income'"):
        profile.load_reference_profile(_write(tmp_path, broken))


def test_load_refuses_another_format(trained, tmp_path):
    prof, _ = trained
    with pytest.raises(BadInput, match=r"/format: format 2 is not the supported 1"):
        profile.load_reference_profile(_write(tmp_path, {**prof, "format": 2}))


def test_drift_from_profile_is_within_0_01_of_evidently(trained):
    # The acceptance figure itself: the stored profile against Evidently 0.7's own values on the raw data.
    from tests.test_drift import EVIDENTLY_METHOD, evidently_values

    prof, X_train = trained
    from_profile = profile.references(json.loads(jsonio.dumps(prof)))
    window = generate(5000, 401)
    for c in ("income", "noise_t", "tenure_months"):
        window[c] = window[c] + 0.3 * from_profile[c].std
    expected = evidently_values(X_train, window)
    got = by_column(drift.compare(from_profile, window))
    assert set(got) == set(expected) == set(NUMERIC + CATEGORICAL)
    for c, (value, method) in expected.items():
        assert EVIDENTLY_METHOD[got[c].method] == method, c
        assert got[c].score == pytest.approx(value, abs=0.01), c
    assert {"income", "noise_t", "tenure_months"} <= set(drift.compare(from_profile, window).drifted)


def test_scores_are_the_positive_column_and_repeat_bit_for_bit_for_every_bundled_type():
    from mlops.train import _single_threaded_predict
    from training.model_types import available

    df = generate(6000, 3)
    y = df.pop(LABEL).to_numpy()
    X_train, X_test = df.iloc[:3000], df.iloc[3000:].reset_index(drop=True)
    for name, module in available().items():
        pipeline = module.build(NUMERIC, CATEGORICAL, 0).fit(X_train, y[:3000])
        _single_threaded_predict(pipeline)  # as mlops train leaves every model
        whole = pipeline.predict_proba(X_test)[:, 1]
        scores = profile.positive_scores(pipeline, X_test)
        assert scores.dtype == whole.dtype and scores.shape == whole.shape, name
        assert np.array_equal(scores, whole) and np.array_equal(profile.positive_scores(pipeline, X_test), whole), name


def test_profile_reuses_given_test_scores(trained):
    prof, X_train = trained
    df = generate(24000, 7)
    y = df.pop(LABEL).to_numpy()
    given = np.linspace(0.0, 1.0, 24000 - 16800)
    pipeline = logistic_regression.build(NUMERIC, CATEGORICAL, 0).fit(df.iloc[:16800], y[:16800])
    again = profile.build_reference_profile(
        pipeline, df.iloc[:16800], df.iloc[16800:], y[16800:], NUMERIC, CATEGORICAL,
        {"accuracy": 0.9, "ece": 0.02}, 0, test_scores=given,
    )  # fmt: skip
    assert again["positive_rate"] == float(np.mean(given >= 0.5)) != prof["positive_rate"]
    assert again["columns"] == prof["columns"] and again["importance"] == prof["importance"]
