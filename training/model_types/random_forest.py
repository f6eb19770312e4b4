from __future__ import annotations

from typing import Any

from training.features import preprocessor

NAME = "random_forest"
DESCRIPTION = "Random forest; depth and leaf size bounded so the committed model file stays small"


def build(numeric: list[str], categorical: list[str], seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    return Pipeline(
        [
            ("prepare", preprocessor(numeric, categorical, scale=False)),
            (
                "model",
                RandomForestClassifier(
                    n_estimators=100, max_depth=12, min_samples_leaf=10, n_jobs=-1, random_state=seed
                ),
            ),
        ]
    )
