"""The drift engine: Evidently 0.7's per-column defaults, computed on sorted numpy arrays.

Evidently 0.7.23 (legacy/calculations/stattests/registry.py::_get_default_stattest) picks, per
column, after dropping NaN and +-inf from both sides:

* reference with > 1,000 rows: numeric with <= 5 distinct values over reference + current, and
  every categorical column -> Jensen-Shannon distance (natural log, value-count "bins", no zero
  filling); other numeric -> Wasserstein distance / max(std(reference, ddof=0), 0.001).
  Both drift when the value is >= the threshold (0.1).
* reference with <= 1,000 rows: numeric with > 5 distinct values -> two-sample KS p-value (drift
  when p <= 0.05); otherwise chi-square p-value (> 2 distinct) or the two-proportion z-test
  (<= 2 distinct), drift when p < 0.05.

PSI (Evidently's `psi` test: Sturges bins over the combined numeric data when the reference has
> 20 distinct values, value counts otherwise, zero cells filled) is reported alongside.

Why not call Evidently: it computes each column three times and builds plots; here each column is
sorted once and every statistic is read off the sorted arrays (see docs/monitoring.md).

The reference side of a column is a `RefColumn`: raw sorted values, exact value counts, or a
quantile sketch from the stored reference profile (mlops.profile). The current side is raw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

NUMERIC = "numeric"
CATEGORICAL = "categorical"
# Evidently's switch between p-value tests and distances, and its "few distinct values" rules.
SMALL_REFERENCE = 1000
FEW_VALUES = 5
PSI_VALUE_BINS = 20
# Exact reference counts for numeric columns with at most this many distinct values.
EXACT_MAX_UNIQUE = 1001
# Evidently's per-column thresholds. Monitoring passes its own (config/monitoring.json); the data
# validation's shift check passes its distance and keeps Evidently's p-value threshold.
DISTANCE_THRESHOLD = 0.1
P_VALUE_THRESHOLD = 0.05


@dataclass
class RefColumn:
    """One reference column: raw sorted values, exact value counts, or a quantile sketch."""

    name: str
    kind: str
    n: int
    missing: int = 0
    mean: float | None = None
    std: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    sorted_values: Any = None  # raw: finite, sorted float64
    values: Any = None  # exact: distinct values (sorted for numeric)
    counts: Any = None  # exact: their counts
    levels: Any = None  # sketch: quantile levels in [0, 1]
    quantiles: Any = None  # sketch: quantiles at those levels

    @property
    def representation(self) -> str:
        if self.sorted_values is not None:
            return "raw"
        if self.quantiles is not None:
            return "sketch"
        return "exact"

    def distinct(self, limit: int) -> list | None:
        """The distinct values if there are at most `limit`, else None."""
        if self.kind == CATEGORICAL or self.representation == "exact":
            return list(self.values) if len(self.values) <= limit else None
        if self.representation == "sketch":
            return None  # a sketch is only stored for columns with > EXACT_MAX_UNIQUE values
        return _distinct_sorted(self.sorted_values, limit)

    def value_counts(self, keys: list) -> Any:
        """Counts of `keys` in the reference (numeric keys must be among its values or absent)."""
        import numpy as np

        if self.representation == "raw":
            return _counts_sorted(self.sorted_values, keys)
        lookup = dict(zip(_py(self.values), _py(self.counts), strict=True))
        return np.array([lookup.get(_pykey(k), 0) for k in keys], dtype=float)

    def expanded(self) -> Any:
        """Sorted raw values (exact counts expanded); only for raw and exact numeric columns."""
        import numpy as np

        if self.representation == "raw":
            return self.sorted_values
        if self.representation == "exact":
            return np.repeat(np.asarray(self.values, dtype=float), np.asarray(self.counts, dtype=np.int64))
        raise ValueError("a quantile sketch has no raw values")


@dataclass
class ColumnDrift:
    column: str
    kind: str
    method: str
    score: float
    threshold: float
    drifted: bool
    psi: float | None
    n_reference: int
    n_current: int
    missing_current: int
    reference_mean: float | None = None
    current_mean: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: _finite(v) for k, v in self.__dict__.items()}


@dataclass
class DriftResult:
    """Every column's drift and the share of drifted columns; whether that share is an alarm is the caller's rule."""

    columns: list[ColumnDrift]
    share: float
    drifted: list[str] = field(default_factory=list)

    def dataset_drift(self, share_threshold: float) -> bool:
        """Evidently's dataset drift rule: the share of drifted columns >= the threshold."""
        return bool(self.columns) and self.share >= share_threshold


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _py(values: Any) -> list:
    return [v.item() if hasattr(v, "item") else v for v in values]


