"""The promotion gate on plain values: thresholds, the champion comparison, and every branch of
`decide_promotion` (the end-to-end runs in tests/test_train.py reach only some of them)."""

from __future__ import annotations

import pytest

from mlops import gate

DATA = "a" * 64
OTHER_DATA = "b" * 64


def best(f1: float, dataset: str = DATA) -> dict:
    return {"metrics": {"f1": f1}, "dataset_sha256": dataset}


def champion(f1: float, dataset: str = DATA, **extra) -> dict:
    return {"version": "v0", "metrics": {"f1": f1}, "dataset_sha256": dataset, "comparable": True, **extra}


@pytest.mark.parametrize(
    ("best_", "champion_", "force", "promote", "reason"),
    [
        (None, champion(0.8), False, False, "no candidate passed the gate"),
        (None, None, True, False, "no candidate passed the gate"),
        (best(0.7), None, False, True, "no current model: the best passing candidate becomes the first champion"),
        (
            best(0.7),
            champion(0.9, comparable=False, reason="its features differ from this data's"),
            False,
            True,
            "champion not comparable (its features differ from this data's); candidate passed the absolute thresholds",
        ),
        (best(0.81), champion(0.8), False, True, "f1 0.8100 beats the champion's 0.8000"),
        (best(0.81), champion(0.8, OTHER_DATA), False, True, "f1 0.8100 beats the champion's 0.8000"),
        (
            best(0.8),
            champion(0.8, OTHER_DATA),
            False,
            True,
            "new data; f1 0.8000 within tolerance of the champion's 0.8000",
        ),
        (
            best(0.79),
            champion(0.8, OTHER_DATA),
            True,
            True,
            "new data; f1 0.7900 within tolerance of the champion's 0.8000",
        ),
        (best(0.8), champion(0.8), True, True, "--force-retrain: equal champion on the same data replaced"),
        (best(0.79), champion(0.8), True, True, "--force-retrain: equal champion on the same data replaced"),
        (
            best(0.8),
            champion(0.8),
            False,
            False,
            "no improvement on the same data (f1 0.8000 vs champion 0.8000)",
        ),
        (
            best(0.79),
            champion(0.8),
            False,
            False,
            "no improvement on the same data (f1 0.7900 vs champion 0.8000)",
        ),
    ],
    ids=[
        "nothing-passed",
        "nothing-passed-even-forced",
        "first-champion",
        "champion-not-comparable",
        "strictly-better",
        "strictly-better-on-new-data",
        "equal-on-new-data",
        "worse-within-tolerance-on-new-data-forced",
        "equal-same-data-forced",
        "worse-same-data-forced",
        "equal-same-data",
        "worse-same-data",
    ],
)
def test_decide_promotion_every_branch(best_, champion_, force, promote, reason):
    assert gate.decide_promotion(best_, champion=champion_, primary_metric="f1", force=force) == (promote, reason)


def test_a_champion_without_comparable_is_taken_as_comparable():
    # a champion dict from before `comparable` existed compares on the metric
    older = {"version": "v0", "metrics": {"f1": 0.8}, "dataset_sha256": DATA}
    assert gate.decide_promotion(best(0.8), champion=older, primary_metric="f1", force=False)[0] is False


METRICS = {"accuracy": 0.9, "ece": 0.03, "f1": 0.8}


def evaluate(metrics=METRICS, champion_metrics=None, **limits):
    kwargs = {"accuracy_min": 0.85, "ece_max": 0.05, "primary_metric": "f1", "tolerance": 0.01, **limits}
    return gate.evaluate(metrics, champion_metrics=champion_metrics, **kwargs)


@pytest.mark.parametrize(
    ("limits", "champion_metrics", "passed", "regression", "failed"),
    [
        ({}, None, True, False, []),
        ({"accuracy_min": 0.95}, None, False, False, ["accuracy_min"]),
        ({"ece_max": 0.01}, None, False, False, ["ece_max"]),
        ({"accuracy_min": 0.9, "ece_max": 0.03}, None, True, False, []),  # the limits themselves pass
        ({}, {"f1": 0.805}, True, False, []),  # below the champion, within tolerance
        ({}, {"f1": 0.85}, False, True, ["champion_f1"]),  # below it beyond tolerance: a regression
        ({}, {"f1": None}, True, False, []),  # no champion value: no comparison
        ({"ece_max": 0.01}, {"f1": 0.85}, False, True, ["ece_max", "champion_f1"]),
    ],
    ids=["passes", "accuracy", "ece", "at-the-limits", "within-tolerance", "regression", "no-value", "two-fail"],
)
def test_evaluate_checks_thresholds_and_the_champion(limits, champion_metrics, passed, regression, failed):
    result = evaluate(champion_metrics=champion_metrics, **limits)
    assert result.passed is passed and result.regression is regression
    assert [c["name"] for c in result.checks if not c["passed"]] == failed
    assert len(result.reasons) == len(failed)
    compared = bool(champion_metrics) and champion_metrics.get("f1") is not None
    assert (result.champion_delta is None) is not compared
    if compared:
        assert result.champion_delta == pytest.approx(0.8 - champion_metrics["f1"])


def test_a_check_records_its_inputs_and_a_reason():
    check = evaluate(champion_metrics={"f1": 0.85}).checks[-1]
    assert check == {
        "name": "champion_f1", "value": 0.8, "op": ">=", "threshold": pytest.approx(0.84), "passed": False,
        "reason": "champion-relative f1: 0.8000 fails >= 0.8400", "champion_value": 0.85, "tolerance": 0.01,
    }  # fmt: skip
