"""Model cards: one JSON document per trained version, and the Markdown + PNG plots rendered from it.

The JSON (metadata/cards/<version>.json) is the card: Model Card Toolkit sections (model_details,
model_parameters, quantitative_analysis, considerations) plus `gate` and `lineage`. It is built from the
manifest, the gate record, the audit log and the team-edited config/model-card.json, and nothing else,
so the same inputs always give the same bytes. The Markdown (Mitchell et al.'s headings) and the plots
are pure functions of that JSON: `mlops card render` rebuilds them byte for byte (docs/model-cards.md).
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any

from mlops import gha, jsonio
from mlops.config import Config
from mlops.errors import BadInput, CheckFailed
from mlops.repo import Repo

CARD_FORMAT = "mlops-model-card/v1"
SCHEMA_FILE = "model-card-document.schema.json"
TEAM_FILE = "config/model-card.json"
PLOTS = ("roc", "reliability", "confusion", "slices")
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


# ---------------------------------------------------------------------------------------------- paths


def card_json_path(repo: Repo, version: str) -> Path:
    return repo.cards / f"{version}.json"


def card_md_path(repo: Repo, version: str) -> Path:
    return repo.cards / f"{version}.md"


def plot_path(repo: Repo, version: str, name: str) -> Path:
    return repo.cards / version / f"{name}.png"


# ---------------------------------------------------------------------------------------------- building


def _ordered_metrics(metrics: dict[str, Any]) -> list[str]:
    known = [m for m in METRIC_ORDER if m in metrics]
    return known + sorted(k for k in metrics if k not in METRIC_ORDER)


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
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        kind = entry.get("type")
        if kind in ("promotion", "gate_decision") and entry.get("payload", {}).get("version") == version:
            found[kind] = {"seq": seq, "time": entry.get("time"), "leaf_hash": _leaf_hex(line)}
    checkpoints = []
    for index, raw in enumerate(data.checkpoint_lines):
        try:
            ck = json.loads(raw)
        except ValueError:
            continue
        checkpoints.append((index, ck))
    for kind in ("promotion", "gate_decision"):
        if kind not in found:
            continue
        seq = found[kind]["seq"]
        covering = next(
            ((i, ck) for i, ck in checkpoints if isinstance(ck.get("size"), int) and ck["size"] > seq), None
        )
        if covering:
            i, ck = covering
            found[kind]["checkpoint"] = {
                "index": i,
                "size": ck["size"],
                "root": ck.get("root"),
                "time": ck.get("time"),
                "signed": "signature" in ck,
            }
        else:
            found[kind]["checkpoint"] = None
    return found


def _leaf_hex(line: bytes) -> str:
    import hashlib

    return hashlib.sha256(b"\x00" + line).hexdigest()


def build_card(cfg: Config, version: str) -> dict[str, Any]:
    """The card JSON of one version, from its manifest, gate record, the audit log and config/model-card.json."""
    from mlops import registry

    repo = cfg.repo
    folder = registry.find_version(repo, version)
    manifest = jsonio.read_json(folder / registry.MANIFEST, "model manifest")
    gate_path = repo.gates / f"{version}.json"
    gate_record = jsonio.read_json(gate_path, "gate record") if gate_path.exists() else None
    team = cfg.section("model-card")
    return assemble(
        manifest,
        gate_record,
        find_audit_entries(repo, version),
        team,
        model_name=f"{cfg.dataset.name}-classifier",
        gate_record_path=repo.rel(gate_path) if gate_record is not None else None,
    )


def assemble(
    manifest: dict[str, Any],
    gate_record: dict[str, Any] | None,
    audit_found: dict[str, Any],
    team: dict[str, Any],
    *,
    model_name: str,
    gate_record_path: str | None,
) -> dict[str, Any]:
    """Pure part of build_card: the card from already-read inputs."""
    version = manifest["version"]
    ds = manifest.get("dataset") or {}
    synthetic = ds.get("source") == "synthetic"
    metrics = manifest.get("metrics") or {}
    intervals = manifest.get("intervals") or {}
    val = manifest.get("validation_metrics") or {}
    performance = []
    for name in _ordered_metrics(metrics):
        item: dict[str, Any] = {"type": name, "value": metrics[name], "slice": "overall", "split": "test"}
        if name in intervals:
            item["confidence_interval"] = {
                "lower_bound": intervals[name]["low"],
                "upper_bound": intervals[name]["high"],
                "level": 0.95,
                "method": "percentile bootstrap over the test split",
            }
        performance.append(item)
    for name in _ordered_metrics(val):
        performance.append({"type": name, "value": val[name], "slice": "overall", "split": "validation"})
    slices = manifest.get("slices") or {}
    for column in sorted(slices):
        for value in sorted(slices[column]):
            row = slices[column][value]
            for name in SLICE_METRICS:
                if name in row:
                    performance.append(
                        {"type": name, "value": row[name], "slice": f"{column}={value}", "split": "test"}
                    )
    curves = manifest.get("curves") or {}
    features = manifest.get("features") or {}
    label = manifest.get("label") or {}
    split = ds.get("split") or {}
    intended = team.get("intended_use") or {}
    factors = team.get("factors") or {}
    mlflow = manifest.get("mlflow") or {}

    card: dict[str, Any] = {
        "format": CARD_FORMAT,
        "version": version,
        "model_details": {
            "name": model_name,
            "version": {"name": version, "date": manifest.get("created_at")},
            "model_type": manifest.get("model_type"),
            "overview": manifest.get("description") or "",
            "owners": team.get("owners") or [],
            "licenses": [{"identifier": team["license"]}] if team.get("license") else [],
            "references": [{"reference": r} for r in team.get("references") or []],
            "synthetic_data": synthetic,
            "team_text": TEAM_FILE if team else None,
        },
        "model_parameters": {
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
                    "synthetic": synthetic,
                }
                for name, key in (("train", "train"), ("validation", "val"), ("test", "test"))
                if key in split
            ],
        },
        "quantitative_analysis": {
            "performance_metrics": performance,
            "reliability": manifest.get("reliability") or [],
            "roc": curves.get("roc"),
            "confusion": curves.get("confusion"),
            "graphics": {
                "description": "Plots rendered from this card's own numbers (metadata/cards/<version>/*.png).",
                "collection": [{"name": name, "image": f"{version}/{name}.png"} for name in PLOTS],
            },
        },
        "considerations": {
            "users": [{"description": u} for u in intended.get("primary_users") or []],
            "use_cases": [{"description": u} for u in intended.get("primary_uses") or []],
            "out_of_scope_uses": [{"description": u} for u in intended.get("out_of_scope") or []],
            "limitations": [{"description": u} for u in team.get("limitations") or []],
            "tradeoffs": [{"description": u} for u in team.get("tradeoffs") or []],
            "ethical_considerations": list(team.get("ethical_considerations") or []),
            "factors": {"relevant": list(factors.get("relevant") or []), "evaluation": factors.get("evaluation")},
            "caveats_and_recommendations": [{"description": u} for u in team.get("caveats_and_recommendations") or []],
            "run_caveats": _run_caveats(manifest, gate_record),
        },
        "gate": _gate_section(manifest, gate_record, gate_record_path),
        "lineage": {
            "commit": manifest.get("commit"),
            "created_at": manifest.get("created_at"),
            "seed": manifest.get("seed"),
            "model_sha256": manifest.get("model_sha256"),
            "dataset": {
                "source": ds.get("source"),
                "synthetic": synthetic,
                "sha256": ds.get("sha256"),
                "path": ds.get("path"),
                "detail": ds.get("detail"),
                "fetched_at": ds.get("fetched_at"),
                "updated_at": ds.get("updated_at"),
                "fallback_reason": ds.get("fallback_reason"),
                "rows": ds.get("rows"),
            },
            "mlflow": {
                "registered_model": model_name,
                "run_id": mlflow.get("run_id"),
                "parent_run_id": mlflow.get("parent_run_id"),
                "model_version": mlflow.get("model_version"),
                "model_uri": mlflow.get("model_uri"),
                "tracking_uri": mlflow.get("tracking_uri"),
            }
            if mlflow
            else None,
            "audit": {
                "available": bool(audit_found.get("available")),
                "promotion": audit_found.get("promotion"),
                "gate_decision": audit_found.get("gate_decision"),
            },
            "data_validation": manifest.get("data_validation"),
            "overrides": manifest.get("overrides") or {},
            "environment": manifest.get("environment") or {},
        },
    }
    card["huggingface"] = _hf_metadata(card, manifest)
    return card


def _hf_metadata(card: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    """The Hugging Face model card metadata (the README's YAML header) for the same model, so Hub tools can read it."""
    md = card["model_details"]
    ds = card["lineage"]["dataset"]
    metrics = manifest.get("metrics") or {}
    dataset_name = ds.get("detail") if ds.get("synthetic") else (ds.get("path") or "")
    return {
        "library_name": "sklearn",
        "license": md["licenses"][0]["identifier"].lower() if md["licenses"] else "other",
        "tags": sorted(
            {"tabular-classification", "sklearn", "skops", md["model_type"] or "model"}
            | ({"synthetic-data"} if ds.get("synthetic") else set())
        ),
        "model-index": [
            {
                "name": md["name"],
                "results": [
                    {
                        "task": {"type": "tabular-classification", "name": "Tabular Classification"},
                        "dataset": {
                            "name": dataset_name,
                            "type": ds.get("source") or "",
                            "split": "test",
                            "revision": ds.get("sha256") or "",
                        },
                        "metrics": [
                            {"type": name, "value": metrics[name], "name": f"test {name}"}
                            for name in ("accuracy", "f1", "precision", "recall", "roc_auc")
                            if isinstance(metrics.get(name), (int, float))
                        ],
                    }
                ],
            }
        ],
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


# ---------------------------------------------------------------------------------------------- validating


def schema(repo: Repo) -> dict[str, Any]:
    path = repo.schemas_dir / SCHEMA_FILE
    if not path.exists():
        # Forks created before cards existed: fall back to the schema shipped with the package checkout.
        path = Path(__file__).resolve().parents[1] / "config" / "schemas" / SCHEMA_FILE
    return jsonio.read_json(path, "schema")


def validate(card: Any, repo: Repo, where: str) -> None:
    """BadInput naming the JSON pointer of the first violation of the card schema."""
    import jsonschema

    from mlops.config import _pointer, describe_violation

    validator = jsonschema.Draft202012Validator(schema(repo))
    errors = sorted(validator.iter_errors(card), key=lambda e: (list(e.absolute_path), e.validator))
    if errors:
        err = errors[0]
        expected, found = describe_violation(err)
        raise BadInput(
            f"{where}: {_pointer(err.absolute_path)}",
            f"expected {expected}, found {found}",
            "regenerate the card with `mlops card build VERSION` instead of editing it",
        )


# ---------------------------------------------------------------------------------------------- Markdown


def _num(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _cell(value: Any) -> str:
    return _num(value).replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _bullets(items: list[str], empty: str) -> str:
    if not items:
        return f"_{empty}_"
    return "\n".join(f"- {i}" for i in items)


def _details(summary: str, body: str) -> str:
    # The blank lines after <summary> and before </details> let GitHub render Markdown inside.
    return f"<details>\n<summary>{summary}</summary>\n\n{body}\n\n</details>"


def _short(sha: Any, n: int = 12) -> str:
    return str(sha)[:n] if sha else "n/a"


def diff_rows(candidate: dict[str, Any], champion: dict[str, Any]) -> list[list[Any]]:
    """Rows (metric, champion, candidate, change) over the metrics both have, as `dvc metrics diff` lists them."""
    rows = []
    for name in _ordered_metrics({**champion, **candidate}):
        new, old = candidate.get(name), champion.get(name)
        if name == "n":
            continue
        if isinstance(new, (int, float)) and isinstance(old, (int, float)):
            change = new - old
            # Rates such as positive_rate describe the data or the threshold, not quality: no verdict for them.
            directional = name in LOWER_IS_BETTER or name in HIGHER_IS_BETTER
            better = change < 0 if name in LOWER_IS_BETTER else change > 0
            mark = "" if change == 0 or not directional else (" (better)" if better else " (worse)")
            rows.append([name, old, new, f"{change:+.4f}{mark}"])
        else:
            rows.append([name, old, new, "n/a"])
    return rows


def metrics_diff_markdown(candidate_manifest: dict[str, Any], champion_manifest: dict[str, Any] | None) -> str:
    """A Markdown metric diff of a candidate against the champion (the PR experiment report, CML style)."""
    cand_v = candidate_manifest.get("version", "candidate")
    if not champion_manifest:
        return f"No champion to compare `{cand_v}` with: it would be the first model."
    champ_v = champion_manifest.get("version", "champion")
    table = _table(
        ["metric", f"champion `{champ_v}`", f"candidate `{cand_v}`", "change"],
        diff_rows(candidate_manifest.get("metrics") or {}, champion_manifest.get("metrics") or {}),
    )
    cand_ds = (candidate_manifest.get("dataset") or {}).get("sha256")
    champ_ds = (champion_manifest.get("dataset") or {}).get("sha256")
    note = (
        "Both measured on the same data set (sha256 `" + _short(cand_ds) + "`)."
        if cand_ds == champ_ds
        else f"Measured on different data sets (champion `{_short(champ_ds)}`, candidate `{_short(cand_ds)}`): "
        "the gate record's champion re-evaluation on the candidate's test split is the fair comparison."
    )
    return f"{table}\n\n{note}"


def render_markdown(card: dict[str, Any]) -> str:
    """The card's Markdown: a pure function of the card JSON (so `mlops card render` reproduces it)."""
    md = card["model_details"]
    mp = card["model_parameters"]
    qa = card["quantitative_analysis"]
    co = card["considerations"]
    gate = card["gate"]
    lin = card["lineage"]
    ds = lin["dataset"]
    version = card["version"]
    out: list[str] = []
    add = out.append

    add(f"# Model card: {md['name']} `{version}`")
    if md["synthetic_data"]:
        reason = f" The configured source was not used: {ds['fallback_reason']}." if ds.get("fallback_reason") else ""
        add(
            "> [!WARNING]\n> **Synthetic data.** This model was trained and evaluated on the seeded synthetic data "
            f"set (`{ds.get('detail')}`), not on real data.{reason} Its metrics describe the pipeline, "
            "not real customers."
        )
    decision = gate.get("decision") or "unknown"
    add(
        f"**{md['model_type']}** · trained {md['version']['date']} · gate: **{decision}**"
        + (" · REGRESSION" if gate.get("regression") else "")
    )

    add("## Model details")
    owners = (
        ", ".join(o["name"] + (f" ({o['contact']})" if o.get("contact") else "") for o in md["owners"])
        or "_not set in config/model-card.json_"
    )
    licenses = ", ".join(x["identifier"] for x in md["licenses"]) or "_not set_"
    add(
        _table(
            ["field", "value"],
            [
                ["version", f"`{version}`"],
                ["model type", md["model_type"]],
                ["architecture", mp["model_architecture"]],
                ["trained", md["version"]["date"]],
                ["commit", f"`{lin['commit']}`"],
                ["seed", lin["seed"]],
                ["model sha256", f"`{lin['model_sha256']}`"],
                ["owners", owners],
                ["license", licenses],
                ["synthetic data", md["synthetic_data"]],
            ],
        )
    )
    if md["references"]:
        add("References:\n\n" + _bullets([r["reference"] for r in md["references"]], ""))

    team_missing = f"not written: edit {TEAM_FILE} (docs/model-cards.md)"
    add("## Intended use")
    add("**Primary uses**\n\n" + _bullets([u["description"] for u in co["use_cases"]], team_missing))
    add("**Primary users**\n\n" + _bullets([u["description"] for u in co["users"]], team_missing))
    add("**Out of scope**\n\n" + _bullets([u["description"] for u in co["out_of_scope_uses"]], team_missing))

    add("## Factors")
    add(_bullets(co["factors"]["relevant"], team_missing))
    if co["factors"].get("evaluation"):
        add(co["factors"]["evaluation"])

    add("## Metrics")
    test = [p for p in qa["performance_metrics"] if p["slice"] == "overall" and p["split"] == "test"]
    val = {p["type"]: p["value"] for p in qa["performance_metrics"] if p["split"] == "validation"}
    rows = []
    for p in test:
        ci = p.get("confidence_interval")
        rows.append(
            [
                p["type"],
                p["value"],
                f"{_num(ci['lower_bound'])} – {_num(ci['upper_bound'])}" if ci else "",
                val.get(p["type"]),
            ]
        )
    add(
        "Held-out test split; decision threshold 0.5; 95 % intervals are percentile bootstrap resamples of the "
        "test split; ECE is the binned expected calibration error (lower is better)."
    )
    add(_table(["metric", "test", "95 % interval", "validation"], rows))

    add("## Evaluation data")
    by_name = {d["name"]: d for d in mp["data"]}
    add(
        f"The **test** split: {_num(by_name.get('test', {}).get('rows'))} rows held out by a stratified split "
        f"(seed {lin['seed']}) of the data set below; the validation split "
        f"({_num(by_name.get('validation', {}).get('rows'))} rows) is reported beside it."
    )
    add("## Training data")
    add(
        _table(
            ["field", "value"],
            [
                ["source", ds["source"] + (" (generated, not real data)" if ds["synthetic"] else "")],
                ["sha256", f"`{ds['sha256']}`"],
                ["path", f"`{ds['path']}`"],
                ["detail", ds.get("detail") or ""],
                ["fetched", ds.get("fetched_at")],
                ["source last updated", ds.get("updated_at")],
                ["rows", ds.get("rows")],
                [
                    "train / validation / test rows",
                    " / ".join(_num(by_name.get(k, {}).get("rows")) for k in ("train", "validation", "test")),
                ],
                ["label", f"`{mp['label'].get('name')}` (positive: {mp['label'].get('positive')!r})"],
            ],
        )
    )
    dv = lin.get("data_validation")
    if dv is None:
        add("Data validation: not recorded for this run.")
    else:
        state = "passed" if dv.get("passed") else "FAILED" + (" (overridden)" if dv.get("overridden") else "")
        add(f"Data validation: **{state}**" + (f", report `{dv['report']}`" if dv.get("report") else "") + ".")
    feats = mp["input_format"]
    add(
        _details(
            f"Features ({len(feats['numeric'])} numeric, {len(feats['categorical'])} categorical)",
            _table(
                ["feature", "kind"],
                [[f"`{f}`", "numeric"] for f in feats["numeric"]]
                + [[f"`{f}`", "categorical"] for f in feats["categorical"]]
                + [[f"`{f}`", "dropped (empty)"] for f in feats["dropped_empty"]],
            ),
        )
    )

    add("## Quantitative analyses")
    images = {g["name"]: g["image"] for g in qa["graphics"]["collection"]}
    if qa.get("roc"):
        add(f"![ROC curve]({images['roc']})")
    else:
        add("_ROC curve: not recorded (the test split had a single class, or the manifest has no `curves`)._")
    add(f"![Reliability diagram]({images['reliability']})")
    if qa.get("confusion"):
        add(f"![Confusion matrix]({images['confusion']})")
        c = qa["confusion"]
        add(
            _table(
                ["", "predicted positive", "predicted negative"],
                [["actual positive", c["tp"], c["fn"]], ["actual negative", c["fp"], c["tn"]]],
            )
        )
    else:
        add("_Confusion matrix: not recorded (the manifest has no `curves`)._")
    add(
        _details(
            "Reliability table (calibration per probability bin)",
            _table(
                ["bin", "count", "mean predicted", "observed rate"],
                [
                    [f"{b['bin_low']:.2f}–{b['bin_high']:.2f}", b["count"], b["mean_predicted"], b["observed_rate"]]
                    for b in qa["reliability"]
                ],
            ),
        )
    )
    sliced = _slice_rows(qa["performance_metrics"])
    if sliced:
        add("### Per-slice metrics")
        add(f"![Per-slice metrics]({images['slices']})")
        for column, rows_ in sliced.items():
            add(_details(f"By `{column}` ({len(rows_)} values)", _table(["value", *SLICE_METRICS], rows_)))
    else:
        add("_Per-slice metrics: no slice columns configured (config/dataset.json /slices)._")

    add("## Ethical considerations")
    eth = co["ethical_considerations"]
    add(
        _table(["consideration", "mitigation"], [[e["name"], e["mitigation_strategy"]] for e in eth])
        if eth
        else f"_{team_missing}_"
    )

    add("## Caveats and recommendations")
    if co["run_caveats"]:
        add("**From this run**\n\n" + _bullets(co["run_caveats"], ""))
    add("**Limitations**\n\n" + _bullets([u["description"] for u in co["limitations"]], team_missing))
    if co["tradeoffs"]:
        add("**Trade-offs**\n\n" + _bullets([u["description"] for u in co["tradeoffs"]], ""))
    add(
        "**Recommendations**\n\n"
        + _bullets([u["description"] for u in co["caveats_and_recommendations"]], team_missing)
    )

    add("## Gate and lineage")
    add(_gate_markdown(gate, {p["type"]: p["value"] for p in test}))
    add(_lineage_markdown(card))
    # JSON is valid YAML: the block can be pasted as the front matter of a Hugging Face model card.
    hf = json.dumps(card["huggingface"], indent=2, sort_keys=True, ensure_ascii=False)
    add(_details("Hugging Face model card metadata (YAML front matter)", f"```yaml\n{hf}\n```"))
    return "\n\n".join(out) + "\n"


def _slice_rows(performance: list[dict[str, Any]]) -> dict[str, list[list[Any]]]:
    grouped: dict[str, dict[str, dict[str, Any]]] = {}
    for p in performance:
        if p["slice"] == "overall" or p["split"] != "test":
            continue
        column, _, value = p["slice"].partition("=")
        grouped.setdefault(column, {}).setdefault(value, {})[p["type"]] = p["value"]
    return {
        column: [[f"`{value}`", *(vals.get(m) for m in SLICE_METRICS)] for value, vals in values.items()]
        for column, values in grouped.items()
    }


def _gate_markdown(gate: dict[str, Any], candidate_metrics: dict[str, Any]) -> str:
    parts = []
    if gate.get("record") is None:
        return "_No gate record found for this version._"
    parts.append(
        f"Gate record `{gate['record']}`: **{'passed' if gate['passed'] else 'failed'}**, decision "
        f"**{gate['decision']}**. Primary metric `{gate['primary_metric']}`, champion tolerance "
        f"{_num(gate['tolerance'])}."
    )
    parts.append(
        _table(
            ["check", "value", "rule", "threshold", "result"],
            [
                [c["name"], c["value"], c["op"], c["threshold"], "pass" if c["passed"] else "FAIL"]
                for c in gate["checks"]
            ],
        )
    )
    if gate.get("promotion_reason"):
        parts.append(f"Promotion decision: {gate['promotion_reason']}.")
    champion = gate.get("champion")
    if champion is None:
        parts.append("Champion comparison: there was no champion when this model was trained.")
    else:
        head = f"Champion comparison with `{champion['version']}` ({champion.get('model_type')})"
        if champion.get("comparable"):
            head += ", both measured on this run's test split:"
        else:
            head += f": not comparable ({champion.get('reason')}); its stored metrics are shown."
        parts.append(head)
        if champion.get("metrics"):
            parts.append(
                _table(
                    ["metric", "champion", "this model", "change"], diff_rows(candidate_metrics, champion["metrics"])
                )
            )
    return "\n\n".join(parts)


def _lineage_markdown(card: dict[str, Any]) -> str:
    lin = card["lineage"]
    ds = lin["dataset"]
    ml = lin.get("mlflow")
    audit = lin["audit"]
    version = card["version"]
    rows = [
        ["commit", f"`{lin['commit']}`"],
        ["dataset", f"{ds['source']}{' (synthetic: yes)' if ds['synthetic'] else ''} `{ds['sha256']}`"],
        ["MLflow run", f"`{ml['run_id']}` (parent `{ml['parent_run_id']}`)" if ml else "not tracked"],
        ["MLflow model", f"`{ml['registered_model']}` version {ml['model_version']}" if ml else "not registered"],
    ]
    for kind in ("gate_decision", "promotion"):
        e = audit.get(kind)
        if e:
            ck = e.get("checkpoint")
            where = (
                (
                    f"checkpoint #{ck['index']} (size {ck['size']}, root `{_short(ck['root'], 16)}`"
                    f"{', signed' if ck.get('signed') else ''})"
                )
                if ck
                else "no checkpoint covers it yet"
            )
            rows.append([f"audit: {kind}", f"seq {e['seq']}, leaf `{_short(e['leaf_hash'], 16)}`, in {where}"])
        elif kind == "promotion":
            rows.append(
                [
                    "audit: promotion",
                    "none: this version was not promoted" if audit.get("available") else "audit log not available",
                ]
            )
    out = [_table(["what", "value"], rows)]
    seq = (audit.get("promotion") or audit.get("gate_decision") or {}).get("seq")
    if seq is not None:
        out.append(
            "How to verify: this prints the lineage and writes an inclusion proof of the audit entry; "
            "`check-proof` verifies it offline against the checkpoint, and `verify` re-hashes the whole log.\n\n"
            f"```sh\nmlops lineage {version} --proof-out proof.json\nmlops audit check-proof proof.json\n"
            "mlops audit verify\n```"
        )
    return "\n\n".join(out)


# ---------------------------------------------------------------------------------------------- plots

# Everything that could make two renders of the same numbers differ is pinned: defaults instead of the
# user's matplotlibrc, one bundled font, fixed size and dpi, and no Software/time metadata in the PNG.
_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "savefig.dpi": 100,
    "figure.dpi": 100,
    "path.simplify": False,
}
_PNG_METADATA = {"Software": None}


def _figure(width: float, height: float, *, left: float = 0.6, bottom: float = 0.5) -> tuple[Any, Any]:
    """A figure with fixed margins in inches: tight_layout would cost an extra full draw per plot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=left / width, right=1 - 0.15 / width, bottom=bottom / height, top=1 - 0.35 / height)
    return fig, fig.add_subplot(1, 1, 1)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata=_PNG_METADATA)
    return buf.getvalue()


def _note(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _plot_roc(card: dict[str, Any]) -> bytes:
    qa = card["quantitative_analysis"]
    auc = next(
        (
            p["value"]
            for p in qa["performance_metrics"]
            if p["type"] == "roc_auc" and p["slice"] == "overall" and p["split"] == "test"
        ),
        None,
    )
    fig, ax = _figure(4.5, 4.0)
    if qa.get("roc"):
        xs = [pt[0] for pt in qa["roc"]]
        ys = [pt[1] for pt in qa["roc"]]
        ax.plot(xs, ys, color="#1f77b4", linewidth=2, label=f"model (AUC {_num(auc)})")
        ax.plot([0, 1], [0, 1], color="#888888", linestyle="--", linewidth=1, label="chance")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(loc="lower right")
    else:
        _note(ax, "ROC curve not recorded")
    ax.set_title("ROC curve (test split)")
    return _png(fig)


def _plot_reliability(card: dict[str, Any]) -> bytes:
    qa = card["quantitative_analysis"]
    ece = next(
        (
            p["value"]
            for p in qa["performance_metrics"]
            if p["type"] == "ece" and p["slice"] == "overall" and p["split"] == "test"
        ),
        None,
    )
    bins = [b for b in qa["reliability"] if b["count"]]
    fig, ax = _figure(4.5, 4.0)
    if bins:
        width = bins[0]["bin_high"] - bins[0]["bin_low"]
        ax.bar(
            [b["bin_low"] for b in bins],
            [b["observed_rate"] for b in bins],
            width=width * 0.9,
            align="edge",
            color="#1f77b4",
            alpha=0.7,
            label="observed positive rate",
        )
        ax.plot(
            [b["mean_predicted"] for b in bins],
            [b["observed_rate"] for b in bins],
            "o",
            color="#d62728",
            label="bin mean predicted",
        )
        ax.plot([0, 1], [0, 1], color="#888888", linestyle="--", linewidth=1, label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_xlabel("predicted probability")
        ax.set_ylabel("observed positive rate")
        ax.legend(loc="upper left")
    else:
        _note(ax, "reliability not recorded")
    ax.set_title(f"Reliability diagram (ECE {_num(ece)})")
    return _png(fig)


def _plot_confusion(card: dict[str, Any]) -> bytes:
    c = card["quantitative_analysis"].get("confusion")
    fig, ax = _figure(4.0, 3.6, left=0.75)
    if c:
        grid = [[c["tp"], c["fn"]], [c["fp"], c["tn"]]]
        top = max(max(row) for row in grid) or 1
        ax.imshow(grid, cmap="Blues", vmin=0, vmax=top)
        for i in range(2):
            for j in range(2):
                ax.text(
                    j,
                    i,
                    str(grid[i][j]),
                    ha="center",
                    va="center",
                    fontsize=12,
                    color="white" if grid[i][j] > top / 2 else "black",
                )
        ax.set_xticks([0, 1], ["predicted +", "predicted −"])
        ax.set_yticks([0, 1], ["actual +", "actual −"])
        ax.grid(False)
    else:
        _note(ax, "confusion matrix not recorded")
    ax.set_title(f"Confusion matrix (threshold {(c or {}).get('threshold', 0.5):g})")
    return _png(fig)


def _plot_slices(card: dict[str, Any]) -> bytes:
    sliced = _slice_rows(card["quantitative_analysis"]["performance_metrics"])
    labels, acc, f1 = [], [], []
    ia, if1 = 1 + SLICE_METRICS.index("accuracy"), 1 + SLICE_METRICS.index("f1")
    for column, rows in sliced.items():
        for row in rows:
            labels.append(f"{column}={row[0].strip('`')}")
            acc.append(row[ia] or 0.0)
            f1.append(row[if1] or 0.0)
    # Room for the longest label at ~6 px per character of the 9 pt font.
    left = 0.25 + 0.075 * max((len(x) for x in labels), default=4)
    fig, ax = _figure(6.0, max(2.0, 0.45 * len(labels) + 1.2), left=left, bottom=0.75)
    if labels:
        ys = list(range(len(labels)))
        ax.barh([y - 0.2 for y in ys], acc, height=0.4, color="#1f77b4", label="accuracy")
        ax.barh([y + 0.2 for y in ys], f1, height=0.4, color="#ff7f0e", label="f1")
        ax.set_yticks(ys, labels)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        fig.legend(loc="lower center", ncol=2, frameon=False)
    else:
        _note(ax, "no slice columns configured")
    ax.set_title("Per-slice metrics (test split)")
    return _png(fig)


def render_plots(card: dict[str, Any]) -> dict[str, bytes]:
    """PNG bytes of every plot, a pure function of the card JSON (same card, same bytes)."""
    import matplotlib

    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(_STYLE)
        return {
            "roc": _plot_roc(card),
            "reliability": _plot_reliability(card),
            "confusion": _plot_confusion(card),
            "slices": _plot_slices(card),
        }


def warm_up() -> None:
    """Load matplotlib, its Agg backend and the fonts by drawing one small throw-away plot.

    The first plot in a process costs about 0.3 s more than the next ones. `mlops train` calls
    this on a worker thread while the models fit, and the child that write_for_versions forks
    inherits the warm state, so neither process pays it after the fits.
    """
    import matplotlib

    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(_STYLE)
        fig, ax = _figure(1.5, 1.5)
        ax.plot([0, 1], [0, 1], label="warm-up")
        ax.legend(loc="lower right")
        ax.set_title("warm-up")
        _png(fig)


# ---------------------------------------------------------------------------------------------- writing


def rendered_files(repo: Repo, card: dict[str, Any]) -> dict[Path, bytes]:
    """Every file a card consists of (JSON, Markdown, plots) and its exact bytes."""
    version = card["version"]
    try:
        files = {
            card_json_path(repo, version): jsonio.dumps(card).encode("utf-8"),
            card_md_path(repo, version): render_markdown(card).encode("utf-8"),
        }
        for name, data in render_plots(card).items():
            files[plot_path(repo, version, name)] = data
    except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
        # The schema leaves some generated parts optional; a hand edit that removes one must be
        # one clear line, not a traceback.
        raise BadInput(
            repo.rel(card_json_path(repo, version)),
            f"cannot be rendered: a generated field is missing or malformed ({type(exc).__name__}: {str(exc)[:80]})",
            f"restore it (`mlops card build {version}` rebuilds the card from the model's records), "
            "and edit only the team-written parts",
        ) from None
    return files


def _write(files: dict[Path, bytes]) -> None:
    for path, data in files.items():
        if not path.exists() or path.read_bytes() != data:  # unchanged files keep their mtime (quiet rebuilds)
            jsonio.atomic_write_bytes(path, data)


def write_card(cfg: Config, version: str) -> dict[str, Any]:
    """Build, validate and write one version's card; returns {'json', 'markdown', 'plots'} relative paths."""
    repo = cfg.repo
    card = build_card(cfg, version)
    validate(card, repo, repo.rel(card_json_path(repo, version)))
    files = rendered_files(repo, card)
    _write(files)
    return {
        "json": repo.rel(card_json_path(repo, version)),
        "markdown": repo.rel(card_md_path(repo, version)),
        "plots": [repo.rel(plot_path(repo, version, n)) for n in PLOTS],
    }


def write_for_versions(cfg: Config, versions: list[str]) -> None:
    """Write several versions' cards; on a POSIX machine with two or more cores, half in a forked child.

    Rendering the plots is single-threaded Python and matplotlib, so `mlops train` (four cards
    by default) spends half the time when a second core takes every other card. A child that
    fails or dies leaves its cards to the parent, which writes them itself.
    """
    versions = list(versions)
    if len(versions) < 2 or (os.cpu_count() or 1) < 2 or not hasattr(os, "fork"):
        for version in versions:
            write_for_version(cfg, version)
        return
    mine, theirs = versions[0::2], versions[1::2]
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: its share of the cards, then leave without running the parent's exit hooks
        code = 1
        try:
            for version in theirs:
                if "error" in write_for_version(cfg, version):
                    raise CheckFailed(f"card {version} not written")
            code = 0
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    for version in mine:
        write_for_version(cfg, version)
    _, status = os.waitpid(pid, 0)
    if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
        for version in theirs:  # the parent rewrites them: a card must never be silently missing
            write_for_version(cfg, version)


def write_for_version(cfg: Config, version: str) -> dict[str, Any]:
    """Called by `mlops train` for every candidate: a card failure warns, it never fails a recorded training run."""
    try:
        return write_card(cfg, version)
    except Exception as exc:  # noqa: BLE001 - the model, gate and audit are already recorded; the card can be rebuilt
        gha.warn(
            f"model card for {version} not written ({type(exc).__name__}: {exc}); "
            f"rebuild it with `mlops card build {version}`"
        )
        return {"error": f"{type(exc).__name__}: {exc}"}


def load_card(repo: Repo, version: str) -> dict[str, Any]:
    path = card_json_path(repo, version)
    if not path.exists():
        raise BadInput(repo.rel(path), "no card for this version", f"run `mlops card build {version}`")
    card = jsonio.read_json(path, "model card")
    validate(card, repo, repo.rel(path))
    if card.get("version") != version:
        raise BadInput(
            repo.rel(path), f"holds the card of {card.get('version')!r}", "rebuild it with `mlops card build`"
        )
    return card


def render(repo: Repo, version: str) -> list[str]:
    """Regenerate the Markdown and plots from the committed card JSON; returns the files that changed."""
    card = load_card(repo, version)
    files = {p: b for p, b in rendered_files(repo, card).items() if p != card_json_path(repo, version)}
    changed = [repo.rel(p) for p, b in files.items() if not p.exists() or p.read_bytes() != b]
    _write(files)
    return changed


def check(repo: Repo, version: str) -> None:
    """CheckFailed when the committed Markdown or plots differ from what the card JSON renders to."""
    card = load_card(repo, version)
    stale = []
    for path, data in rendered_files(repo, card).items():
        if path == card_json_path(repo, version):
            continue
        if not path.exists():
            stale.append(f"{repo.rel(path)} (missing)")
        elif path.read_bytes() != data:
            stale.append(repo.rel(path))
    if stale:
        raise CheckFailed(
            f"model card {version}: {', '.join(stale)} differ from what {repo.rel(card_json_path(repo, version))} "
            f"renders to; run `mlops card render {version}` and commit the changes"
        )


def all_card_versions(repo: Repo) -> list[str]:
    if not repo.cards.is_dir():
        return []
    return sorted(p.name[: -len(".json")] for p in repo.cards.glob("*.json"))
