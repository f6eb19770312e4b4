"""The reference profile stored beside every promoted model (models/<...>/reference-profile.json).

It holds what monitoring compares a production window with, and nothing it does not need, so it
stays far under 1 MB however large the training set is:

* numeric features: n, missing, mean, std (ddof=0, Evidently's normaliser), min, max, and either
  the exact value counts (<= 1,001 distinct values: exact statistics) or a quantile sketch at the
  shared `quantile_levels` (1,001 evenly spaced levels plus log-spaced tail levels down to 1e-6,
  so heavy tails keep their shape). Quantiles are rounded to 1e-6 of the column's std.
* categorical features: value counts and missing count.
* the positive-class score distribution on the test split (same representation as a numeric
  feature), predicted and labelled positive rates, test accuracy and ECE, and permutation
  importance on a bounded sample of the test split.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mlops import jsonio
from mlops.errors import BadInput

FORMAT = 1
GRID = 1000  # 1,001 evenly spaced quantile levels
TAIL_LEVELS = 30  # per tail, log-spaced from 1e-3 down to 1e-6
IMPORTANCE_ROWS = 2000
IMPORTANCE_REPEATS = 3


def quantile_levels() -> list[float]:
    """The shared sketch levels: k/1000 plus log-spaced tails (3 significant digits)."""
    import numpy as np

    tail = [float(f"{x:.3g}") for x in np.geomspace(1e-6, 1e-3, TAIL_LEVELS + 1)[:-1]]
    body = [k / GRID for k in range(GRID + 1)]
    levels = set(body) | set(tail) | {float(f"{1 - x:.9g}") for x in tail}
    return sorted(levels)


def _round_to(values: Any, std: float) -> list[float]:
    digits = 6 - math.floor(math.log10(std)) if std > 0 else 6
    return [round(float(v), digits) for v in values]


def quantiles_sorted(s: Any, levels: Any) -> Any:
    """np.quantile(s, levels, method="linear") for a sorted float64 array without NaN, read off the
    sorted array (np.quantile partitions its input again, O(n) per call): numpy's own index, gamma
    and lerp steps, so the values are the same bits (tests compare them)."""
    import numpy as np

    q = np.asarray(levels, dtype=np.float64)
    n = len(s)
    virtual = (n - 1) * q
    prev = np.floor(virtual)
    above = virtual >= n - 1
    prev[above] = -1
    prev[virtual < 0] = 0
    prev_i = prev.astype(np.intp)
    next_i = prev_i + 1
    next_i[above] = -1
    next_i[virtual < 0] = 0
    a, b = s[prev_i], s[next_i]
    t = virtual - prev_i
    diff = b - a
    out = a + diff * t
    np.subtract(b, diff * (1 - t), out=out, where=t >= 0.5)
    return out


def numeric_profile(values: Any, levels: list[float]) -> dict[str, Any]:
    """Profile of one numeric column (exact counts or quantile sketch)."""
    import numpy as np

    from mlops import drift

    arr = np.asarray(values, dtype=np.float64)
    s = drift.finite_sorted(arr)
    n = len(s)
    out: dict[str, Any] = {"kind": "numeric", "n": n, "missing": int(len(arr) - n)}
    if n == 0:
        return out
    std, mean = float(np.std(s)), float(np.mean(s))
    if not math.isfinite(std) or not math.isfinite(mean):  # |values| near 1e200: the squares overflow
        scale = max(abs(float(s[0])), abs(float(s[-1])))
        std, mean = scale * float(np.std(s / scale)), scale * float(np.mean(s / scale))
    out.update(mean=mean, std=std, min=float(s[0]), max=float(s[-1]))
    starts = np.concatenate(([True], s[1:] != s[:-1]))
    distinct = int(starts.sum())
    if distinct <= drift.EXACT_MAX_UNIQUE:
        idx = np.flatnonzero(starts)
        out["values"] = [float(v) for v in s[idx]]
        out["counts"] = [int(c) for c in np.diff(np.append(idx, n))]
    else:
        out["quantiles"] = _round_to(quantiles_sorted(s, levels), std)
    return out


def categorical_profile(values: Any) -> dict[str, Any]:
    """Profile of one categorical column: value counts (sorted by value text) and missing count."""
    from mlops import drift

    keys, counts, missing = drift.categorical_counts(values)
    order = sorted(range(len(keys)), key=lambda i: str(keys[i]))
    return {
        "kind": "categorical",
        "n": int(counts.sum()),
        "missing": missing,
        "values": [keys[i] for i in order],
        "counts": [int(counts[i]) for i in order],
    }


def positive_scores(pipeline: Any, X: Any) -> Any:
    """Positive-class probability (the last of the pipeline's sorted classes, 1 = positive)."""
    return pipeline.predict_proba(X)[:, -1]


def permutation_importance(pipeline: Any, X: Any, y: Any, features: list[str], seed: int) -> dict[str, Any]:
    """Permutation importance (ROC AUC drop) on at most IMPORTANCE_ROWS rows of X."""
    import numpy as np
    import pandas as pd
    from sklearn.metrics import accuracy_score, roc_auc_score

    y = np.asarray(y)
    rows = min(len(X), IMPORTANCE_ROWS)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(X), size=rows, replace=False))
    base = X.iloc[pick][features].reset_index(drop=True)
    ys = y[pick]
    scoring = "roc_auc" if len(np.unique(ys)) == 2 else "accuracy"
    # sklearn's permutation_importance calls the pipeline once per (feature, repeat); one call on
    # all permuted copies stacked is the same computation at a fraction of the overhead.
    blocks = [base]
    for f in features:
        column = base[f].to_numpy()
        for _ in range(IMPORTANCE_REPEATS):
            block = base.copy()
            block[f] = column[rng.permutation(rows)]
            blocks.append(block)
    scores = positive_scores(pipeline, pd.concat(blocks, ignore_index=True)).reshape(len(blocks), rows)

    def score(s: Any) -> float:
        return float(roc_auc_score(ys, s) if scoring == "roc_auc" else accuracy_score(ys, s >= 0.5))

    baseline = score(scores[0])
    drops = np.array([baseline - score(s) for s in scores[1:]]).reshape(len(features), IMPORTANCE_REPEATS)
    values = {
        f: {"mean": round(float(d.mean()), 6), "std": round(float(d.std()), 6)}
        for f, d in zip(features, drops, strict=True)
    }
    return {"scoring": scoring, "rows": rows, "repeats": IMPORTANCE_REPEATS, "baseline": round(baseline, 6),
            "features": values}  # fmt: skip


