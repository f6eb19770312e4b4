"""A single-row scoring path without pandas for the pipelines training builds (issue 17).

The bundled pipelines are Pipeline([ColumnTransformer of (SimpleImputer -> [StandardScaler]) for
numeric and (SimpleImputer -> OneHotEncoder) for categorical columns, estimator]). For one row,
the ColumnTransformer's work on a pandas frame (column selection, name checks, hstack) is ~3 ms of
a logistic regression's 4 ms. `compile_pipeline` reads the fitted steps once and returns a function
that does the same arithmetic on numpy arrays, in the same order, and hands the estimator the same
float64 matrix; for anything else (another transformer, sparse output, infrequent categories, a
column all-missing in training) it returns None and the router keeps the pipeline. Scores are the
same bits as the pipeline's: tests/test_fastpath.py, for every bundled model type.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Compiled = Callable[[list[dict[str, Any]]], Any]  # rows -> predict_proba matrix


def compile_pipeline(pipeline: Any) -> Compiled | None:
    """A function of JSON rows (validated by mlops.serving.fast_frame's rules) to predict_proba, or None."""
    steps = getattr(pipeline, "steps", None)
    if not steps or len(steps) != 2:
        return None
    ct, estimator = steps[0][1], steps[1][1]
    if type(ct).__name__ != "ColumnTransformer" or ct.remainder != "drop" or not hasattr(estimator, "predict_proba"):
        return None
    blocks = []
    for _name, trans, columns in ct.transformers_:
        if isinstance(trans, str):
            if trans == "drop":
                continue
            return None
        block = _block(trans, list(columns))
        if block is None:
            return None
        blocks.append(block)
    if not blocks:
        return None

    def predict_proba(rows: list[dict[str, Any]]) -> Any:
        import numpy as np

        parts = [block(rows) for block in blocks]
        return estimator.predict_proba(parts[0] if len(parts) == 1 else np.hstack(parts))

    return predict_proba


def _block(trans: Any, columns: list[str]) -> Compiled | None:
    """One ColumnTransformer entry: a numeric (impute, scale) or a categorical (impute, one-hot) Pipeline."""
    import numpy as np

    steps = [s for _n, s in getattr(trans, "steps", [])]
    kinds = [type(s).__name__ for s in steps]
    if kinds in (["SimpleImputer"], ["SimpleImputer", "StandardScaler"]):
        imputer = steps[0]
        if not _plain_imputer(imputer) or np.isnan(np.asarray(imputer.statistics_, dtype=float)).any():
            return None
        fill = np.asarray(imputer.statistics_, dtype=float)
        scaler = steps[1] if len(steps) == 2 else None

        def numeric(rows: list[dict[str, Any]]) -> Any:
            X = np.array([[math.nan if r[c] is None else float(r[c]) for c in columns] for r in rows], dtype=float)
            mask = np.isnan(X)
            if mask.any():
                X[mask] = np.broadcast_to(fill, X.shape)[mask]
            if scaler is not None:
                if scaler.with_mean:
                    X -= scaler.mean_
                if scaler.with_std:
                    X /= scaler.scale_
            return X

        return numeric
    if kinds == ["SimpleImputer", "OneHotEncoder"]:
        imputer, encoder = steps
        if not _plain_imputer(imputer) or imputer.strategy != "constant" or not _plain_encoder(encoder):
            return None
        lookup = [{cat: i for i, cat in enumerate(cats)} for cats in encoder.categories_]
        offsets = np.cumsum([0] + [len(c) for c in encoder.categories_])
        fill_value = imputer.fill_value

        def categorical(rows: list[dict[str, Any]]) -> Any:
            X = np.zeros((len(rows), int(offsets[-1])), dtype=encoder.dtype)
            for i, r in enumerate(rows):
                for j, c in enumerate(columns):
                    value = r[c]
                    # SimpleImputer on an object column masks NaN only (value != value); None passes as it is.
                    if isinstance(value, float) and value != value:
                        value = fill_value
                    k = lookup[j].get(value)
                    if k is not None:  # an unknown category is all zeros (handle_unknown="ignore")
                        X[i, offsets[j] + k] = 1
            return X

        return categorical
    return None


def _plain_imputer(imputer: Any) -> bool:
    missing = imputer.missing_values
    return (
        getattr(imputer, "indicator_", None) is None
        and isinstance(missing, float)
        and math.isnan(missing)
        and not getattr(imputer, "keep_empty_features", False)
    )


def _plain_encoder(encoder: Any) -> bool:
    return (
        encoder.handle_unknown == "ignore"
        and encoder.drop is None
        and not getattr(encoder, "sparse_output", True)
        and not getattr(encoder, "_infrequent_enabled", False)
        and all(cat is None or isinstance(cat, str) for cats in encoder.categories_ for cat in cats)
    )
