"""What a reviewer needs beyond the metrics: hyper-parameters, permutation importance, how to load the model,
a citation and an overview that says what the model does (issue 16).

`read_records` reads them from the version's folder (the verified skops file, the reference profile when the
version was promoted); `add_details` puts them into the card, a pure step like the rest of `assemble`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops.config import ModelCardConfig
from mlops.repo import Repo


def _plain(value: Any) -> Any:
    """A hyper-parameter value as JSON: numbers, strings, booleans and None as they are, anything else as repr."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else repr(value)
    return repr(value)


def non_default_params(estimator: Any) -> dict[str, Any]:
    """The estimator's parameters that differ from a fresh instance of its class (what a reviewer must know)."""
    params = estimator.get_params(deep=False)
    try:
        defaults = type(estimator)().get_params(deep=False)
    except TypeError:  # a class without a no-argument constructor: every parameter is shown
        defaults = {}
    return {k: _plain(v) for k, v in sorted(params.items()) if k not in defaults or repr(defaults[k]) != repr(v)}


def read_records(repo: Repo, folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Hyper-parameters from the model file (sha256-verified) and permutation importance from the reference profile."""
    from mlops import jsonio, registry

    out: dict[str, Any] = {"hyperparameters": None, "importance": None}
    try:
        pipeline, _ = registry.load_model(folder, repo)
        estimator = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
        out["hyperparameters"] = {"estimator": type(estimator).__name__, "non_default": non_default_params(estimator)}
    except Exception as exc:  # noqa: BLE001 - the card says why instead of failing
        out["hyperparameters"] = {"error": f"{type(exc).__name__}: {str(exc)[:120]}"}
    profile = folder / registry.PROFILE
    if profile.is_file():
        out["importance"] = jsonio.read_json(profile, "reference profile").get("importance")
    return out


def overview(manifest: dict[str, Any], dataset_name: str | None) -> str:
    label = manifest.get("label") or {}
    feats = manifest.get("features") or {}
    gate = manifest.get("gate") or {}
    return (
        f"Scores how likely `{label.get('name')}` is {label.get('positive')!r} for one row of the "
        f"{dataset_name or 'configured'} data set ({len(feats.get('numeric') or [])} numeric and "
        f"{len(feats.get('categorical') or [])} categorical features); the score is a probability and the "
        f"prediction is positive at 0.5 or above. Promotion gate decision: {gate.get('decision') or 'unknown'}."
    )


def citation(card: dict[str, Any]) -> str:
    md = card["model_details"]
    date = md["version"]["date"] or ""
    key = card["version"].replace("-", "_")
    authors = " and ".join(o["name"] for o in md["owners"]) or "unknown"
    return (
        f"@misc{{{key},\n  title = {{{md['name']} {card['version']}}},\n  author = {{{authors}}},\n"
        f"  year = {{{date[:4]}}},\n  note = {{Model card metadata/cards/{card['version']}.md, "
        f"commit {card['lineage']['commit']}}}\n}}"
    )


def add_details(
    card: dict[str, Any], manifest: dict[str, Any], team: ModelCardConfig, dataset_name: str | None,
    records: dict[str, Any],
) -> None:  # fmt: skip
    md = card["model_details"]
    md["overview"] = overview(manifest, dataset_name)
    md["dataset_name"] = dataset_name
    md["license_name"] = team.license_name
    md["citation"] = citation(card)
    md["hyperparameters"] = records.get("hyperparameters")
    md["tuning"] = manifest.get("hpo")
    mlflow = manifest.get("mlflow") or {}
    md["how_to_load"] = {
        "skops_trusted_types": list(manifest.get("skops_trusted_types") or []),
        "model_sha256": manifest.get("model_sha256"),
        "mlflow_model_uri": f"models:/{md['name']}/{mlflow['model_version']}" if mlflow.get("model_version") else None,
    }
    card["quantitative_analysis"]["importance"] = records.get("importance")
    card["quantitative_analysis"]["min_slice_rows"] = team.factors.min_slice_rows
    card["considerations"]["conditional_recommendations"] = conditions(card, team)


_OPS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def conditions(card: dict[str, Any], team: ModelCardConfig) -> list[dict[str, Any]]:
    """Each conditional recommendation evaluated against this card's own test metric and gate thresholds."""
    test = {
        p["type"]: p["value"]
        for p in card["quantitative_analysis"]["performance_metrics"]
        if p["slice"] == "overall" and p["split"] == "test"
    }
    gate_thresholds = card["gate"].get("thresholds") or {}
    out = []
    for c in team.conditional_recommendations:
        threshold = gate_thresholds.get(c.threshold) if isinstance(c.threshold, str) else c.threshold
        value = test.get(c.metric)
        holds = None if value is None or threshold is None else bool(_OPS[c.op](value, threshold))
        named = c.threshold if isinstance(c.threshold, str) else None
        out.append({"text": c.text, "metric": c.metric, "op": c.op, "threshold": threshold,
                    "threshold_name": named, "value": value, "applies": holds})  # fmt: skip
    return out