def build_reference_profile(
    pipeline: Any,
    X_train: Any,
    X_test: Any,
    y_test: Any,
    numeric: list[str],
    categorical: list[str],
    metrics: dict,
    seed: int,
    test_scores: Any = None,
) -> dict:
    """The compact reference profile monitoring compares production windows with."""
    import numpy as np

    levels = quantile_levels()
    columns: dict[str, Any] = {}
    for c in numeric:
        columns[c] = numeric_profile(X_train[c].to_numpy(dtype=float, na_value=np.nan), levels)
    for c in categorical:
        columns[c] = categorical_profile(X_train[c])
    features = list(numeric) + list(categorical)
    # the caller may pass the test scores it already has (mlops train does)
    scores = positive_scores(pipeline, X_test[features]) if test_scores is None else np.asarray(test_scores, float)
    y = np.asarray(y_test).astype(int)
    return {
        "format": FORMAT,
        "features": {"numeric": list(numeric), "categorical": list(categorical)},
        "quantile_levels": levels,
        "columns": columns,
        "score": numeric_profile(scores, levels),
        "positive_rate": float(np.mean(scores >= 0.5)),
        "label_positive_rate": float(np.mean(y == 1)),
        "metrics": {"accuracy": float(metrics["accuracy"]), "ece": float(metrics["ece"])},
        "rows": {"train": int(len(X_train)), "test": int(len(X_test))},
        "importance": permutation_importance(pipeline, X_test, y, features, seed),
        "seed": int(seed),
    }


_REQUIRED = ("format", "features", "quantile_levels", "columns", "score", "positive_rate", "metrics", "importance")


