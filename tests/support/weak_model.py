"""A deliberately weak model type, copied into training/model_types by one test only."""

from __future__ import annotations

from typing import Any

NAME = "zz_weak_for_test"


def build(numeric: list[str], categorical: list[str], seed: int) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    # Uses one noise feature only: far worse than any real model on the synthetic data.
    prep = ColumnTransformer([("one", SimpleImputer(), ["noise_normal"])])
    return Pipeline([("prepare", prep), ("model", LogisticRegression(random_state=seed))])
