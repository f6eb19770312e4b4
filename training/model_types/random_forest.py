from __future__ import annotations

from typing import Any

from training.features import preprocessor

NAME = "random_forest"
DESCRIPTION = "Random forest; depth and leaf size bounded so the committed model file stays small"

# What `mlops train --hpo` searches (docs/training.md): parameters of the "model" step, Optuna-style.
# Depth and leaf size stay bounded so the committed model file stays small.
SEARCH_SPACE = {
    "n_estimators": {"type": "int", "low": 50, "high": 200, "step": 25},
    "max_depth": {"type": "int", "low": 4, "high": 14},
    "min_samples_leaf": {"type": "int", "low": 2, "high": 40, "log": True},
    "max_features": {"type": "categorical", "choices": ["sqrt", "log2", 0.5]},
}


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
