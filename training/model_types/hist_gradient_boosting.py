from __future__ import annotations

from typing import Any

from training.features import preprocessor

NAME = "hist_gradient_boosting"
DESCRIPTION = "Histogram gradient boosting with early stopping on an internal validation fraction"


def build(numeric: list[str], categorical: list[str], seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    return Pipeline(
        [
            ("prepare", preprocessor(numeric, categorical, scale=False)),
            (
                "model",
                HistGradientBoostingClassifier(
                    learning_rate=0.08, max_iter=300, early_stopping=True, validation_fraction=0.1, random_state=seed
                ),
            ),
        ]
    )
