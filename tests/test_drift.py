"""The drift engine against Evidently 0.7.23 itself, and the calibration of the alarm."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wasserstein_distance

from mlops import drift, profile
from mlops.synthetic import CATEGORICAL, NUMERIC, generate
from tests.support.drift_refs import by_column, numeric_reference, reference_from_frame


def evidently_values(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, tuple[float, str]]:
    """Per-column (value, method) from Evidently's DataDriftPreset."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    cols = NUMERIC + CATEGORICAL
    snap = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur[cols], data_definition=definition),
        Dataset.from_pandas(ref[cols], data_definition=definition),
    )
    out = {}
    for m in snap.dict()["metrics"]:
        if m["config"]["type"].endswith("ValueDrift"):
            out[m["config"]["column"]] = (float(m["value"]), m["config"]["method"])
    return out


EVIDENTLY_METHOD = {
    "wasserstein": "Wasserstein distance (normed)",
    "jensenshannon": "Jensen-Shannon distance",
    "ks": "K-S p_value",
    "chisquare": "chi-square p_value",
    "z": "Z-test p_value",
}


def _shifted_window(rows: int, seed: int) -> pd.DataFrame:
    cur = generate(rows, seed)
    cur["age"] += 6.0
    cur["noise_t"] *= 1.5
    cur.loc[: rows // 10, "plan"] = "basic"
    cur.loc[: rows // 20, "devices"] = np.nan
    cur.loc[: rows // 50, "income"] = np.inf  # Evidently drops +-inf like NaN
    return cur


@pytest.mark.parametrize("ref_rows", [3000, 700])
def test_every_column_equals_evidently_on_raw_data(ref_rows):
    ref, cur = generate(ref_rows, 11), _shifted_window(2500, 12)
    expected = evidently_values(ref, cur)
    result = drift.compare(reference_from_frame(ref, NUMERIC, CATEGORICAL), cur)
    assert [c.column for c in result.columns] == NUMERIC + CATEGORICAL
    for c in result.columns:
        value, method = expected[c.column]
        assert EVIDENTLY_METHOD[c.method] == method, c.column
        assert c.score == pytest.approx(value, abs=1e-6), c.column
    methods = {c.method for c in result.columns}
    # The cases the test exists for are really exercised.
    assert methods == ({"wasserstein", "jensenshannon"} if ref_rows > 1000 else {"ks", "chisquare"})
    assert by_column(result)["age"].drifted


def test_two_valued_columns_use_the_z_test_like_evidently():
    rng = np.random.default_rng(3)
    ref = generate(600, 1)
    cur = generate(600, 2)
    ref["devices"] = rng.choice([1.0, 2.0], 600)
    cur["devices"] = rng.choice([1.0, 2.0], 600, p=[0.7, 0.3])
    ref["plan"] = rng.choice(["a", "b"], 600)
    cur["plan"] = rng.choice(["a", "b"], 600, p=[0.2, 0.8])
    expected = evidently_values(ref, cur)
    result = by_column(drift.compare(reference_from_frame(ref, NUMERIC, CATEGORICAL), cur))
    for col in ("devices", "plan"):
        assert result[col].method == "z"
        assert result[col].score == pytest.approx(expected[col][0], abs=1e-6)


def test_psi_equals_evidently_psi():
    from evidently.legacy.calculations.stattests.psi import _psi
    from evidently.legacy.core import ColumnType

    ref, cur = generate(3000, 5), _shifted_window(2000, 6)
    refs = reference_from_frame(ref, NUMERIC, CATEGORICAL)
    for col in ("age", "income", "support_calls", "contract_length", "noise_t", "region", "plan"):
        kind = ColumnType.Categorical if col in CATEGORICAL else ColumnType.Numerical
        r = ref[col].replace([np.inf, -np.inf], np.nan).dropna()
        c = cur[col].replace([np.inf, -np.inf], np.nan).dropna()
        expected = float(_psi(r, c, kind, 0.1)[0])
        got = drift.column_drift(refs[col], cur[col].to_numpy() if kind == ColumnType.Numerical else cur[col]).psi
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), col


@pytest.mark.parametrize(("n", "m"), [(5000, 5000), (4000, 6000), (4999, 6007)])
def test_wasserstein_sorted_matches_scipy_on_every_path(n, m):
    rng = np.random.default_rng(n + m)
    a, b = rng.lognormal(0, 1, n), rng.lognormal(0.2, 1.1, m)
    a[:50] = b[:50]  # ties across the samples
    got = drift.wasserstein_sorted(np.sort(a), np.sort(b))
    assert got == pytest.approx(wasserstein_distance(a, b), rel=1e-12)


def test_a_column_with_no_values_in_the_window_counts_as_drifted():
    ref = numeric_reference("x", np.arange(2000.0))
    result = drift.numeric_drift(ref, np.full(100, np.nan))
    assert (result.method, result.drifted, result.missing_current) == ("all-missing", True, 100)


# ---------------------------------------------------------------------------- alarm calibration


@pytest.fixture(scope="module")
def reference_from_profile():
    train = generate(24000, 7).iloc[:16800]
    levels = profile.quantile_levels()
    prof = {
        "features": {"numeric": NUMERIC, "categorical": CATEGORICAL},
        "quantile_levels": levels,
        "columns": {
            **{c: profile.numeric_profile(train[c].to_numpy(dtype=float), levels) for c in NUMERIC},
            **{c: profile.categorical_profile(train[c]) for c in CATEGORICAL},
        },
    }
    return profile.references(prof)


def test_alarm_calibration_50_clean_and_50_shifted_windows(reference_from_profile):
    refs = reference_from_profile
    share = 0.15  # config/training-schedule.json's drift_alert_threshold
    false_alarms = 0
    for seed in range(50):
        false_alarms += drift.compare(refs, generate(20000, 1000 + seed)).dataset_drift(share)
    assert false_alarms <= 1

    alarms = exact = 0
    for seed in range(50):
        window = generate(20000, 2000 + seed)
        shifted = sorted(np.random.default_rng(seed).choice(NUMERIC, size=4, replace=False))
        for c in shifted:
            window[c] = window[c] + 0.5 * refs[c].std
        result = drift.compare(refs, window)
        alarms += result.dataset_drift(share)
        exact += sorted(result.drifted) == shifted
    assert result.share > share
    assert alarms == 50
    assert exact >= 45


def test_finite_sorted_skips_the_sort_only_for_sorted_input():
    import numpy as np

    from mlops.drift import finite_sorted

    rng = np.random.default_rng(0)
    for values in (rng.normal(size=500), np.append(rng.normal(size=50), [np.nan, np.inf, -np.inf]), np.array([])):
        presorted = np.sort(values)
        assert np.array_equal(finite_sorted(values), finite_sorted(presorted))
        assert np.array_equal(finite_sorted(values), np.sort(values)[np.isfinite(np.sort(values))])
    unsorted_nan_inside = np.array([1.0, np.nan, 0.5])
    assert finite_sorted(unsorted_nan_inside).tolist() == [0.5, 1.0]


def test_categorical_counts_of_arrow_strings_equal_the_object_series():
    # pyarrow's value_counts must give pandas's keys, counts, order (first appearance) and missing.
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from mlops import drift

    rng = np.random.default_rng(8)
    words = ["b", "a", "", "nan", "NA", "ü", "a b"]
    cases = [
        pa.chunked_array([[None, "x", "y", "x"], ["y", None, "z"]]),
        pa.chunked_array([[None, None]], type=pa.string()),
        pa.chunked_array([[]], type=pa.string()),
        pa.array(["only"]),
        pa.chunked_array(
            [pa.array(rng.choice(words, 500).tolist()), pa.array([None] * 3 + rng.choice(words, 97).tolist())]
        ),
        pa.chunked_array([pa.array(["q", None, "r"], type=pa.large_string())]),
    ]
    for values in cases:
        series = pd.Series(values.to_numpy(zero_copy_only=False), dtype=object)
        keys, counts, missing = drift.categorical_counts(values)
        ref_keys, ref_counts, ref_missing = drift.categorical_counts(series)
        assert keys == ref_keys and missing == ref_missing
        assert counts.dtype == ref_counts.dtype and np.array_equal(counts, ref_counts)
