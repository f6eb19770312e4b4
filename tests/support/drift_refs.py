"""Raw reference columns built from data frames, for testing the drift engine against Evidently.

Production compares against the stored reference profile (mlops.profile.references); these
helpers build the raw, exact side that the profile approximates.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlops import drift


def numeric_reference(name: str, values: Any) -> drift.RefColumn:
    """A raw reference column from numeric values (NaN/inf dropped, sorted once)."""
    arr = np.asarray(values, dtype=np.float64)
    s = drift.finite_sorted(arr)
    n = len(s)
    return drift.RefColumn(
        name=name, kind=drift.NUMERIC, n=n, missing=len(arr) - n, sorted_values=s,
        mean=float(np.mean(s)) if n else None, std=float(np.std(s)) if n else None,
        minimum=float(s[0]) if n else None, maximum=float(s[-1]) if n else None,
    )  # fmt: skip


def categorical_reference(name: str, values: Any) -> drift.RefColumn:
    """A reference column of categories with exact counts."""
    keys, counts, missing = drift.categorical_counts(values)
    return drift.RefColumn(
        name=name, kind=drift.CATEGORICAL, n=int(counts.sum()), missing=missing, values=keys, counts=counts
    )


def reference_from_frame(frame: Any, numeric: list[str], categorical: list[str]) -> dict[str, drift.RefColumn]:
    """Raw reference columns from a DataFrame."""
    refs = {c: numeric_reference(c, frame[c].to_numpy(dtype=float, na_value=float("nan"))) for c in numeric}
    refs.update({c: categorical_reference(c, frame[c]) for c in categorical})
    return refs


def by_column(result: drift.DriftResult) -> dict[str, drift.ColumnDrift]:
    return {c.column: c for c in result.columns}
