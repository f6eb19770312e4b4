from __future__ import annotations

from typing import Any

from training.features import preprocessor

NAME = "extra_trees"
DESCRIPTION = "Extremely randomised trees; bounded like the random forest"

# What `mlops train --hpo` searches (docs/training.md): parameters of the "model" step, Optuna-style.
SEARCH_SPACE = {
    "n_estimators": {"type": "int", "low": 50, "high": 200, "step": 25},
    "max_depth": {"type": "int", "low": 4, "high": 16},
    "min_samples_leaf": {"type": "int", "low": 2, "high": 40, "log": True},
    "max_features": {"type": "categorical", "choices": ["sqrt", "log2", 0.5]},
}


def build(numeric: list[str], categorical: list[str], seed: int) -> Any:
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.pipeline import Pipeline

    return Pipeline(
        [
            ("prepare", preprocessor(numeric, categorical, scale=False)),
            (
                "model",
                ExtraTreesClassifier(n_estimators=100, max_depth=14, min_samples_leaf=10, n_jobs=-1, random_state=seed),
            ),
        ]
    )