def load_reference_profile(path: str | Path) -> dict:
    """Read and check a reference profile; every defect is one BadInput line naming the field."""
    path = Path(path)
    profile = jsonio.read_json(path, "reference profile")
    where = str(path)
    fix = "retrain (`mlops train`) to write a fresh profile beside the model"
    if not isinstance(profile, dict):
        raise BadInput(where, "a reference profile must be a JSON object", fix)
    for key in _REQUIRED:
        if key not in profile:
            raise BadInput(f"{where}: /{key}", "missing from the reference profile", fix)
    if profile["format"] != FORMAT:
        raise BadInput(f"{where}: /format", f"format {profile['format']!r} is not the supported {FORMAT}", fix)

    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    def numbers(value: Any) -> bool:
        return isinstance(value, list) and all(number(v) for v in value)

    feats, columns = profile["features"], profile["columns"]
    if not (isinstance(feats, dict) and all(isinstance(feats.get(k), list) for k in ("numeric", "categorical"))):
        raise BadInput(f"{where}: /features", "expected lists of numeric and categorical feature names", fix)
    if not isinstance(columns, dict) or not numbers(profile["quantile_levels"]):
        raise BadInput(f"{where}: /columns", "expected an object of column profiles and a list of quantile levels", fix)
    metrics = profile["metrics"]
    for key in ("accuracy", "ece"):
        if not (isinstance(metrics, dict) and number(metrics.get(key))):
            raise BadInput(f"{where}: /metrics/{key}", "missing or not a number", fix)
    if not number(profile["positive_rate"]):
        raise BadInput(f"{where}: /positive_rate", "missing or not a number", fix)
    entries = [(f"/columns/{c}", columns.get(c), kind, f"feature {c!r}") for kind in ("numeric", "categorical")
               for c in feats[kind]]  # fmt: skip
    for pointer, col, kind, what in [*entries, ("/score", profile["score"], "numeric", "the model's scores")]:
        if not isinstance(col, dict) or col.get("kind") != kind:
            raise BadInput(f"{where}: {pointer}", f"no {kind} profile for {what}", fix)
        if not (isinstance(col.get("n"), int) and col["n"] >= 0 and isinstance(col.get("missing", 0), int)):
            raise BadInput(f"{where}: {pointer}/n", "missing or not a row count", fix)
        if col["n"] > 0 and not (("values" in col and "counts" in col) or "quantiles" in col):
            raise BadInput(f"{where}: {pointer}", "has neither value counts nor quantiles", fix)
        if "quantiles" in col and not (
            numbers(col["quantiles"]) and len(col["quantiles"]) == len(profile["quantile_levels"])
        ):
            raise BadInput(f"{where}: {pointer}/quantiles", "not numbers, or not one per /quantile_levels entry", fix)
        if "counts" in col and not (
            numbers(col["counts"]) and isinstance(col.get("values"), list) and len(col["values"]) == len(col["counts"])
        ):
            raise BadInput(f"{where}: {pointer}/counts", "not numbers, or not one count per value", fix)
    return profile


def references(profile: dict) -> dict[str, Any]:
    """RefColumn objects (mlops.drift) for every feature of a loaded profile, numeric first."""
    feats = profile["features"]
    out = {c: column_reference(c, profile["columns"][c], profile["quantile_levels"]) for c in feats["numeric"]}
    out.update({c: column_reference(c, profile["columns"][c], None) for c in feats["categorical"]})
    return out


def column_reference(name: str, col: dict, levels: list[float] | None) -> Any:
    """One profile entry as a drift.RefColumn."""
    import numpy as np

    from mlops import drift

    ref = drift.RefColumn(
        name=name, kind=col["kind"], n=int(col["n"]), missing=int(col.get("missing", 0)),
        mean=col.get("mean"), std=col.get("std"), minimum=col.get("min"), maximum=col.get("max"),
    )  # fmt: skip
    if "quantiles" in col:
        ref.levels = np.asarray(levels, dtype=float)
        ref.quantiles = np.asarray(col["quantiles"], dtype=float)
    elif col["kind"] == drift.NUMERIC:
        ref.values = np.asarray(col.get("values", []), dtype=float)
        ref.counts = np.asarray(col.get("counts", []), dtype=float)
    else:
        ref.values = list(col.get("values", []))
        ref.counts = np.asarray(col.get("counts", []), dtype=float)
    return ref


def score_reference(profile: dict) -> Any:
    """The test-split score distribution as a drift.RefColumn named 'score'."""
    return column_reference("score", profile["score"], profile["quantile_levels"])


def importance(profile: dict) -> dict[str, float]:
    """Mean permutation importance per feature."""
    return {f: float(v["mean"]) for f, v in profile["importance"].get("features", {}).items()}
