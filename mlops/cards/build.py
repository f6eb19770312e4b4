"""The card JSON of one version: Model Card Toolkit sections built from the records, one function per section.

`assemble` is pure (already-read inputs in, the card out); `build_card` reads those inputs from the repository.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from mlops import jsonio
from mlops.cards.extras import add_details, read_records
from mlops.cards.hub import hf_metadata
from mlops.config import Config, Factors, IntendedUse, ModelCardConfig, Owner
from mlops.repo import Repo

CARD_FORMAT = "mlops-model-card/v1"
TEAM_FILE = "config/model-card.json"
PLOTS = ("roc", "pr", "reliability", "confusion", "slices", "importance")
# Metrics in the order the card lists them; anything else the manifest holds follows alphabetically.
METRIC_ORDER = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "ece",
    "brier",
    "log_loss",
    "positive_rate",
    "predicted_positive_rate",
    "n",
)
SLICE_METRICS = ("n", "accuracy", "precision", "recall", "f1", "roc_auc", "ece", "positive_rate")
LOWER_IS_BETTER = frozenset({"ece", "brier", "log_loss"})
HIGHER_IS_BETTER = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc"})
AUDITED = ("promotion", "gate_decision")
# Without config/model-card.json the card says the team text is not written; it invents none.
_NO_TEAM_TEXT = ModelCardConfig(
    owners=(),
    license=None,
    license_name=None,
    hub_dataset=None,
    references=(),
    intended_use=IntendedUse(primary_uses=(), primary_users=(), out_of_scope=()),
    factors=Factors(relevant=(), intersections=(), min_slice_rows=30, max_intersection_cells=24, evaluation=None),
    limitations=(),
    tradeoffs=(),
    ethical_considerations=(),
    caveats_and_recommendations=(),
    conditional_recommendations=(),
)


def ordered_metrics(metrics: dict[str, Any]) -> list[str]:
    known = [m for m in METRIC_ORDER if m in metrics]
    return known + sorted(k for k in metrics if k not in METRIC_ORDER)


# ---------------------------------------------------------------------------------------------- reading


def build_card(cfg: Config, version: str) -> dict[str, Any]:
    """The card JSON of one version, from its manifest, gate record, the audit log and config/model-card.json."""
    from mlops import registry

    repo = cfg.repo
    folder = registry.find_version(repo, version)
    manifest = jsonio.read_json(folder / registry.MANIFEST, "model manifest")
    gate_path = repo.gates / f"{version}.json"
    gate_record = jsonio.read_json(gate_path, "gate record") if gate_path.exists() else None
    return assemble(
        manifest,
        gate_record,
        find_audit_entries(repo, version),
        cfg.model_card,
        model_name=f"{cfg.dataset.name}-classifier",
        gate_record_path=repo.rel(gate_path) if gate_record is not None else None,
        dataset_name=cfg.dataset.name,
        records=read_records(repo, folder, manifest),
    )


def find_audit_entries(repo: Repo, version: str) -> dict[str, Any]:
    """The promotion and gate_decision entries naming `version`, each with the checkpoint that first covers it."""
    from mlops import audit

    if not repo.audit_dir.is_dir():
        return {"available": False}
    data = audit.read_dir(repo.audit_dir, repo.rel(repo.audit_dir))
    needle = version.encode()
    found: dict[str, Any] = {"available": True}
    for seq, line in enumerate(data.lines):
        if needle not in line:  # cheap filter before parsing: most entries name other versions
            continue
        entry = _parsed(line)
        if entry is None:
            continue
        kind = entry.get("type")
        if kind in AUDITED and entry.get("payload", {}).get("version") == version:
            leaf_hash = hashlib.sha256(b"\x00" + line).hexdigest()
            found[kind] = {"seq": seq, "time": entry.get("time"), "leaf_hash": leaf_hash}
    checkpoints = [(index, ck) for index, raw in enumerate(data.checkpoint_lines) if (ck := _parsed(raw)) is not None]
    for kind in AUDITED:
        if kind in found:
            found[kind]["checkpoint"] = _covering_checkpoint(checkpoints, found[kind]["seq"])
    return found


def _parsed(line: bytes) -> Any:
    """One audit or checkpoint line; None for a line that is not JSON (`mlops audit verify` reports those)."""
    try:
        return json.loads(line)
    except ValueError:
        return None


def _covering_checkpoint(checkpoints: list[tuple[int, dict[str, Any]]], seq: int) -> dict[str, Any] | None:
    for index, ck in checkpoints:
        if isinstance(ck.get("size"), int) and ck["size"] > seq:
            return {
                "index": index,
                "size": ck["size"],
                "root": ck.get("root"),
                "time": ck.get("time"),
                "signed": "signature" in ck or "\n\n" in str(ck.get("note", "")),  # legacy line, or a signed note
            }
    return None


# ---------------------------------------------------------------------------------------------- assembling


def assemble(
    manifest: dict[str, Any],
    gate_record: dict[str, Any] | None,
    audit_found: dict[str, Any],
    team: ModelCardConfig | None,
    *,
    model_name: str,
    gate_record_path: str | None,
    dataset_name: str | None = None,
    records: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Pure part of build_card: the card from already-read inputs (team: config/model-card.json, None without one).

    `records`: what `extras.read_records` read beside the manifest (hyper-parameters, permutation importance).
    """
    records = records or {}
    card: dict[str, Any] = {
        "format": CARD_FORMAT,
        "version": manifest["version"],
        "model_details": _model_details(manifest, team, model_name),
        "model_parameters": _model_parameters(manifest),
        "quantitative_analysis": _quantitative_analysis(manifest),
        "considerations": _considerations(manifest, gate_record, team),
        "gate": _gate_section(manifest, gate_record, gate_record_path),
        "lineage": _lineage(manifest, audit_found, model_name),
    }
    add_details(card, manifest, team or _NO_TEAM_TEXT, dataset_name, records)
    metrics = manifest.get("metrics") or {}
    card["huggingface"] = hf_metadata(
        card, {m: metrics[m] for m in ordered_metrics(metrics)}, (team or _NO_TEAM_TEXT).hub_dataset
    )
    return card


