"""Every declared factor is evaluated (issue 16): a factor must name a slice column, intersections are capped
and need a minimum n, every metric and slice gets a bootstrap interval. No training: config and metrics only."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from mlops import metrics as M
from tests.support.cli import run
from tests.support.repo import make_repo, tree_snapshot

REFUSED = (
    "error: config/model-card.json: /factors/relevant/2/slice: factor 'Tenure' names 'tenure_months', not a slice "
    "column (slices: region, plan); add the column to /slices in config/dataset.json, or point the factor at one "
    "of them"
)


def _edit_card(repo, edit):
    path = repo / "config" / "model-card.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("command", [("config", "check"), ("card", "check", "--all"), ("card", "build", "--all")])
def test_a_factor_with_no_slice_is_refused_with_one_line_exit_2(tmp_path, command):
    repo = make_repo(tmp_path)
    _edit_card(repo, lambda d: d["factors"]["relevant"].append({"name": "Tenure", "slice": "tenure_months"}))
    before = tree_snapshot(repo)
    r = run(repo, *command)
    assert r.code == 2 and r.err.strip() == REFUSED
    assert tree_snapshot(repo) == before


def test_an_intersection_needs_two_distinct_slice_columns_and_a_factor_needs_its_slice_key(tmp_path):
    repo = make_repo(tmp_path)
    _edit_card(repo, lambda d: d["factors"].update(intersections=[["region", "region"]]))
    r = run(repo, "config", "check")
    assert r.code == 2
    assert r.err.startswith("error: config/model-card.json: /factors/intersections/0/1: 'region' is not a distinct")
    _edit_card(repo, lambda d: d["factors"].update(intersections=[], relevant=["Customer region"]))
    r = run(repo, "config", "check")  # the old format: a factor as free text names no slice
    assert r.code == 2 and "config/model-card.json: /factors/relevant/0" in r.err and len(r.err.splitlines()) == 1


def test_the_shipped_cards_config_declares_only_evaluated_factors(tmp_path):
    r = run(make_repo(tmp_path), "config", "check")
    assert r.code == 0, r.err


def _cfg(intersections, min_rows=30, cells=24, iterations=50):
    factors = SimpleNamespace(intersections=intersections, min_slice_rows=min_rows, max_intersection_cells=cells)
    return SimpleNamespace(
        training=SimpleNamespace(ece_bins=10, bootstrap_iterations=iterations),
        dataset=SimpleNamespace(slices=["a", "b"]),
        model_card=SimpleNamespace(factors=factors),
    )


def _data(n=2000, seed=3):
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.choice(["x", "y", "z"], n, p=[0.6, 0.39, 0.01]), "b": rng.choice(["p", "q"], n)})
    p = rng.uniform(size=n)
    return frame, (rng.uniform(size=n) < p).astype(int), p


def test_slices_carry_intervals_and_intersections_keep_only_big_enough_cells_largest_first():
    frame, y, p = _data()
    out = M.evaluated_slices(_cfg([["a", "b"]], min_rows=30, cells=3), frame, y, p, seed=1)
    assert set(out) == {"a", "b", "a x b"}
    cells = out["a x b"]
    assert len(cells) == 3 and all(c["n"] >= 30 for c in cells.values())  # z (1 %) cells are too small; capped at 3
    sizes = {f"{x} & {z}": int(((frame["a"] == x) & (frame["b"] == z)).sum()) for x in "xyz" for z in "pq"}
    assert set(cells) == set(sorted(sizes, key=lambda k: -sizes[k])[:3])
    for column in out.values():
        for row in column.values():
            assert set(row["intervals"]) >= {"accuracy", "f1", "precision", "recall", "ece", "positive_rate"}
            assert row["intervals"]["accuracy"]["low"] <= row["accuracy"] <= row["intervals"]["accuracy"]["high"]
    # the single-column slices keep the metrics slice_metrics gives
    plain = M.slice_metrics(frame, y, p, ["a", "b"])
    assert {k: v for k, v in out["a"]["x"].items() if k != "intervals"} == plain["a"]["x"]


def test_every_metric_gets_an_interval_equal_to_the_resampled_arrays_metric():
    frame, y, p = _data(500, seed=5)
    for seed in range(2):
        got = M.bootstrap_intervals(y, p, iterations=1, seed=seed)
        idx = np.random.default_rng(seed).integers(0, len(y), len(y))
        expected = M.classification_metrics(y[idx], p[idx])
        assert set(got) == set(expected) - {"n"}
        for name, bounds in got.items():
            assert bounds["low"] == pytest.approx(expected[name], abs=1e-9), name


def test_the_precision_recall_curve_is_the_interpolated_one():
    from sklearn.metrics import precision_recall_curve

    _, y, p = _data(800, seed=9)
    grid = np.linspace(0, 1, 21)
    pr = M.precision_recall(y, p, grid)
    precision, recall, _ = precision_recall_curve(y, p)
    for r, best in pr:
        assert best == pytest.approx(max(pp for pp, rr in zip(precision, recall, strict=True) if rr >= r), abs=1e-6)
    assert [b for _, b in pr] == sorted((b for _, b in pr), reverse=True)  # never rises with recall


def test_a_licence_other_needs_its_name_for_the_hub(tmp_path):
    repo = make_repo(tmp_path)
    _edit_card(repo, lambda d: d.update(license="other"))
    r = run(repo, "config", "check")
    assert r.code == 2 and r.err.startswith("error: config/model-card.json: /license: is `other` without /license_name")
    _edit_card(repo, lambda d: d.update(license_name="acme-model-licence"))
    assert run(repo, "config", "check").code == 0
    _edit_card(repo, lambda d: d.update(license="Apache 2.0"))  # free text is not a licence id
    r = run(repo, "config", "check")
    assert r.code == 2 and "config/model-card.json: /license" in r.err
