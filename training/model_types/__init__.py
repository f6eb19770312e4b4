"""One module per model type. To add a type, copy a module, rename it, change `build`.

Each module defines NAME (the id used by `mlops train --model-types` and in version ids),
DESCRIPTION, and build(numeric, categorical, seed) -> an unfitted sklearn Pipeline that takes
the raw feature DataFrame and has predict_proba. SEARCH_SPACE, beside build, is what
`mlops train --hpo` tunes: {parameter of the pipeline's "model" step: {"type": "float"|"int", "low", "high",
"log"?, "step"?} or {"type": "categorical", "choices": [...]}} (docs/training.md, "Tuning").
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def available() -> dict[str, ModuleType]:
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "build") and hasattr(module, "NAME"):
            found[module.NAME] = module
    return dict(sorted(found.items()))
