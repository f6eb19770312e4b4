"""Feature preparation shared by the model types. It lives inside each sklearn Pipeline, so it is
fitted on the training split only and travels with the model file."""

from __future__ import annotations

from typing import Any


def preprocessor(numeric: list[str], categorical: list[str], *, scale: bool) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    num_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if scale:
        num_steps.append(("scale", StandardScaler()))
    cat_steps = [
        ("impute", SimpleImputer(strategy="constant", fill_value="(missing)")),
        # Unknown categories at serving time become all-zero rows instead of errors.
        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
    ]
    transformers = []
    if numeric:
        transformers.append(("num", Pipeline(num_steps), list(numeric)))
    if categorical:
        transformers.append(("cat", Pipeline(cat_steps), list(categorical)))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