def _is_synthetic(manifest: dict[str, Any]) -> bool:
    return (manifest.get("dataset") or {}).get("source") == "synthetic"


def _model_details(manifest: dict[str, Any], team: ModelCardConfig | None, model_name: str) -> dict[str, Any]:
    text = team or _NO_TEAM_TEXT
    return {
        "name": model_name,
        "version": {"name": manifest["version"], "date": manifest.get("created_at")},
        "model_type": manifest.get("model_type"),
        "overview": manifest.get("description") or "",
        "owners": [_owner(o) for o in text.owners],
        "licenses": [{"identifier": text.license}] if text.license else [],
        "references": [{"reference": r} for r in text.references],
        "synthetic_data": _is_synthetic(manifest),
        "team_text": TEAM_FILE if team else None,
    }


def _owner(owner: Owner) -> dict[str, str]:
    # An owner without a contact has none in the card either (the card schema allows a string, not null).
    return {"name": owner.name} if owner.contact is None else {"name": owner.name, "contact": owner.contact}


def _model_parameters(manifest: dict[str, Any]) -> dict[str, Any]:
    ds = manifest.get("dataset") or {}
    split = ds.get("split") or {}
    features = manifest.get("features") or {}
    label = manifest.get("label") or {}
    return {
        "model_architecture": manifest.get("description") or manifest.get("model_type") or "",
        "input_format": {
            "numeric": list(features.get("numeric") or []),
            "categorical": list(features.get("categorical") or []),
            "dropped_empty": list(features.get("dropped_empty") or []),
        },
        "output_format": (
            f"probability that {label.get('name')} = {label.get('positive')!r}; "
            "predicted positive when it is at least 0.5"
        ),
        "label": label,
        "seed": manifest.get("seed"),
        "data": [
            {
                "name": name,
                "rows": split.get(key),
                "sha256": ds.get("sha256"),
                "source": ds.get("source"),
                "synthetic": _is_synthetic(manifest),
            }
            for name, key in (("train", "train"), ("validation", "val"), ("test", "test"))
            if key in split
        ],
    }


def _quantitative_analysis(manifest: dict[str, Any]) -> dict[str, Any]:
    curves = manifest.get("curves") or {}
    version = manifest["version"]
    return {
        "performance_metrics": _performance_metrics(manifest),
        "reliability": manifest.get("reliability") or [],
        "roc": curves.get("roc"),
        "pr": curves.get("pr"),
        "confusion": curves.get("confusion"),
        "graphics": {
            "description": "Plots rendered from this card's own numbers (metadata/cards/<version>/*.png).",
            "collection": [{"name": name, "image": f"{version}/{name}.png"} for name in PLOTS],
        },
    }


