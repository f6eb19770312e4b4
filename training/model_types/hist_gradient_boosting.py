from __future__ import annotations

from typing import Any

from training.features import preprocessor

NAME = "hist_gradient_boosting"
DESCRIPTION = "Histogram gradient boosting with early stopping on an internal validation fraction"

# What `mlops train --hpo` searches (docs/training.md): parameters of the "model" step, Optuna-style.
SEARCH_SPACE = {
    "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
    "max_leaf_nodes": {"type": "int", "low": 8, "high": 64, "log": True},
    "min_samples_leaf": {"type": "int", "low": 5, "high": 100, "log": True},
    "l2_regularization": {"type": "float", "low": 1e-6, "high": 1.0, "log": True},
}


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
