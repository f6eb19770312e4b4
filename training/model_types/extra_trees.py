from __future__ import annotations

from typing import Any

from training.features import preprocessor

NAME = "extra_trees"
DESCRIPTION = "Extremely randomised trees; bounded like the random forest"


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
