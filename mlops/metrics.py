"""Held-out metrics: the classification set, binned ECE, bootstrap intervals, per-slice metrics.

ECE here is the standard binned expected calibration error of the positive-class probability:
B equal-width bins over [0, 1] (bin b holds b/B <= p < (b+1)/B, and p = 1.0 falls in the last
bin), ECE = sum_b (n_b / N) * |mean(y in b) - mean(p in b)|. Empty bins contribute nothing.
"""

from __future__ import annotations

from typing import Any

PRIMARY = ("accuracy", "f1", "roc_auc", "ece")
# Every other reported metric gets an interval too (issue 16); `n` is a count.
SECONDARY = ("precision", "recall", "brier", "log_loss", "positive_rate", "predicted_positive_rate")
SLICE_KEYS = ("n", "accuracy", "precision", "recall", "f1", "roc_auc", "ece", "positive_rate")
SLICE_ITERATIONS = 200  # resamples per slice: enough for a 95 % interval's width at a fraction of the cost
THRESHOLD = 0.5


def expected_calibration_error(y_true: Any, proba: Any, bins: int = 10) -> float:
    import numpy as np

    y = np.asarray(y_true, dtype=float)
    p = np.asarray(proba, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError("y_true and proba must be 1-D arrays of the same length")
    if len(p) == 0:
        raise ValueError("ECE of an empty sample is undefined")
    if np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        raise ValueError("probabilities must be finite and in [0, 1]")
    idx = np.minimum((p * bins).astype(int), bins - 1)
    counts = np.bincount(idx, minlength=bins)
    sum_y = np.bincount(idx, weights=y, minlength=bins)
    sum_p = np.bincount(idx, weights=p, minlength=bins)
    filled = counts > 0
    gap = np.abs(sum_y[filled] - sum_p[filled])  # n_b * |mean_y - mean_p|
    return float(gap.sum() / len(p))


def reliability_table(y_true: Any, proba: Any, bins: int = 10) -> list[dict[str, float]]:
    """Per-bin count, mean predicted probability and observed positive rate (for the card's plot)."""
    import numpy as np

    y = np.asarray(y_true, dtype=float)
    p = np.asarray(proba, dtype=float)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        mask = idx == b
        n = int(mask.sum())
        out.append(
            {
                "bin_low": b / bins,
                "bin_high": (b + 1) / bins,
                "count": n,
                "mean_predicted": float(p[mask].mean()) if n else 0.0,
                "observed_rate": float(y[mask].mean()) if n else 0.0,
            }
        )
    return out


def _counts(y: Any, pred: Any) -> tuple[int, int, int, int]:
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    return tp, fp, fn, tn


def classification_metrics(y_true: Any, proba: Any, bins: int = 10) -> dict[str, float | None]:
    """Every held-out metric of one model; roc_auc/log_loss are None when a class is absent."""
    import numpy as np
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(y_true, dtype=int)
    p = np.asarray(proba, dtype=float)
    pred = (p >= THRESHOLD).astype(int)
    tp, fp, fn, tn = _counts(y, pred)
    n = len(y)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    both = 0 < y.sum() < n
    return {
        "accuracy": (tp + tn) / n,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "ece": expected_calibration_error(y, p, bins),
        "positive_rate": float(y.mean()),
        "predicted_positive_rate": float(pred.mean()),
        "n": n,
    }


def bootstrap_intervals(
    y_true: Any, proba: Any, *, iterations: int, seed: int, bins: int = 10
) -> dict[str, dict[str, float]]:
    """Percentile 95 % intervals of every metric (PRIMARY, SECONDARY) over `iterations` resamples of the test split.

    A resample is represented by how many times it draws each row (a weight vector), so every
    metric is a weighted sum over the rows sorted once: O(n) per resample instead of a re-sort
    and sklearn's validation overhead per call. Results equal the metrics of the resampled arrays.
    """
    import numpy as np

    if iterations <= 0:
        return {}
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(proba, dtype=float)
    n = len(y)
    order = np.argsort(p, kind="mergesort")
    ys, ps = y[order], p[order]
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])  # groups of tied scores
    correct = ((ps >= THRESHOLD).astype(int) == ys).astype(float)
    pred_pos = (ps >= THRESHOLD).astype(float)
    bin_idx = np.minimum((ps * bins).astype(int), bins - 1)
    rng = np.random.default_rng(seed)
    pc = np.clip(ps, 1e-15, 1 - 1e-15)
    row_log_loss = -(ys * np.log(pc) + (1 - ys) * np.log(1 - pc))
    row_brier = (ps - ys) ** 2
    samples: dict[str, list[float]] = {m: [] for m in (*PRIMARY, *SECONDARY)}
    for _ in range(iterations):
        w = np.bincount(rng.integers(0, n, n), minlength=n)[order].astype(float)
        wp, wn = w * ys, w * (1 - ys)
        samples["accuracy"].append(float(w @ correct) / n)
        tp, fp = float(wp @ pred_pos), float(wn @ pred_pos)
        fn = float(wp.sum()) - tp
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        samples["f1"].append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
        samples["precision"].append(prec)
        samples["recall"].append(rec)
        samples["brier"].append(float(w @ row_brier) / n)
        samples["log_loss"].append(float(w @ row_log_loss) / n)
        samples["positive_rate"].append(float(wp.sum()) / n)
        samples["predicted_positive_rate"].append(float(w @ pred_pos) / n)
        pos_g, neg_g = np.add.reduceat(wp, starts), np.add.reduceat(wn, starts)
        total_pos, total_neg = pos_g.sum(), neg_g.sum()
        if total_pos and total_neg:
            below = np.cumsum(neg_g) - neg_g  # negatives scored strictly lower than each tie group
            samples["roc_auc"].append(float(pos_g @ (below + 0.5 * neg_g)) / (total_pos * total_neg))
        counts = np.bincount(bin_idx, weights=w, minlength=bins)
        gap = np.abs(
            np.bincount(bin_idx, weights=wp, minlength=bins) - np.bincount(bin_idx, weights=w * ps, minlength=bins)
        )
        samples["ece"].append(float(gap[counts > 0].sum()) / n)
    return {
        m: {"low": float(np.percentile(v, 2.5)), "high": float(np.percentile(v, 97.5))} for m, v in samples.items() if v
    }


