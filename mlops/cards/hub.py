"""The Hugging Face model card metadata of a card, and the YAML front matter the Markdown starts with.

Hub rules (huggingface.co/docs/hub/model-cards): `license` is a Hub licence id (lower-case SPDX) or `other`
with `license_name`; `library_name` and `pipeline_tag` say how to run the model; the model-index lists
every reported test metric (ECE and Brier included) against the data set by name: `dataset.type` is a Hub
data set id only when config/model-card.json names one (/hub_dataset), the project's data set name otherwise.
"""

from __future__ import annotations

from typing import Any

PIPELINE_TAG = "tabular-classification"
LIBRARY = "sklearn"
NOT_IN_INDEX = frozenset({"n"})  # a row count, not a metric


def hf_metadata(card: dict[str, Any], metrics: dict[str, Any], hub_dataset: str | None) -> dict[str, Any]:
    """The metadata block; `metrics` are the test metrics in the card's order."""
    md = card["model_details"]
    ds = card["lineage"]["dataset"]
    name = md.get("dataset_name") or md["name"]
    dataset = {"type": hub_dataset or name, "name": name, "split": "test"}
    if ds.get("sha256"):
        dataset["revision"] = ds["sha256"]
    result = {
        "task": {"type": PIPELINE_TAG, "name": "Tabular Classification"},
        "dataset": dataset,
        "metrics": [
            {"type": key, "value": value, "name": f"test {key}"}
            for key, value in metrics.items()
            if key not in NOT_IN_INDEX and isinstance(value, (int, float)) and not isinstance(value, bool)
        ],
    }
    out: dict[str, Any] = {
        "library_name": LIBRARY,
        "pipeline_tag": PIPELINE_TAG,
        "tags": sorted(
            {PIPELINE_TAG, "sklearn", "skops", md["model_type"] or "model"}
            | ({"synthetic-data"} if ds.get("synthetic") else set())
        ),
        "model-index": [{"name": md["name"], "results": [result]}],
    }
    if md["licenses"]:
        out["license"] = md["licenses"][0]["identifier"].lower()
        if md.get("license_name"):
            out["license_name"] = md["license_name"]
    if hub_dataset:
        out["datasets"] = [hub_dataset]
    return out


def front_matter(metadata: dict[str, Any]) -> str:
    """`---`-fenced YAML, sorted keys, the same bytes for the same metadata (huggingface_hub.metadata_load reads it)."""
    import yaml

    body = yaml.safe_dump(metadata, sort_keys=True, allow_unicode=True, default_flow_style=False, width=1000)
    return f"---\n{body}---"
