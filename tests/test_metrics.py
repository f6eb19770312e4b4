import numpy as np
import pytest

from mlops.metrics import (
    bootstrap_intervals,
    classification_metrics,
    expected_calibration_error,
    reliability_table,
    slice_metrics,
)


def test_ece_matches_hand_computed_example():
    # 10 bins. Bin 1 (0.1-0.2): p=0.1,0.15 y=0,1 -> |0.5-0.125|=0.375, weight 2/6
    # bin 7 (0.7-0.8): p=0.7 y=1 -> 0.3, weight 1/6
    # bin 9 (0.9-1.0, includes 1.0): p=0.9,1.0,1.0 y=1,1,0 -> |2/3-0.9667|=0.3, weight 3/6
    y = [0, 1, 1, 1, 1, 0]
    p = [0.1, 0.15, 0.7, 0.9, 1.0, 1.0]
    expected = (2 / 6) * 0.375 + (1 / 6) * 0.3 + (3 / 6) * abs(2 / 3 - (0.9 + 1.0 + 1.0) / 3)
    assert expected_calibration_error(y, p, bins=10) == pytest.approx(expected, abs=1e-12)


def test_probability_one_falls_in_last_bin():
    table = reliability_table([1, 1], [1.0, 0.95], bins=10)
    assert table[-1]["count"] == 2
    assert sum(b["count"] for b in table) == 2


def test_ece_of_perfectly_calibrated_sample_is_near_zero():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=200_000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.01
    # and a systematically over-confident model is not
    assert expected_calibration_error(y, np.clip(p * 1.3, 0, 1)) > 0.05


def test_ece_refuses_bad_probabilities():
    with pytest.raises(ValueError, match="finite and in"):
        expected_calibration_error([0, 1], [0.2, 1.5])


def test_classification_metrics_values():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    m = classification_metrics(y, p)
    assert m["accuracy"] == 0.5
    assert m["precision"] == 0.5 and m["recall"] == 0.5 and m["f1"] == 0.5
    assert m["roc_auc"] == 0.75
    assert m["brier"] == pytest.approx((0.01 + 0.36 + 0.36 + 0.01) / 4)


def test_bootstrap_interval_contains_point_estimate_and_is_seeded():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=2000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    a = bootstrap_intervals(y, p, iterations=100, seed=3)
    b = bootstrap_intervals(y, p, iterations=100, seed=3)
    assert a == b
    point = classification_metrics(y, p)
    for name in ("accuracy", "f1", "roc_auc"):
        assert a[name]["low"] <= point[name] <= a[name]["high"]
        assert a[name]["high"] - a[name]["low"] < 0.1


def test_slice_metrics_cover_every_value_including_missing():
    import pandas as pd

    frame = pd.DataFrame({"region": ["a", "a", "b", None]})
    out = slice_metrics(frame, [1, 0, 1, 0], [0.9, 0.2, 0.3, 0.4], ["region"])
    assert set(out["region"]) == {"a", "b", "(missing)"}
    assert out["region"]["a"]["accuracy"] == 1.0
    assert out["region"]["b"]["accuracy"] == 0.0


def test_weighted_bootstrap_equals_metrics_of_resampled_arrays():
    # The fast path must give exactly what recomputing on the resampled rows gives.
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(7)
    p = np.round(rng.uniform(size=500), 2)  # rounding creates ties, the hard case for AUC
    y = (rng.uniform(size=p.size) < p).astype(int)
    for seed in range(3):
        got = bootstrap_intervals(y, p, iterations=1, seed=seed)
        idx = np.random.default_rng(seed).integers(0, len(y), len(y))
        m = classification_metrics(y[idx], p[idx])
        for name in ("accuracy", "f1", "ece"):
            assert got[name]["low"] == pytest.approx(m[name], abs=1e-12)
        assert got["roc_auc"]["low"] == pytest.approx(roc_auc_score(y[idx], p[idx]), abs=1e-12)
