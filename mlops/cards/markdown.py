"""The card's Markdown (Mitchell et al.'s headings), a pure function of the card JSON, one function per section.

Also the metric diff against the champion that the card's gate section and the PR experiment report share.
"""

from __future__ import annotations

from typing import Any

from mlops import markdown
from mlops.cards.build import HIGHER_IS_BETTER, LOWER_IS_BETTER, SLICE_METRICS, TEAM_FILE, ordered_metrics
from mlops.cards.hub import front_matter

TEAM_MISSING = f"not written: edit {TEAM_FILE} (docs/model-cards.md)"


# ---------------------------------------------------------------------------------------------- pieces


def number(value: Any) -> str:
    """A card value as text: n/a for a missing one, yes/no, integers as they are, floats to four decimals."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    return markdown.table(headers, rows, fmt=number)


def _bullets(items: list[str], empty: str) -> str:
    if not items:
        return f"_{empty}_"
    return "\n".join(f"- {i}" for i in items)


def _descriptions(items: list[dict[str, str]], empty: str) -> str:
    return _bullets([u["description"] for u in items], empty)


def _details(summary: str, body: str) -> str:
    # The blank lines after <summary> and before </details> let GitHub render Markdown inside.
    return f"<details>\n<summary>{summary}</summary>\n\n{body}\n\n</details>"


def _short(sha: Any, n: int = 12) -> str:
    return str(sha)[:n] if sha else "n/a"


def overall_test(performance: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The metrics of the whole test split (not validation, not a slice)."""
    return [p for p in performance if p["slice"] == "overall" and p["split"] == "test"]


def slice_rows(performance: list[dict[str, Any]]) -> dict[str, list[list[Any]]]:
    """Per slice column, one row per value: the value in backticks, then the SLICE_METRICS (None when absent)."""
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


