"""The card as a Model Card Toolkit document: MCT's JSON schema v0.0.2, nothing it has no slot for.

MCT (github.com/tensorflow/model-card-toolkit) wants strings for every metric value and interval bound,
`input_format` as a string with the per-column detail in `input_format_map`, a `schema_version`, and
graphics embedded as base64 PNG. The project's own card document (metadata/cards/<version>.json) keeps
everything else (gate, lineage, slices' sizes, reliability table); this export is rendered from it, like
the Markdown, and written to metadata/cards/<version>/mct.json.
"""

from __future__ import annotations

import base64
import re
from typing import Any

SCHEMA_VERSION = "0.0.2"
EXPORT_NAME = "mct.json"
_URL = re.compile(r"https?://\S+[^\s.,;)]")


def text(value: Any) -> str:
    """A card number as MCT's string: integers as they are, floats in their shortest exact form (repr)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return repr(value)
    return "" if value is None else str(value)


def mct_export(card: dict[str, Any], plots: dict[str, bytes]) -> dict[str, Any]:
    """MCT's model card for `card`; `plots` maps each graphic's name to its PNG bytes (embedded as base64)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "model_details": _details(card),
        "model_parameters": _parameters(card),
        "quantitative_analysis": {
            "performance_metrics": _performance(card),
            "graphics": {
                "description": card["quantitative_analysis"]["graphics"]["description"],
                "collection": [
                    {"name": name, "image": base64.b64encode(plots[name]).decode("ascii")} for name in sorted(plots)
                ],
            },
        },
        "considerations": _considerations(card),
    }


def _details(card: dict[str, Any]) -> dict[str, Any]:
    md = card["model_details"]
    mlflow = card["lineage"].get("mlflow") or {}
    licenses = [{"identifier": x["identifier"]} for x in md["licenses"]]
    if md.get("license_name"):  # `other`: MCT has no name slot, so the name is the custom text
        licenses = [{"custom_text": md["license_name"]}]
    urls = [u for r in md["references"] for u in _URL.findall(r["reference"])]
    citations = [{"style": "text", "citation": r["reference"]} for r in md["references"]]
    if md.get("citation"):
        citations.insert(0, {"style": "BibTeX", "citation": md["citation"]})
    out = {
        "name": md["name"],
        "overview": md["overview"],
        "documentation": card["model_parameters"]["model_architecture"],
        "owners": [dict(o) for o in md["owners"]],
        "version": {"name": card["version"], "date": (md["version"]["date"] or "")[:10]},
        "licenses": licenses,
        "references": [{"reference": u} for u in dict.fromkeys(urls)],
        "citations": citations,
    }
    if mlflow.get("model_uri"):
        out["path"] = mlflow["model_uri"]
    if not out["version"]["date"]:
        del out["version"]["date"]
    return out


def _parameters(card: dict[str, Any]) -> dict[str, Any]:
    mp = card["model_parameters"]
    feats = mp["input_format"]
    label = mp["label"]
    kinds = [(f, "numeric") for f in feats["numeric"]] + [(f, "categorical") for f in feats["categorical"]]
    return {
        "model_architecture": mp["model_architecture"],
        "data": [
            {
                "name": f"{d['name']} split",
                "description": f"{text(d['rows'])} rows of the {d['source']} data set (sha256 {d['sha256']})"
                + (", generated, not real data" if d["synthetic"] else ""),
            }
            for d in mp["data"]
        ],
        "input_format": (
            f"one table row per prediction: {len(feats['numeric'])} numeric and {len(feats['categorical'])} "
            "categorical columns (input_format_map)"
        ),
        "input_format_map": [{"key": name, "value": kind} for name, kind in kinds],
        "output_format": mp["output_format"],
        "output_format_map": [
            {"key": "score", "value": f"probability that {label.get('name')} = {label.get('positive')!r}"},
            {"key": "prediction", "value": "1 when the score is at least 0.5, else 0"},
        ],
    }


def _performance(card: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in card["quantitative_analysis"]["performance_metrics"]:
        item: dict[str, Any] = {
            "type": p["type"] if p["split"] == "test" else f"{p['type']} ({p['split']} split)",
            "value": text(p["value"]),
            "slice": p["slice"],
        }
        ci = p.get("confidence_interval")
        if ci:
            item["confidence_interval"] = {
                "lower_bound": text(ci["lower_bound"]),
                "upper_bound": text(ci["upper_bound"]),
            }
        out.append(item)
    return out


def _considerations(card: dict[str, Any]) -> dict[str, Any]:
    co = card["considerations"]

    def described(items: list[dict[str, str]], prefix: str = "") -> list[dict[str, str]]:
        return [{"description": prefix + i["description"]} for i in items]

    return {
        "users": described(co["users"]),
        "use_cases": described(co["use_cases"]),
        # MCT v0.0.2 has no out-of-scope slot; an out-of-scope use is a limitation of the model.
        "limitations": described(co["limitations"]) + described(co["out_of_scope_uses"], "Out of scope: "),
        "tradeoffs": described(co["tradeoffs"]),
        "ethical_considerations": [
            {"name": e["name"], "mitigation_strategy": e["mitigation_strategy"]} for e in co["ethical_considerations"]
        ],
    }