def slice_metrics(frame: Any, y_true: Any, proba: Any, columns: list[str], bins: int = 10) -> dict[str, Any]:
    """Metrics per value of each slice column (missing values form their own slice)."""
    import numpy as np

    y = np.asarray(y_true, dtype=int)
    p = np.asarray(proba, dtype=float)
    out: dict[str, Any] = {}
    for col in columns:
        if col not in frame.columns:
            continue
        values = _values(frame, col)
        per: dict[str, Any] = {}
        for value in sorted(set(values)):
            mask = values == value
            m = classification_metrics(y[mask], p[mask], bins)
            per[value] = {k: m[k] for k in SLICE_KEYS}
        out[col] = per
    return out


def evaluated_slices(cfg: Any, X: Any, y_true: Any, proba: Any, seed: int) -> dict[str, Any]:
    """Per-slice metrics with bootstrap intervals, plus the intersections config/model-card.json asks for.

    An intersection of two slice columns is reported as the column `a x b` with values `va & vb`: only cells
    with at least /factors/min_slice_rows test rows, the largest /factors/max_intersection_cells of them.
    """
    import numpy as np

    bins, iterations = cfg.training.ece_bins, min(cfg.training.bootstrap_iterations, SLICE_ITERATIONS)
    factors = cfg.model_card.factors if cfg.model_card else None
    y, p = np.asarray(y_true, dtype=int), np.asarray(proba, dtype=float)
    out = slice_metrics(X, y, p, list(cfg.dataset.slices), bins)
    masks = {(c, v): _values(X, c) == v for c in out for v in out[c]}
    for a, b in factors.intersections if factors else ():
        if a not in X.columns or b not in X.columns:
            continue
        va, vb = _values(X, a), _values(X, b)
        cells = {(x, z): (va == x) & (vb == z) for x in sorted(set(va)) for z in sorted(set(vb))}
        kept = sorted((c for c in cells.items() if c[1].sum() >= factors.min_slice_rows), key=lambda c: -c[1].sum())
        column = f"{a} x {b}"
        out[column] = {}
        for (x, z), mask in sorted(kept[: factors.max_intersection_cells]):
            m = classification_metrics(y[mask], p[mask], bins)
            out[column][f"{x} & {z}"] = {k: m[k] for k in SLICE_KEYS}
            masks[(column, f"{x} & {z}")] = mask
    for (column, value), mask in masks.items():
        intervals = bootstrap_intervals(y[mask], p[mask], iterations=iterations, seed=seed, bins=bins)
        out[column][value]["intervals"] = {k: v for k, v in intervals.items() if k in SLICE_KEYS}
    return out


def _values(frame: Any, column: str) -> Any:
    return frame[column].astype(object).where(frame[column].notna(), "(missing)").astype(str).to_numpy()


def curves(y_true: Any, proba: Any, points: int = 101) -> dict[str, Any]:
    """Compact ROC curve (tpr at `points` evenly spaced fpr values) and the confusion counts."""
    import numpy as np
    from sklearn.metrics import roc_curve

    y = np.asarray(y_true, dtype=int)
    p = np.asarray(proba, dtype=float)
    tp, fp, fn, tn = _counts(y, (p >= THRESHOLD).astype(int))
    out: dict[str, Any] = {"confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "threshold": THRESHOLD}}
    if 0 < y.sum() < len(y):
        fpr, tpr, _ = roc_curve(y, p)
        grid = np.linspace(0.0, 1.0, points)
        out["roc"] = [
            [round(float(f), 6), round(float(t), 6)] for f, t in zip(grid, np.interp(grid, fpr, tpr), strict=True)
        ]
        out["pr"] = precision_recall(y, p, grid)
    return out


def precision_recall(y: Any, p: Any, grid: Any) -> list[list[float]]:
    """[recall, precision] at each recall of `grid`: the interpolated precision (the best at that recall or more)."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(y, p)
    best = [float(precision[recall >= g].max()) for g in grid]  # recall 0 is always on the curve
    return [[round(float(g), 6), round(b, 6)] for g, b in zip(grid, best, strict=True)]