def _performance_metrics(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Test metrics (with bootstrap intervals), then validation metrics, then per-slice test metrics."""
    metrics = manifest.get("metrics") or {}
    intervals = manifest.get("intervals") or {}
    val = manifest.get("validation_metrics") or {}
    slices = manifest.get("slices") or {}
    performance = []
    for name in ordered_metrics(metrics):
        item: dict[str, Any] = {"type": name, "value": metrics[name], "slice": "overall", "split": "test"}
        if name in intervals:
            item["confidence_interval"] = _interval(intervals[name], "percentile bootstrap over the test split")
        performance.append(item)
    for name in ordered_metrics(val):
        performance.append({"type": name, "value": val[name], "slice": "overall", "split": "validation"})
    for column in sorted(slices):
        for value in sorted(slices[column]):
            row = slices[column][value]
            ci = row.get("intervals") or {}
            for name in SLICE_METRICS:
                if name not in row:
                    continue
                item = {"type": name, "value": row[name], "slice": f"{column}={value}", "split": "test"}
                if name in ci:
                    item["confidence_interval"] = _interval(ci[name], "percentile bootstrap within the slice")
                performance.append(item)
    return performance


def _interval(bounds: dict[str, float], method: str) -> dict[str, Any]:
    return {"lower_bound": bounds["low"], "upper_bound": bounds["high"], "level": 0.95, "method": method}


def _considerations(
    manifest: dict[str, Any], gate_record: dict[str, Any] | None, team: ModelCardConfig | None
) -> dict[str, Any]:
    team = team or _NO_TEAM_TEXT

    def described(items: tuple[str, ...]) -> list[dict[str, str]]:
        return [{"description": u} for u in items]

    return {
        "users": described(team.intended_use.primary_users),
        "use_cases": described(team.intended_use.primary_uses),
        "out_of_scope_uses": described(team.intended_use.out_of_scope),
        "limitations": described(team.limitations),
        "tradeoffs": described(team.tradeoffs),
        "ethical_considerations": [dataclasses.asdict(e) for e in team.ethical_considerations],
        "factors": {
            "relevant": [dataclasses.asdict(f) for f in team.factors.relevant],
            "evaluation": team.factors.evaluation,
        },
        "caveats_and_recommendations": described(team.caveats_and_recommendations),
        "run_caveats": _run_caveats(manifest, gate_record),
    }


def _run_caveats(manifest: dict[str, Any], gate_record: dict[str, Any] | None) -> list[str]:
    """Facts about this run a reader must not miss (not opinions: each follows from a recorded value)."""
    out = []
    ds = manifest.get("dataset") or {}
    if ds.get("source") == "synthetic":
        text = "Trained and evaluated on the seeded SYNTHETIC data set, not on real data"
        if ds.get("fallback_reason"):
            text += f" (fallback: {ds['fallback_reason']})"
        out.append(text + ". Its metrics say nothing about real customers.")
    overrides = manifest.get("overrides") or {}
    if overrides.get("allow_invalid_data"):
        out.append("Trained with --allow-invalid-data: the data failed validation and training went ahead anyway.")
    if overrides.get("force_retrain"):
        out.append("Trained with --force-retrain.")
    dv = manifest.get("data_validation")
    if dv and not dv.get("passed"):
        out.append("Data validation failed: " + "; ".join(map(str, dv.get("failures") or []))[:300])
    gate = manifest.get("gate") or {}
    if gate and not gate.get("passed"):
        reasons = (gate_record or {}).get("reasons") or []
        out.append("Did not pass the promotion gate" + (f": {'; '.join(reasons)}" if reasons else "") + ".")
    if gate_record and gate_record.get("regression"):
        out.append("Regression: worse than the champion beyond the tolerance on the primary metric.")
    return out


def _gate_section(manifest: dict[str, Any], record: dict[str, Any] | None, record_path: str | None) -> dict[str, Any]:
    gate = manifest.get("gate") or {}
    if record is None:
        return {
            "record": None,
            "passed": gate.get("passed"),
            "decision": gate.get("decision"),
            "checks": [],
            "champion": None,
        }
    champion = record.get("champion")
    return {
        "record": record_path,
        "passed": record.get("passed"),
        "decision": record.get("decision"),
        "primary_metric": record.get("primary_metric"),
        "tolerance": record.get("tolerance"),
        "thresholds": record.get("thresholds"),
        "checks": [
            {k: c.get(k) for k in ("name", "op", "threshold", "value", "passed")} for c in record.get("checks") or []
        ],
        "reasons": record.get("reasons") or [],
        "regression": record.get("regression"),
        "promotion_reason": record.get("promotion_reason"),
        "champion_delta": record.get("champion_delta"),
        "champion": (
            {k: champion.get(k) for k in ("version", "model_type", "comparable", "reason", "metrics")}
            if champion
            else None
        ),
    }


def _lineage(manifest: dict[str, Any], audit_found: dict[str, Any], model_name: str) -> dict[str, Any]:
    ds = manifest.get("dataset") or {}
    mlflow = manifest.get("mlflow") or {}
    dataset_keys = ("source", "sha256", "path", "detail", "fetched_at", "updated_at", "fallback_reason", "rows")
    mlflow_keys = ("run_id", "parent_run_id", "model_version", "model_uri", "tracking_uri")
    return {
        "commit": manifest.get("commit"),
        "created_at": manifest.get("created_at"),
        "seed": manifest.get("seed"),
        "model_sha256": manifest.get("model_sha256"),
        "dataset": {k: ds.get(k) for k in dataset_keys}
        | {"synthetic": _is_synthetic(manifest)}
        # the production source: store, window, parts read with their sha256s (mlops.production_data)
        | ({k: ds.get(k) for k in ("file_sha256", "production")} if ds.get("source") == "production" else {}),
        "mlflow": {"registered_model": model_name} | {k: mlflow.get(k) for k in mlflow_keys} if mlflow else None,
        "audit": {
            "available": bool(audit_found.get("available")),
            "promotion": audit_found.get("promotion"),
            "gate_decision": audit_found.get("gate_decision"),
        },
        "data_validation": manifest.get("data_validation"),
        "overrides": manifest.get("overrides") or {},
        "environment": manifest.get("environment") or {},
    }