def _pykey(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


# ---------------------------------------------------------------------------- sorted-array helpers


def finite_sorted(values: Any) -> Any:
    """Sort once and slice away NaN and +-inf (Evidently drops them before every test)."""
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    if not _sorted_nan_last(arr):
        arr = np.sort(arr)
    # np.sort puts -inf first and NaN last, with +inf just before the NaNs; searchsorted agrees.
    lo = int(np.searchsorted(arr, -np.inf, side="right"))
    hi = int(np.searchsorted(arr, np.inf, side="left"))
    return arr[lo:hi]


def _sorted_nan_last(arr: Any) -> bool:
    """True when arr is already in np.sort's order (ascending, NaN at the end): no need to sort again."""
    import numpy as np

    if arr.ndim != 1:
        return False
    m = len(arr) - int(np.count_nonzero(np.isnan(arr)))
    if m < len(arr) and np.isnan(arr[:m]).any():
        return False
    return bool(np.all(arr[1:m] >= arr[: m - 1])) if m > 1 else True


def _distinct_sorted(s: Any, limit: int) -> list | None:
    """Distinct values of a sorted array by jumping over runs: O(limit * log n), None if > limit."""
    import numpy as np

    out: list = []
    i, n = 0, len(s)
    while i < n:
        if len(out) == limit:
            return None
        value = s[i]
        out.append(float(value))
        i = int(np.searchsorted(s, value, side="right"))
    return out


def _counts_sorted(s: Any, keys: list) -> Any:
    import numpy as np

    k = np.asarray(keys, dtype=np.float64)
    return (np.searchsorted(s, k, side="right") - np.searchsorted(s, k, side="left")).astype(float)


def wasserstein_sorted(a: Any, b: Any) -> float:
    """First Wasserstein distance of two sorted samples, as scipy.stats.wasserstein_distance."""
    import numpy as np

    n, m = len(a), len(b)
    if n == m:
        # Equal sizes: the quantile coupling pairs order statistics one to one.
        return float(np.mean(np.abs(a - b)))
    lcm = n // math.gcd(n, m) * m
    if lcm <= 4 * (n + m):
        # Q_a and Q_b are both constant on the intervals [k/lcm, (k+1)/lcm): compare them there.
        return float(np.mean(np.abs(np.repeat(a, lcm // n) - np.repeat(b, lcm // m))))
    # General case: integrate |F_a - F_b| over the merged breakpoints. The merge position of each
    # b value is found by binary search in a (ties after a: the integrand is 0 there anyway).
    pos = np.searchsorted(a, b, side="right") + np.arange(m)
    merged = np.empty(n + m)
    is_a = np.ones(n + m, dtype=bool)
    is_a[pos] = False
    merged[pos] = b
    merged[is_a] = a
    cdf_a = np.cumsum(is_a, dtype=np.int64)[:-1]
    cdf_b = np.arange(1, n + m, dtype=np.int64) - cdf_a
    # |F_a - F_b| * n * m in exact integers, then one dot product with the gaps.
    return float(np.dot(np.abs(cdf_a * m - cdf_b * n).astype(np.float64), np.diff(merged)) / (n * m))


def wasserstein_sketch(levels: Any, quantiles: Any, b: Any) -> float:
    """W1 between a piecewise-linear quantile function (levels, quantiles) and a sorted sample."""
    import numpy as np

    m = len(b)
    # np.union1d of two sorted arrays; a stable (merge) sort of the two runs instead of a full sort.
    merged = np.sort(np.concatenate((np.asarray(levels, dtype=float), np.arange(m + 1) / m)), kind="stable")
    grid = merged[np.concatenate(([True], merged[1:] != merged[:-1]))]
    du = np.diff(grid)
    mid = (grid[:-1] + grid[1:]) / 2
    cur = b[np.minimum((mid * m).astype(np.int64), m - 1)]
    q = np.interp(grid, levels, quantiles)
    d0 = q[:-1] - cur
    d1 = q[1:] - cur
    same = d0 * d1 >= 0
    total = np.abs(d0) + np.abs(d1)
    # Where the linear piece crosses the step, the |.| integral is two triangles.
    with np.errstate(invalid="ignore", divide="ignore"):
        crossed = np.where(total > 0, (d0 * d0 + d1 * d1) / (2 * total), 0.0)
    area = np.where(same, total / 2, crossed) * du
    return float(area.sum())


def _sketch_cdf(ref: RefColumn, x: Any) -> Any:
    import numpy as np

    return np.interp(x, ref.quantiles, ref.levels, left=0.0, right=1.0)


# ---------------------------------------------------------------------------- statistics


def jensenshannon(p: Any, q: Any) -> float:
    """scipy.spatial.distance.jensenshannon with the natural log, as Evidently calls it."""
    from scipy.spatial import distance

    return float(distance.jensenshannon(p, q))


def _fill_zeroes(p: Any) -> Any:
    import numpy as np

    p = np.array(p, dtype=float)
    nonzero = p[p != 0]
    if len(nonzero) == 0:
        return p
    low = nonzero.min()
    np.place(p, p == 0, low / 10**6 if low <= 0.0001 else 0.0001)
    return p


def psi(p: Any, q: Any) -> float:
    """Evidently's PSI of two binned distributions (zero cells filled as it does)."""
    import numpy as np

    p, q = _fill_zeroes(p), _fill_zeroes(q)
    return float(np.sum((p - q) * np.log(p / q)))


def sturges_edges(lo: float, hi: float, size: int) -> Any:
    """np.histogram_bin_edges(x, 'sturges') knowing only min, max and size of x."""
    import numpy as np

    first, last = float(lo), float(hi)
    if first == last:
        first, last = first - 0.5, last + 0.5
    width = (hi - lo) / (np.log2(size) + 1.0)
    bins = int(np.ceil((last - first) / width)) if width else 1
    return np.linspace(first, last, bins + 1, endpoint=True)


def _hist_sorted(s: Any, edges: Any) -> Any:
    import numpy as np

    # np.histogram's bins are [e_i, e_i+1) with the last one closed: the same as these searches.
    cum = np.concatenate((np.searchsorted(s, edges[:-1], side="left"), np.searchsorted(s, edges[-1:], side="right")))
    return np.diff(cum).astype(float)


def _ref_hist(ref: RefColumn, edges: Any) -> Any:
    import numpy as np

    if ref.representation == "sketch":
        return np.diff(_sketch_cdf(ref, edges)) * ref.n
    return _hist_sorted(ref.expanded(), edges)


def _z_test(ref_counts: Any, cur_counts: Any) -> float:
    """Evidently's two-proportion z-test p-value on the first (sorted) key's share."""
    import numpy as np
    from scipy.stats import norm

    n1, n2 = ref_counts.sum(), cur_counts.sum()
    if np.count_nonzero(ref_counts) == 1 and np.count_nonzero(cur_counts) == 1 and len(ref_counts) == 1:
        return 1.0
    p1 = (n1 - ref_counts[0]) / n1
    p2 = (n2 - cur_counts[0]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - norm.cdf(np.abs(z))))


def _chi_square(ref_counts: Any, cur_counts: Any) -> float:
    from scipy.stats import chisquare

    f_exp = ref_counts * (cur_counts.sum() / ref_counts.sum())
    return float(chisquare(cur_counts, f_exp)[1])


# ---------------------------------------------------------------------------- references


def categorical_counts(values: Any) -> tuple[list, Any, int]:
    """(distinct non-null values, their counts, number missing) of a categorical column.

    A pyarrow string (Chunked)Array is counted by pyarrow.compute.value_counts, which lists values
    in order of first appearance as pandas's value_counts(sort=False) does: the same keys, counts
    and order as for the object Series of its values, without a Python-level hash of every cell."""
    if _is_arrow_text(values):
        import pyarrow.compute as pc

        counted = pc.value_counts(values)
        keys, counts = counted.field("values"), counted.field("counts")
        if keys.null_count:
            valid = pc.is_valid(keys)
            keys, counts = keys.filter(valid), counts.filter(valid)
        out = counts.to_numpy(zero_copy_only=False).astype(float)
        return keys.to_pylist(), out, int(len(values) - out.sum()) if len(values) else 0
    import pandas as pd

    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    counts = series.value_counts(dropna=True, sort=False)
    keys = [_pykey(k) for k in counts.index]
    return keys, counts.to_numpy(dtype=float), int(len(series) - counts.sum()) if len(series) else 0


def _is_arrow_text(values: Any) -> bool:
    import sys

    if "pyarrow" not in sys.modules:
        return False
    import pyarrow as pa

    return isinstance(values, (pa.Array, pa.ChunkedArray)) and (
        pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
    )


# ---------------------------------------------------------------------------- per-column drift


def numeric_drift(
    ref: RefColumn, current: Any, distance: float = DISTANCE_THRESHOLD, p_value: float = P_VALUE_THRESHOLD
) -> ColumnDrift:
    """Drift of one numeric column with Evidently's default test for it."""
    import numpy as np

    raw = np.asarray(current, dtype=np.float64)
    b = finite_sorted(raw)
    m = len(b)
    base = dict(
        column=ref.name, kind=NUMERIC, n_reference=ref.n, n_current=m, missing_current=len(raw) - m,
        reference_mean=ref.mean, current_mean=float(np.mean(b)) if m else None,
    )  # fmt: skip
    if m == 0 or ref.n == 0:
        return _all_missing(base, distance)
    ref_distinct = ref.distinct(FEW_VALUES)
    union: list | None = None
    if ref_distinct is not None:
        cur_distinct = _distinct_sorted(b, FEW_VALUES)
        if cur_distinct is not None:
            union = sorted(set(ref_distinct) | set(cur_distinct))
            if len(union) > FEW_VALUES:
                union = None
    value_psi = _numeric_psi(ref, b)
    if ref.n <= SMALL_REFERENCE:
        a = ref.expanded()
        if union is None:
            from scipy.stats import ks_2samp

            p = float(ks_2samp(a, b)[1])
            return ColumnDrift(**base, method="ks", score=p, threshold=p_value,
                               drifted=p <= p_value, psi=value_psi)  # fmt: skip
        rc, cc = _counts_sorted(a, union), _counts_sorted(b, union)
        method = "chisquare" if len(union) > 2 else "z"
        p = _chi_square(rc, cc) if method == "chisquare" else _z_test(rc, cc)
        return ColumnDrift(**base, method=method, score=p, threshold=p_value,
                           drifted=p < p_value, psi=value_psi)  # fmt: skip
    if union is not None:
        score = jensenshannon(ref.value_counts(union) / ref.n, _counts_sorted(b, union) / m)
        method = "jensenshannon"
    else:
        if ref.representation == "sketch":
            w1 = wasserstein_sketch(ref.levels, ref.quantiles, b)
        else:
            w1 = wasserstein_sorted(ref.expanded(), b)
        score = w1 / max(float(ref.std), 0.001)
        method = "wasserstein"
    return ColumnDrift(**base, method=method, score=score, threshold=distance,
                       drifted=score >= distance, psi=value_psi)  # fmt: skip


def _numeric_psi(ref: RefColumn, b: Any) -> float:
    import numpy as np

    n, m = ref.n, len(b)
    distinct = ref.distinct(PSI_VALUE_BINS)
    if distinct is None:
        edges = sturges_edges(min(ref.minimum, b[0]), max(ref.maximum, b[-1]), n + m)
        return psi(_ref_hist(ref, edges) / n, _hist_sorted(b, edges) / m)
    cur = b[np.concatenate(([True], b[1:] != b[:-1]))].tolist()
    keys = sorted(set(distinct) | set(cur))
    return psi(ref.value_counts(keys) / n, _counts_sorted(b, keys) / m)


def categorical_drift(
    ref: RefColumn, current: Any, distance: float = DISTANCE_THRESHOLD, p_value: float = P_VALUE_THRESHOLD
) -> ColumnDrift:
    """Drift of one categorical column (Jensen-Shannon, or chi-square/z for small references)."""
    import numpy as np

    keys, counts, missing = categorical_counts(current)
    m = int(counts.sum())
    base = dict(column=ref.name, kind=CATEGORICAL, n_reference=ref.n, n_current=m, missing_current=missing)
    if m == 0 or ref.n == 0:
        return _all_missing(base, distance)
    union = list(dict.fromkeys([*_py(ref.values), *keys]))
    cur_lookup = dict(zip(keys, counts, strict=True))
    rc = ref.value_counts(union)
    cc = np.array([cur_lookup.get(k, 0.0) for k in union], dtype=float)
    value_psi = psi(rc / ref.n, cc / m)
    if ref.n <= SMALL_REFERENCE:
        method = "chisquare" if len(union) > 2 else "z"
        if method == "z":
            order = sorted(range(len(union)), key=lambda i: str(union[i]))
            rc, cc = rc[order], cc[order]
        p = _chi_square(rc, cc) if method == "chisquare" else _z_test(rc, cc)
        return ColumnDrift(**base, method=method, score=p, threshold=p_value,
                           drifted=p < p_value, psi=value_psi)  # fmt: skip
    score = jensenshannon(rc / ref.n, cc / m)
    return ColumnDrift(**base, method="jensenshannon", score=score, threshold=distance,
                       drifted=score >= distance, psi=value_psi)  # fmt: skip


def _all_missing(base: dict, distance: float) -> ColumnDrift:
    # A column with no usable values on one side cannot be compared; in production that is itself
    # a change worth flagging, so it counts as drifted (Evidently would raise instead).
    return ColumnDrift(**base, method="all-missing", score=1.0, threshold=distance,
                       drifted=True, psi=None)  # fmt: skip


def column_drift(
    ref: RefColumn, current: Any, distance: float = DISTANCE_THRESHOLD, p_value: float = P_VALUE_THRESHOLD
) -> ColumnDrift:
    """Drift of one column, dispatched on its kind."""
    if ref.kind == NUMERIC:
        return numeric_drift(ref, current, distance, p_value)
    return categorical_drift(ref, current, distance, p_value)


def compare(
    reference: dict[str, RefColumn],
    current: Any,
    distance: float = DISTANCE_THRESHOLD,
    p_value: float = P_VALUE_THRESHOLD,
) -> DriftResult:
    """Per-column drift of every reference column present in `current` (a DataFrame)."""
    results = []
    for name, ref in reference.items():
        col = current[name]
        values = as_float(col) if ref.kind == NUMERIC else col
        results.append(column_drift(ref, values, distance, p_value))
    drifted = [c.column for c in results if c.drifted]
    share = len(drifted) / len(results) if results else 0.0
    return DriftResult(columns=results, share=share, drifted=drifted)


def importance_weighted(result: DriftResult, importance: dict[str, float]) -> float | None:
    """Share of drifted features weighted by permutation importance (negatives count as 0)."""
    weights = {c.column: max(float(importance.get(c.column, 0.0)), 0.0) for c in result.columns}
    total = sum(weights.values())
    if total <= 0:
        return None
    return sum(weights[c.column] for c in result.columns if c.drifted) / total


def as_float(column: Any) -> Any:
    """A float64 view of a numeric Series (no copy when it already is float64)."""
    import numpy as np

    if column.dtype == np.float64:
        return column.to_numpy()
    return column.to_numpy(dtype=float, na_value=float("nan"))
