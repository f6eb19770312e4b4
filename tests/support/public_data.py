"""A real public data set shipped inside a PyPI package, written as a local CSV the `local` source reads.

Fair (1978), "A Theory of Extramarital Affairs", Journal of Political Economy 86(1): 45-61: 6,366 survey
answers, bundled in the statsmodels wheel (`statsmodels.datasets.fair`, "included with permission of the
author"; statsmodels is a development dependency, so no network is needed). The binary target is
`had_affair` (`affairs > 0`, 32 % positive); `affairs` itself is dropped because it is the target's source.
`occupation` and `religious` become named categories so they can be slice columns (config/examples/
dataset.fair.json). Usage:

    from tests.support.public_data import configure_fair
    configure_fair(repo)  # datasets/local/fair.csv, config/dataset.json and config/model-card.json from
                          # config/examples/*.fair.json, datasets/fair-affairs.schema.json, and OVERRIDES
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.repo import ROOT

CSV = "datasets/local/fair.csv"
LABEL = "had_affair"
ROWS = 6366
# Codes from statsmodels.datasets.fair.NOTE.
OCCUPATION = {1: "student", 2: "unskilled", 3: "white_collar", 4: "skilled", 5: "managerial", 6: "professional"}
RELIGIOUS = {1: "not", 2: "mildly", 3: "fairly", 4: "strongly"}
EXAMPLES = ROOT / "config" / "examples"
# The survey's answers are coded (ages in 5-year steps, yes/no children counts), so 18.5 % of its rows
# repeat an earlier row exactly while being different respondents; it has 6,366 rows, not 10,000; and
# 68 % of its answers are "no affair", so the shipped accuracy floor of 0.85 would refuse every model.
OVERRIDES = {
    "training-schedule": {"datasets": {"minimum_samples": 5000}, "performance_thresholds": {"accuracy_min": 0.69}},
    "validation": {"duplicates": {"max_share": 0.25}},
}


def fair_frame():
    """The fair data set as the project reads it: named categories, a 0/1 label, no `affairs` column."""
    from statsmodels.datasets import fair

    df = fair.load_pandas().data.copy()
    df[LABEL] = (df.pop("affairs") > 0).astype("int64")
    df["occupation"] = df["occupation"].astype(int).map(OCCUPATION)
    df["religious"] = df["religious"].astype(int).map(RELIGIOUS)
    assert len(df) == ROWS and not df.isna().any().any()
    return df


def write_fair_csv(path: Path) -> Path:
    """Write the fair data set to `path` (CSV, parent folders created); the same bytes on every call."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fair_frame().to_csv(path, index=False, lineterminator="\n")
    return path


def configure_fair(repo: Path) -> Path:
    """Point a temp repo (tests/support/repo.make_repo) at the fair data set: CSV, dataset and card config."""
    repo = Path(repo)
    write_fair_csv(repo / CSV)
    for name in ("dataset", "model-card"):
        doc = json.loads((EXAMPLES / f"{name}.fair.json").read_text())
        doc.pop("$schema", None)
        (repo / "config" / f"{name}.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    for name, patch in OVERRIDES.items():
        path = repo / "config" / f"{name}.json"
        doc = json.loads(path.read_text())
        for key, values in patch.items():
            doc.setdefault(key, {}).update(values)
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    contract = ROOT / "datasets" / "fair-affairs.schema.json"
    (repo / "datasets" / contract.name).write_bytes(contract.read_bytes())
    return repo / CSV


def trained_fair(tmp: Path, types: str = "logistic_regression,hist_gradient_boosting") -> dict:
    """A git repo trained once on the fair data set (for tests.support.trained.shared); ~6 s."""
    from tests.support.repo import make_repo
    from tests.support.trained import train

    repo = make_repo(tmp, git=True, training={"bootstrap_iterations": 50})
    configure_fair(repo)
    manifest = train(repo, types=types)
    versions = sorted(p.stem for p in (repo / "metadata/cards").glob("*.json"))
    return {"repo": repo, "champion": manifest["version"], "versions": versions}