def slice_table(card: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per slice column (or `a x b` intersection), one entry per value: n, metrics, intervals, too small or not."""
    qa = card["quantitative_analysis"]
    least = qa.get("min_slice_rows") or 0
    grouped: dict[str, dict[str, dict[str, Any]]] = {}
    for p in qa["performance_metrics"]:
        if p["slice"] == "overall" or p["split"] != "test":
            continue
        column, _, value = p["slice"].partition("=")
        entry = grouped.setdefault(column, {}).setdefault(value, {"value": value, "metrics": {}, "ci": {}})
        entry["metrics"][p["type"]] = p["value"]
        if p.get("confidence_interval"):
            entry["ci"][p["type"]] = (p["confidence_interval"]["lower_bound"], p["confidence_interval"]["upper_bound"])
    out = {}
    for column, values in grouped.items():
        out[column] = []
        for entry in values.values():
            entry["n"] = entry["metrics"].get("n") or 0
            entry["small"] = entry["n"] < least
            out[column].append(entry)
    return out


def interval(ci: tuple[float, float] | None) -> str:
    return f"{number(ci[0])} – {number(ci[1])}" if ci else ""


# ---------------------------------------------------------------------------------------------- metric diff


def diff_rows(candidate: dict[str, Any], champion: dict[str, Any]) -> list[list[Any]]:
    """Rows (metric, champion, candidate, change) over the metrics both have, as `dvc metrics diff` lists them."""
    rows = []
    for name in ordered_metrics({**champion, **candidate}):
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


# ---------------------------------------------------------------------------------------------- the card


def render_markdown(card: dict[str, Any]) -> str:
    """The card's Markdown: a pure function of the card JSON (so `mlops card render` reproduces it)."""
    sections = (
        _title,
        _model_details,
        _intended_use,
        _factors,
        _metrics,
        _evaluation_data,
        _training_data,
        _quantitative_analyses,
        _ethical_considerations,
        _caveats,
        _gate_and_lineage,
    )
    # Hugging Face model card metadata first, as the Hub reads it (huggingface_hub.metadata_load).
    return (
        front_matter(card["huggingface"])
        + "\n\n"
        + "\n\n".join(block for section in sections for block in section(card))
        + "\n"
    )


def _title(card: dict[str, Any]) -> list[str]:
    md = card["model_details"]
    ds = card["lineage"]["dataset"]
    gate = card["gate"]
    out = [f"# Model card: {md['name']} `{card['version']}`"]
    if md["synthetic_data"]:
        reason = f" The configured source was not used: {ds['fallback_reason']}." if ds.get("fallback_reason") else ""
        out.append(
            "> [!WARNING]\n> **Synthetic data.** This model was trained and evaluated on the seeded synthetic data "
            f"set (`{ds.get('detail')}`), not on real data.{reason} Its metrics describe the pipeline, "
            "not real customers."
        )
    decision = gate.get("decision") or "unknown"
    if decision != "promoted":
        reasons = gate.get("reasons") or []
        why = (
            ("The gate's reasons: " + "; ".join(reasons) + ".")
            if reasons
            else (
                "It passed the gate, but another candidate was promoted or the champion was kept"
                + (f": {gate['promotion_reason']}." if gate.get("promotion_reason") else ".")
            )
        )
        out.append(f"> [!IMPORTANT]\n> **Not promoted** (gate decision: {decision}). {why}")
    out.append(
        f"**{md['model_type']}** · trained {md['version']['date']} · gate: **{decision}**"
        + (" · REGRESSION" if gate.get("regression") else "")
    )
    return out


def _model_details(card: dict[str, Any]) -> list[str]:
    md = card["model_details"]
    lin = card["lineage"]
    owners = (
        ", ".join(o["name"] + (f" ({o['contact']})" if o.get("contact") else "") for o in md["owners"])
        or "_not set in config/model-card.json_"
    )
    licenses = ", ".join(x["identifier"] for x in md["licenses"]) or "_not set_"
    rows = [
        ["version", f"`{card['version']}`"],
        ["model type", md["model_type"]],
        ["architecture", card["model_parameters"]["model_architecture"]],
        ["trained", md["version"]["date"]],
        ["commit", f"`{lin['commit']}`"],
        ["seed", lin["seed"]],
        ["model sha256", f"`{lin['model_sha256']}`"],
        ["owners", owners],
        ["license", licenses],
        ["synthetic data", md["synthetic_data"]],
    ]
    out = ["## Model details", md["overview"], _table(["field", "value"], rows)]
    out.append(_hyperparameters(md.get("hyperparameters"), md.get("tuning")))
    if md.get("how_to_load"):
        out.append(_details("How to load this model", _how_to_load(card)))
    if md["references"]:
        out.append("References:\n\n" + _bullets([r["reference"] for r in md["references"]], ""))
    if md.get("citation"):
        out.append(_details("How to cite this model", f"```bibtex\n{md['citation']}\n```"))
    return out


def _hyperparameters(hp: dict[str, Any] | None, tuning: Any) -> str:
    if not hp:
        return "_Hyper-parameters: not recorded._"
    if "error" in hp:
        return f"_Hyper-parameters: the model file could not be read ({hp['error']})._"
    rows = [[f"`{k}`", f"`{v!r}`" if isinstance(v, str) else v] for k, v in hp["non_default"].items()]
    tuned = " (tuned: see the manifest's `hpo`)" if tuning else ""
    if isinstance(tuning, dict) and isinstance(tuning.get("default_cv"), (int, float)):  # mlops/hpo.py's summary
        best = "-" if tuning.get("best_cv") is None else f"{tuning['best_cv']:.4f}"
        study = f"{tuning.get('trials')} trials, {tuning.get('pruned')} pruned"
        tuned = (f" (tuned: {study}; CV {tuning.get('metric')} {best} against the defaults' "
                 f"{tuning['default_cv']:.4f}: {tuning.get('chosen')} parameters)")  # fmt: skip
    table = _table(["parameter", "value"], rows) if rows else "_every parameter at its scikit-learn default_"
    return _details(f"Hyper-parameters of `{hp['estimator']}` that differ from its defaults{tuned}", table)


def _how_to_load(card: dict[str, Any]) -> str:
    how = card["model_details"]["how_to_load"]
    version = card["version"]
    text = (
        "The skops file (check its sha256 first; `mlops` does):\n\n```python\nimport skops.io as sio\n\n"
        f"# models/current/model.skops while {version} is the champion, else models/candidates|archived/{version}/\n"
        f"model = sio.load(path, trusted={how['skops_trusted_types']!r})\n"
        f"score = model.predict_proba(rows)[:, -1]  # sha256 {how['model_sha256']}\n```"
    )
    if how.get("mlflow_model_uri"):
        text += (
            "\n\nFrom MLflow (the pyfunc answers the positive-class score):\n\n```python\nimport mlflow\n\n"
            f"score = mlflow.pyfunc.load_model({how['mlflow_model_uri']!r}).predict(rows)\n```\n\n"
            f"or `mlflow models serve -m {how['mlflow_model_uri']} --env-manager local`."
        )
    return text


def _intended_use(card: dict[str, Any]) -> list[str]:
    co = card["considerations"]
    return [
        "## Intended use",
        "**Primary uses**\n\n" + _descriptions(co["use_cases"], TEAM_MISSING),
        "**Primary users**\n\n" + _descriptions(co["users"], TEAM_MISSING),
        "**Out of scope**\n\n" + _descriptions(co["out_of_scope_uses"], TEAM_MISSING),
    ]


def _factors(card: dict[str, Any]) -> list[str]:
    factors = card["considerations"]["factors"]
    named = [f"{f['name']} (slice column `{f['slice']}`)" for f in factors["relevant"]]
    out = ["## Factors", _bullets(named, TEAM_MISSING)]
    if factors.get("evaluation"):
        out.append(factors["evaluation"])
    return out


def _metrics(card: dict[str, Any]) -> list[str]:
    performance = card["quantitative_analysis"]["performance_metrics"]
    val = {p["type"]: p["value"] for p in performance if p["split"] == "validation"}
    rows = []
    for p in overall_test(performance):
        ci = p.get("confidence_interval")
        interval = f"{number(ci['lower_bound'])} – {number(ci['upper_bound'])}" if ci else ""
        rows.append([p["type"], p["value"], interval, val.get(p["type"])])
    return [
        "## Metrics",
        "Held-out test split; decision threshold 0.5; 95 % intervals are percentile bootstrap resamples of the "
        "test split; ECE is the binned expected calibration error (lower is better).",
        _table(["metric", "test", "95 % interval", "validation"], rows),
    ]


def _split_rows(card: dict[str, Any], name: str) -> str:
    """The row count of one split (train, validation, test) as the card prints it."""
    by_name = {d["name"]: d for d in card["model_parameters"]["data"]}
    return number(by_name.get(name, {}).get("rows"))


def _evaluation_data(card: dict[str, Any]) -> list[str]:
    return [
        "## Evaluation data",
        f"The **test** split: {_split_rows(card, 'test')} rows held out by a stratified split "
        f"(seed {card['lineage']['seed']}) of the data set below; the validation split "
        f"({_split_rows(card, 'validation')} rows) is reported beside it.",
    ]


def _training_data(card: dict[str, Any]) -> list[str]:
    mp = card["model_parameters"]
    ds = card["lineage"]["dataset"]
    rows = [
        ["source", ds["source"] + (" (generated, not real data)" if ds["synthetic"] else "")],
        ["sha256", f"`{ds['sha256']}`"],
        ["path", f"`{ds['path']}`"],
        ["detail", ds.get("detail") or ""],
        ["fetched", ds.get("fetched_at")],
        ["source last updated", ds.get("updated_at")],
        ["rows", ds.get("rows")],
        ["train / validation / test rows", " / ".join(_split_rows(card, k) for k in ("train", "validation", "test"))],
        ["label", f"`{mp['label'].get('name')}` (positive: {mp['label'].get('positive')!r})"],
    ]
    prod = ds.get("production")
    if prod:  # the production source: which logged parts the rows came from (each sha256 in the card's JSON)
        parts = prod.get("parts") or {}
        rows.insert(4, ["production parts", f"{len(parts.get('predictions', []))} prediction and "
                        f"{len(parts.get('feedback', []))} feedback part(s) in `{prod.get('store')}`"])  # fmt: skip
    dv = card["lineage"].get("data_validation")
    if dv is None:
        validation = "Data validation: not recorded for this run."
    else:
        state = "passed" if dv.get("passed") else "FAILED" + (" (overridden)" if dv.get("overridden") else "")
        validation = f"Data validation: **{state}**" + (f", report `{dv['report']}`" if dv.get("report") else "") + "."
    feats = mp["input_format"]
    features = _table(
        ["feature", "kind"],
        [[f"`{f}`", "numeric"] for f in feats["numeric"]]
        + [[f"`{f}`", "categorical"] for f in feats["categorical"]]
        + [[f"`{f}`", "dropped (empty)"] for f in feats["dropped_empty"]],
    )
    summary = f"Features ({len(feats['numeric'])} numeric, {len(feats['categorical'])} categorical)"
    return ["## Training data", _table(["field", "value"], rows), validation, _details(summary, features)]


def _quantitative_analyses(card: dict[str, Any]) -> list[str]:
    qa = card["quantitative_analysis"]
    images = {g["name"]: g["image"] for g in qa["graphics"]["collection"]}
    out = ["## Quantitative analyses"]
    if qa.get("roc"):
        out.append(f"![ROC curve]({images['roc']}) ![Precision-recall curve]({images['pr']})")
        out.append("The marker on each curve is the operating point at the 0.5 decision threshold.")
    else:
        out.append("_ROC curve: not recorded (the test split had a single class, or the manifest has no `curves`)._")
    out.append(f"![Reliability diagram]({images['reliability']})")
    if qa.get("confusion"):
        c = qa["confusion"]
        out.append(f"![Confusion matrix]({images['confusion']})")
        out.append(
            _table(
                ["", "predicted positive", "predicted negative"],
                [["actual positive", c["tp"], c["fn"]], ["actual negative", c["fp"], c["tn"]]],
            )
        )
    else:
        out.append("_Confusion matrix: not recorded (the manifest has no `curves`)._")
    bins = [
        [f"{b['bin_low']:.2f}–{b['bin_high']:.2f}", b["count"], b["mean_predicted"], b["observed_rate"]]
        for b in qa["reliability"]
    ]
    reliability = _table(["bin", "count", "mean predicted", "observed rate"], bins)
    out.append(_details("Reliability table (calibration per probability bin)", reliability))
    out += _slices_markdown(qa, images)
    return out + _importance_markdown(qa, images)


def _slices_markdown(qa: dict[str, Any], images: dict[str, str]) -> list[str]:
    sliced = slice_table({"quantitative_analysis": qa})
    if not sliced:
        return ["_Per-slice metrics: no slice columns configured (config/dataset.json /slices)._"]
    least = qa.get("min_slice_rows") or 0
    out = [
        "### Per-slice metrics",
        f"![Per-slice metrics]({images['slices']})",
        f"Intervals: 95 % percentile bootstrap within each slice. A slice with fewer than {least} test rows is "
        "marked **too small to judge**: read its interval, not its value. `a x b` rows are intersections of two "
        "slice columns (only cells with at least that many rows).",
    ]
    headers = ["value", *SLICE_METRICS, "accuracy 95 %", "f1 95 %", "judged"]
    for column, entries in sliced.items():
        rows = [
            [f"`{e['value']}`", *(e["metrics"].get(m) for m in SLICE_METRICS), interval(e["ci"].get("accuracy")),
             interval(e["ci"].get("f1")), f"**too small to judge** (n < {least})" if e["small"] else "yes"]
            for e in entries
        ]  # fmt: skip
        out.append(_details(f"By `{column}` ({len(rows)} values)", _table(headers, rows)))
    return out


def _importance_markdown(qa: dict[str, Any], images: dict[str, str]) -> list[str]:
    imp = qa.get("importance")
    out = ["### Permutation importance", f"![Permutation importance]({images['importance']})"]
    if not imp or not imp.get("features"):
        return out + ["_Not computed for this version: only a promoted model gets a reference profile, where "
                      "permutation importance is measured._"]  # fmt: skip
    rows = sorted(imp["features"].items(), key=lambda kv: (-kv[1]["mean"], kv[0]))
    note = (
        f"Drop in test {imp['scoring']} (baseline {number(imp['baseline'])}) when one feature is shuffled, "
        f"mean and standard deviation over {imp['repeats']} repeats on {imp['rows']} test rows."
    )
    return out + [note, _table(["feature", "mean drop", "std"], [[f"`{f}`", v["mean"], v["std"]] for f, v in rows])]


def _ethical_considerations(card: dict[str, Any]) -> list[str]:
    eth = card["considerations"]["ethical_considerations"]
    if not eth:
        return ["## Ethical considerations", f"_{TEAM_MISSING}_"]
    rows = [[e["name"], e["mitigation_strategy"]] for e in eth]
    return ["## Ethical considerations", _table(["consideration", "mitigation"], rows)]


def _caveats(card: dict[str, Any]) -> list[str]:
    co = card["considerations"]
    out = ["## Caveats and recommendations"]
    if co["run_caveats"]:
        out.append("**From this run**\n\n" + _bullets(co["run_caveats"], ""))
    out.append("**Limitations**\n\n" + _descriptions(co["limitations"], TEAM_MISSING))
    if co["tradeoffs"]:
        out.append("**Trade-offs**\n\n" + _descriptions(co["tradeoffs"], ""))
    out.append("**Recommendations**\n\n" + _descriptions(co["caveats_and_recommendations"], TEAM_MISSING))
    conditional = [_condition(c) for c in co.get("conditional_recommendations") or []]
    if conditional:
        out.append(
            "**Conditional recommendations**, checked against this card's numbers\n\n" + _bullets(conditional, "")
        )
    return out


def _condition(c: dict[str, Any]) -> str:
    named = f" ({c['threshold_name']})" if c.get("threshold_name") else ""
    test = f"test {c['metric']} {number(c['value'])} {c['op']} {number(c['threshold'])}{named}"
    if c["applies"] is None:
        return f"_cannot be checked ({test}: a value is missing)_: {c['text']}"
    return f"**applies** ({test}): {c['text']}" if c["applies"] else f"_does not apply_ (not {test}): ~~{c['text']}~~"


def _gate_and_lineage(card: dict[str, Any]) -> list[str]:
    test = {p["type"]: p["value"] for p in overall_test(card["quantitative_analysis"]["performance_metrics"])}
    return ["## Gate and lineage", _gate_markdown(card["gate"], test), _lineage_markdown(card)]


def _gate_markdown(gate: dict[str, Any], candidate_metrics: dict[str, Any]) -> str:
    if gate.get("record") is None:
        return "_No gate record found for this version._"
    checks = [
        [c["name"], c["value"], c["op"], c["threshold"], "pass" if c["passed"] else "FAIL"] for c in gate["checks"]
    ]
    parts = [
        f"Gate record `{gate['record']}`: **{'passed' if gate['passed'] else 'failed'}**, decision "
        f"**{gate['decision']}**. Primary metric `{gate['primary_metric']}`, champion tolerance "
        f"{number(gate['tolerance'])}.",
        _table(["check", "value", "rule", "threshold", "result"], checks),
    ]
    if gate.get("promotion_reason"):
        parts.append(f"Promotion decision: {gate['promotion_reason']}.")
    champion = gate.get("champion")
    if champion is None:
        parts.append("Champion comparison: there was no champion when this model was trained.")
        return "\n\n".join(parts)
    head = f"Champion comparison with `{champion['version']}` ({champion.get('model_type')})"
    if champion.get("comparable"):
        head += ", both measured on this run's test split:"
    else:
        head += f": not comparable ({champion.get('reason')}); its stored metrics are shown."
    parts.append(head)
    if champion.get("metrics"):
        rows = diff_rows(candidate_metrics, champion["metrics"])
        parts.append(_table(["metric", "champion", "this model", "change"], rows))
    return "\n\n".join(parts)


def _lineage_markdown(card: dict[str, Any]) -> str:
    lin = card["lineage"]
    ds = lin["dataset"]
    ml = lin.get("mlflow")
    audit = lin["audit"]
    rows = [
        ["commit", f"`{lin['commit']}`"],
        ["dataset", f"{ds['source']}{' (synthetic: yes)' if ds['synthetic'] else ''} `{ds['sha256']}`"],
        ["MLflow run", f"`{ml['run_id']}` (parent `{ml['parent_run_id']}`)" if ml else "not tracked"],
        ["MLflow model", f"`{ml['registered_model']}` version {ml['model_version']}" if ml else "not registered"],
    ]
    for kind in ("gate_decision", "promotion"):
        entry = audit.get(kind)
        if entry:
            found = f"seq {entry['seq']}, leaf `{_short(entry['leaf_hash'], 16)}`, in {_covered_by(entry)}"
            rows.append([f"audit: {kind}", found])
        elif kind == "promotion":
            missing = "none: this version was not promoted" if audit.get("available") else "audit log not available"
            rows.append(["audit: promotion", missing])
    out = [_table(["what", "value"], rows)]
    seq = (audit.get("promotion") or audit.get("gate_decision") or {}).get("seq")
    if seq is not None:
        version = card["version"]
        out.append(
            "How to verify: this prints the lineage and writes an inclusion proof of the audit entry; "
            "`check-proof` verifies it offline against the checkpoint, and `verify` re-hashes the whole log.\n\n"
            f"```sh\nmlops lineage {version} --proof-out proof.json\nmlops audit check-proof proof.json\n"
            "mlops audit verify\n```"
        )
    return "\n\n".join(out)


def _covered_by(entry: dict[str, Any]) -> str:
    """Which checkpoint covers an audit entry, as the lineage table says it."""
    ck = entry.get("checkpoint")
    if not ck:
        return "no checkpoint covers it yet"
    signed = ", signed" if ck.get("signed") else ""
    return f"checkpoint #{ck['index']} (size {ck['size']}, root `{_short(ck['root'], 16)}`{signed})"
