"""`mlops monitor`: compare a window of the production prediction log with the current model's
reference profile, report, alert and record (docs/monitoring.md)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from mlops import gha, jsonio
from mlops.config import Config
from mlops.errors import BadInput

EVIDENTLY_SEED = 0


@dataclass(frozen=True)
class MonitorSettings:
    window_hours: float = 6.0
    min_rows: int = 500
    min_feedback_rows: int = 200
    roles: tuple[str, ...] = ("production", "canary")
    drift_threshold: float = 0.1
    p_value_threshold: float = 0.05
    accuracy_drop_threshold: float = 0.05
    evidently_report: bool = True
    evidently_sample_rows: int = 5000
    history_points: int = 120
    retrain_on_drift: bool = True
    on_malformed: str = "refuse"
    predictions: str = "datasets/production/predictions-*"
    feedback: str = "datasets/production/feedback-*"

    @classmethod
    def from_config(cls, cfg: Config) -> MonitorSettings:
        raw = dict(cfg.section("monitoring"))
        log = raw.pop("log", {})
        raw.pop("$schema", None)
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        if "roles" in known:
            known["roles"] = tuple(known["roles"])
        return cls(**known, **{k: log[k] for k in ("predictions", "feedback") if k in log})


def report_dir(cfg: Config) -> Any:
    return cfg.repo.reports / "monitoring"


def _window(settings: MonitorSettings, since: str | None, until: str | None) -> tuple[dt.datetime, dt.datetime]:
    end = jsonio.parse_utc(until, "--until") if until else jsonio.utc_now()
    start = jsonio.parse_utc(since, "--since") if since else end - dt.timedelta(hours=settings.window_hours)
    if start >= end:
        raise BadInput("--since", f"{jsonio.format_utc(start)} is not before {jsonio.format_utc(end)}",
                       "give a --since earlier than --until")  # fmt: skip
    return start, end


def load_profile_for_current(cfg: Config) -> tuple[dict, dict]:
    """(reference profile, manifest) of models/current, checked against the model's features."""
    from mlops import profile as prof
    from mlops import registry

    repo = cfg.repo
    manifest = registry.current_manifest(repo)
    if manifest is None:
        raise BadInput(repo.rel(repo.current), "no current model to monitor", "run `mlops train` first")
    path = repo.current / registry.PROFILE
    if not path.exists():
        raise BadInput(repo.rel(path), "the current model has no reference profile", "retrain with `mlops train`")
    profile = prof.load_reference_profile(path)
    model = manifest.get("features", {})
    for kind in ("numeric", "categorical"):
        want, have = list(model.get(kind, [])), list(profile["features"].get(kind, []))
        if sorted(want) != sorted(have):
            extra, missing = sorted(set(have) - set(want)), sorted(set(want) - set(have))
            raise BadInput(
                f"{repo.rel(path)}: /features/{kind}",
                f"does not match the model's {kind} features (profile only: {extra or '-'}; model only: "
                f"{missing or '-'})",
                "the profile belongs to another model: retrain so both are written together",
            )
    if profile.get("version") and manifest.get("version") and profile["version"] != manifest["version"]:
        raise BadInput(f"{repo.rel(path)}: /version", f"profile of {profile['version']}, model is "
                       f"{manifest['version']}", "retrain so both are written together")  # fmt: skip
    return profile, manifest


def _binary(values: Any, label: dict[str, Any], where: str) -> Any:
    """0/1 from values that are 0/1 or one of the model's class labels; anything else is refused.

    Mapping an unknown value to 0 would count it as a negative and could raise a false alarm.
    """
    import numpy as np

    positive = str(label.get("positive", 1))
    classes = {str(c) for c in label.get("classes", [])} | {positive}
    out = []
    for v in values:
        if isinstance(v, (int, float)) and v in (0, 1):
            out.append(int(v))
        elif str(v) in classes:
            out.append(int(str(v) == positive))
        else:
            known = ", ".join(sorted(classes | {"0", "1"}))
            raise BadInput(where, f"label value {str(v)[:40]!r} is not one of the model's classes ({known})",
                           "log labels as 0/1 or as the class values the model was trained on")  # fmt: skip
    return np.asarray(out, dtype=int)


def analyse(cfg: Config, since: str | None = None, until: str | None = None) -> dict[str, Any]:
    """Read the window, compute every statistic; no files written. Returns the report dict."""
    import numpy as np

    from mlops import drift, predlog
    from mlops import profile as prof
    from mlops.metrics import expected_calibration_error

    settings = MonitorSettings.from_config(cfg)
    start, end = _window(settings, since, until)
    profile, manifest = load_profile_for_current(cfg)
    features = list(profile["features"]["numeric"]) + list(profile["features"]["categorical"])
    log = predlog.read(cfg.repo, settings.predictions, "predictions", start, end, settings.on_malformed)
    current = [r for r in log.records if r["role"] in settings.roles]
    shadow = [r for r in log.records if r["role"] == "shadow" and "shadow" not in settings.roles]
    report: dict[str, Any] = {
        "window": {"since": jsonio.format_utc(start), "until": jsonio.format_utc(end)},
        "model_version": manifest.get("version"),
        "roles": list(settings.roles),
        "rows": len(current),
        "rows_by_role": {role: sum(1 for r in log.records if r["role"] == role) for role in predlog.ROLES},
        "log_files": [cfg.repo.rel(p) if "://" not in p else p for p in log.files],
        "skipped_lines": log.skipped,
        "min_rows": settings.min_rows,
        "thresholds": {
            "column": settings.drift_threshold,
            "p_value": settings.p_value_threshold,
            "share": cfg.schedule.performance_thresholds.drift_alert_threshold,
            "accuracy_drop": settings.accuracy_drop_threshold,
        },  # fmt: skip
    }
    if len(current) < settings.min_rows:
        report.update(outcome="insufficient_data", drift=False, accuracy_alarm=False)
        return report
    where = f"{settings.predictions} ({jsonio.format_utc(start)}..{jsonio.format_utc(end)})"
    frame = predlog.frame(current, features, where, profile["features"]["numeric"])
    rules = (settings.drift_threshold, settings.p_value_threshold)
    result = drift.compare(prof.references(profile), frame, *rules)
    importance = prof.importance(profile)
    weighted = drift.importance_weighted(result, importance)
    columns = []
    for c in result.columns:
        row = c.as_dict()
        row["importance"] = importance.get(c.column)
        columns.append(row)
    columns.sort(key=lambda r: (-(r["importance"] or 0.0), r["column"]))
    scores = frame["score"].to_numpy(dtype=float)
    predicted = frame["prediction"].to_numpy(dtype=int)  # 0/1, checked when the log was read
    score_drift = drift.numeric_drift(prof.score_reference(profile), scores, *rules)
    positive_rate = float(predicted.mean())
    report.update(
        outcome="drift" if result.dataset_drift(report["thresholds"]["share"]) else "ok",
        drift=result.dataset_drift(report["thresholds"]["share"]),
        drift_score=result.share,
        weighted_drift_score=weighted,
        drifted_features=result.drifted,
        columns=columns,
        prediction_drift=score_drift.as_dict(),
        positive_rate={
            "current": positive_rate,
            "reference": profile["positive_rate"],
            "shift": positive_rate - float(profile["positive_rate"]),
        },  # fmt: skip
    )
    if shadow:
        shadow_scores = np.asarray([r["score"] for r in shadow], dtype=float)
        report["shadow"] = {
            "rows": len(shadow),
            "versions": sorted({str(r["model_version"]) for r in shadow}),
            "mean_score": float(shadow_scores.mean()),
            "score_drift": drift.numeric_drift(prof.score_reference(profile), shadow_scores, *rules).as_dict(),
        }
    # Feedback for a window's predictions may arrive after the window closes: read it all, join by id.
    fb = predlog.read(cfg.repo, settings.feedback, "feedback", None, None, settings.on_malformed)
    labels = {str(r["request_id"]): r["label"] for r in sorted(fb.records, key=lambda r: r["time"])}
    ids = frame["request_id"].astype(str).tolist()
    have = np.array([i in labels for i in ids], dtype=bool)
    feedback: dict[str, Any] = {"rows": int(have.sum()), "min_rows": settings.min_feedback_rows,
                                "skipped_lines": fb.skipped}  # fmt: skip
    accuracy_alarm = False
    if have.sum() >= settings.min_feedback_rows:
        y = _binary([labels[i] for i, h in zip(ids, have, strict=True) if h], manifest.get("label", {}),
                    f"{settings.feedback}: label")  # fmt: skip
        acc = float(np.mean(predicted[have] == y))
        ece = expected_calibration_error(y, np.clip(scores[have], 0, 1), bins=cfg.training.ece_bins)
        ref = profile["metrics"]
        drop = float(ref["accuracy"]) - acc
        accuracy_alarm = drop > settings.accuracy_drop_threshold
        feedback.update(accuracy=acc, reference_accuracy=ref["accuracy"], accuracy_drop=drop, ece=ece,
                        reference_ece=ref["ece"], ece_change=ece - float(ref["ece"]))  # fmt: skip
    report["feedback"] = feedback
    report["accuracy_alarm"] = accuracy_alarm
    report["_frame"] = frame  # for the Evidently report; stripped before writing
    return report


# ---------------------------------------------------------------------------- writing


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-3 and v != 0 else f"{v:.4f}"
    return str(v)


def markdown(report: dict[str, Any]) -> str:
    """The human summary: outcome, headline numbers and the per-feature table."""
    w = report["window"]
    head = f"## Monitoring {w['since']} → {w['until']}\n\n"
    head += f"Model `{report['model_version']}` · outcome **{report['outcome']}**"
    lines = [head, ""]
    if report["outcome"] == "insufficient_data":
        lines.append(f"Only {report['rows']} prediction rows (roles {', '.join(report['roles'])}) in the window; "
                     f"at least {report['min_rows']} are needed. Nothing was judged.")  # fmt: skip
        return "\n".join(lines) + "\n"
    t = report["thresholds"]
    pr = report["positive_rate"]
    facts = [
        ("rows", report["rows"]),
        ("drift score (share of drifted features)", f"{report['drift_score']:.4f} (alarm at ≥ {t['share']})"),
        ("importance-weighted drift score", _fmt(report["weighted_drift_score"])),
        ("drifted features", ", ".join(report["drifted_features"]) or "none"),
        ("prediction drift (score, normed Wasserstein)", _fmt(report["prediction_drift"]["score"])),
        ("positive rate (current / reference / shift)",
         f"{pr['current']:.4f} / {pr['reference']:.4f} / {pr['shift']:+.4f}"),
    ]  # fmt: skip
    fb = report["feedback"]
    if "accuracy" in fb:
        facts += [
            ("accuracy (current / reference / drop)",
             f"{fb['accuracy']:.4f} / {fb['reference_accuracy']:.4f} / {fb['accuracy_drop']:+.4f} "
             f"(alarm above {t['accuracy_drop']})"),
            ("ECE (current / reference / change)",
             f"{fb['ece']:.4f} / {fb['reference_ece']:.4f} / {fb['ece_change']:+.4f}"),
        ]  # fmt: skip
    else:
        facts.append(("labelled rows", f"{fb['rows']} (accuracy judged from {fb['min_rows']})"))
    if "shadow" in report:
        facts.append(("shadow rows (not in the drift numbers)", report["shadow"]["rows"]))
    if report["skipped_lines"]:
        facts.append(("malformed log lines skipped", len(report["skipped_lines"])))
    lines += [gha.md_table(["", "value"], facts), "", "### Per feature (most important first)", ""]
    rows = [
        (c["column"], c["kind"], c["method"], _fmt(c["score"]), _fmt(c["threshold"]),
         "**yes**" if c["drifted"] else "no", _fmt(c["psi"]), _fmt(c["importance"]),
         c["n_current"], c["missing_current"])
        for c in report["columns"]
    ]  # fmt: skip
    headers = ["feature", "type", "test", "value", "threshold", "drift", "PSI", "importance", "rows", "missing"]
    lines.append(gha.md_table(headers, rows))
    if report.get("evidently_html"):
        lines += ["", f"Evidently's HTML report (sample of {report['evidently_sample_rows']} rows): "
                      f"`{report['evidently_html']}` (workflow artifact; not committed)."]  # fmt: skip
    lines += ["", "![drift score history](trend.png)"]
    return "\n".join(lines) + "\n"


def _history(cfg: Config, settings: MonitorSettings, report: dict[str, Any]) -> list[dict]:
    path = report_dir(cfg) / "history.json"
    history = jsonio.read_json(path, "monitoring history") if path.exists() else []
    if not isinstance(history, list):
        raise BadInput(cfg.repo.rel(path), "must be a JSON list", "fix or delete the file")
    for i, h in enumerate(history):
        if not (isinstance(h, dict) and isinstance(h.get("until"), str)):
            raise BadInput(f"{cfg.repo.rel(path)}: /{i}", 'expected an object with an "until" time', "fix or delete it")
    entry = {
        "until": report["window"]["until"], "outcome": report["outcome"], "rows": report["rows"],
        "drift_score": report.get("drift_score"), "weighted_drift_score": report.get("weighted_drift_score"),
        "accuracy_drop": report.get("feedback", {}).get("accuracy_drop"), "model_version": report["model_version"],
    }  # fmt: skip
    history = [h for h in history if h.get("until") != entry["until"]] + [entry]
    history.sort(key=lambda h: h["until"])
    return history[-settings.history_points :]


def trend_png(history: list[dict], threshold: float) -> bytes:
    """Drift score history as PNG with deterministic bytes (Agg, no timestamps in metadata)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(i, h) for i, h in enumerate(history) if h.get("drift_score") is not None]
    fig, ax = plt.subplots(figsize=(8, 3), dpi=100)
    try:
        xs = [i for i, _ in points]
        ax.plot(xs, [h["drift_score"] for _, h in points], marker="o", label="share of drifted features")
        weighted = [(i, h["weighted_drift_score"]) for i, h in points if h.get("weighted_drift_score") is not None]
        if weighted:
            ax.plot([i for i, _ in weighted], [v for _, v in weighted], marker=".", label="importance-weighted")
        ax.axhline(threshold, color="red", linestyle="--", label=f"alarm threshold {threshold}")
        ax.set_ylim(0, 1)
        ax.set_ylabel("drift score")
        if history:
            ticks = sorted({0, len(history) - 1})
            ax.set_xticks(ticks, [history[i]["until"][:16] for i in ticks])
        ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        return buf.getvalue()
    finally:
        plt.close(fig)


def evidently_html(report: dict[str, Any], profile: dict, settings: MonitorSettings) -> str:
    """Evidently's own drift report on a seeded sample of the window and a sample drawn from the profile."""
    import os

    os.environ.setdefault("DO_NOT_TRACK", "1")
    import numpy as np
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numeric, categorical = profile["features"]["numeric"], profile["features"]["categorical"]
    frame = report["_frame"]
    k = min(settings.evidently_sample_rows, len(frame))
    cur = frame.sample(n=k, random_state=EVIDENTLY_SEED)[numeric + categorical].reset_index(drop=True)
    cur[numeric] = cur[numeric].astype(float)
    ref = pd.DataFrame({c: reference_sample(profile, c, settings.evidently_sample_rows) for c in numeric + categorical})
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=definition), Dataset.from_pandas(ref, data_definition=definition)
    )
    del np
    return snapshot.get_html_str(as_iframe=False)


def reference_sample(profile: dict, column: str, rows: int) -> Any:
    """`rows` values with the profile's marginal distribution (stratified quantiles, seeded shuffle)."""
    import numpy as np

    col = profile["columns"][column]
    rng = np.random.default_rng(EVIDENTLY_SEED)
    u = (np.arange(rows) + 0.5) / rows
    if "quantiles" in col:
        values = np.interp(u, profile["quantile_levels"], col["quantiles"])
    else:
        counts = np.asarray(col["counts"], dtype=float)
        idx = np.searchsorted(np.cumsum(counts) / counts.sum(), u, side="right")
        pool = np.asarray(col["values"], dtype=object if col["kind"] == "categorical" else float)
        values = pool[np.minimum(idx, len(pool) - 1)]
    return values[rng.permutation(rows)]


# ---------------------------------------------------------------------------- the whole run


def _state(cfg: Config) -> dict[str, Any]:
    """state.json: per alert key, the open fingerprints, the clean runs since, the last window counted."""
    path = report_dir(cfg) / "state.json"
    state = jsonio.read_json(path, "monitoring state") if path.exists() else {}
    fix = "fix it or delete it (the next runs rebuild it; open issues are then closed by `mlops alerts resolve`)"
    if not isinstance(state, dict):
        raise BadInput(cfg.repo.rel(path), "must be a JSON object", fix)
    for key, entry in state.items():
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("open"), list)
            and all(isinstance(fp, str) for fp in entry["open"])
            and isinstance(entry.get("clean_runs"), int)
            and isinstance(entry.get("counted_until", ""), str)
        ):
            raise BadInput(f"{cfg.repo.rel(path)}: /{key}", 'expected {"open": [fingerprints], "clean_runs": n}', fix)
    return state


def _track(state: dict, key: str, fingerprint: str, alarm: bool | None, needed: int, until: str) -> bool:
    """Update one alert's clean-run count; True when its open alerts have recovered.

    A window counts once: running the same window again, or an older one, adds no clean run.
    """
    entry = state.setdefault(key, {"open": [], "clean_runs": 0})
    if alarm is None:  # not judged this run (too few rows or labels): neither clean nor alarming
        return False
    if alarm:
        entry["open"] = sorted(set(entry["open"]) | {fingerprint})
        entry.update(clean_runs=0, counted_until=max(until, entry.get("counted_until", "")))
        return False
    if not entry["open"] or until <= entry.get("counted_until", ""):
        return False
    entry.update(clean_runs=entry["clean_runs"] + 1, counted_until=until)
    return entry["clean_runs"] >= needed


def run(cfg: Config, since: str | None = None, until: str | None = None) -> dict[str, Any]:
    """Analyse the window, write reports, record the audit event, raise/resolve alerts, set outputs."""
    from mlops import alerts, audit
    from mlops import profile as prof

    settings = MonitorSettings.from_config(cfg)
    repo = cfg.repo
    report = analyse(cfg, since, until)  # every BadInput happens here, before anything is written
    frame = report.pop("_frame", None)
    out = report_dir(cfg)
    stamp = report["window"]["until"].replace("-", "").replace(":", "")
    threshold = cfg.schedule.performance_thresholds.drift_alert_threshold
    if frame is not None and settings.evidently_report:
        profile, _ = load_profile_for_current(cfg)
        html_path = out / "html" / f"{stamp}.html"
        report["_frame"] = frame
        text = evidently_html(report, profile, settings)
        del report["_frame"]
        # HTML reports are MBs of inlined JS: kept out of git by html/.gitignore, uploaded as an artifact.
        jsonio.write_text(out / "html" / ".gitignore", "*\n!.gitignore\n")
        jsonio.write_text(html_path, text)
        report["evidently_html"] = repo.rel(html_path)
        report["evidently_sample_rows"] = min(settings.evidently_sample_rows, len(frame))
    del prof
    state = _state(cfg)  # both read and checked before anything is written
    history = _history(cfg, settings, report)
    jsonio.write_json(out / f"{stamp}.json", report)
    md = markdown(report)
    jsonio.write_text(out / f"{stamp}.md", md)
    jsonio.write_text(out / "latest.md", md)
    jsonio.write_json(out / "history.json", history)
    jsonio.atomic_write_bytes(out / "trend.png", trend_png(history, threshold))

    judged = report["outcome"] != "insufficient_data"
    fb = report.get("feedback", {})
    payload = {
        "window": report["window"], "outcome": report["outcome"], "rows": report["rows"],
        "model_version": report["model_version"], "drift_score": report.get("drift_score"),
        "weighted_drift_score": report.get("weighted_drift_score"),
        "drifted_features": report.get("drifted_features", []), "accuracy_drop": fb.get("accuracy_drop"),
        "report": repo.rel(out / f"{stamp}.json"),
    }  # fmt: skip
    entry = audit.record(repo, "monitoring_run", payload)
    report["audit_seq"] = entry.get("seq")
    if report.get("drift"):
        audit.record(repo, "drift_detected", payload)

    version = report["model_version"]
    needed = cfg.alerts.resolve_after_clean_runs
    drift_fp = alerts.make_fingerprint("drift", "monitoring", version)
    acc_fp = alerts.make_fingerprint("regression", "monitoring", version)
    recovered = [
        key
        for key, fp, alarm in (
            ("drift", drift_fp, report.get("drift") if judged else None),
            ("accuracy", acc_fp, report.get("accuracy_alarm") if judged and "accuracy" in fb else None),
        )
        if _track(state, key, fp, alarm, needed, report["window"]["until"])
    ]
    # Written before GitHub is contacted: an alert that fails below is still known to be open.
    jsonio.write_json(out / "state.json", state)

    actions: dict[str, Any] = {}
    refused: list[BadInput] = []

    def attempt(name: str, deliver: Any) -> bool:
        """One delivery; a refusal (bad token, missing workflow) is reported after the others ran."""
        try:
            actions[name] = deliver()
            return True
        except BadInput as exc:
            refused.append(exc)
            actions[name] = {"status": "refused", "error": str(exc)}
            return False

    links = {"report": repo.rel(out / f"{stamp}.md"), "trend": repo.rel(out / "trend.png")}
    if report.get("drift"):
        top = ", ".join(report["drifted_features"][:8])
        attempt("drift_alert", lambda: alerts.raise_alert(cfg, alerts.Alert(
            kind="drift", title=f"Data drift on model {version}",
            summary=f"{len(report['drifted_features'])} of {len(report['columns'])} features drifted "
                    f"(share {report['drift_score']:.3f} ≥ {threshold}): {top}.",
            facts={"window": f"{report['window']['since']} → {report['window']['until']}", "rows": report["rows"],
                   "drift score": round(report["drift_score"], 4),
                   "importance-weighted": _fmt(report["weighted_drift_score"]),
                   "drifted": top, "prediction drift": _fmt(report["prediction_drift"]["score"])},
            evidence={"columns": [c for c in report["columns"] if c["drifted"]]},
            fingerprint=drift_fp, links=links,
        )))  # fmt: skip
        if settings.retrain_on_drift:
            attempt("retrain", lambda: alerts.dispatch_retrain(cfg, f"drift on {top} (monitoring {stamp})"))
    if report.get("accuracy_alarm"):
        attempt("accuracy_alert", lambda: alerts.raise_alert(cfg, alerts.Alert(
            kind="regression", title=f"Accuracy drop in production for model {version}",
            summary=f"Accuracy on {fb['rows']} labelled rows is {fb['accuracy']:.4f}, "
                    f"{fb['accuracy_drop']:.4f} below the test split's {fb['reference_accuracy']:.4f}.",
            facts={"accuracy": round(fb["accuracy"], 4), "reference": round(fb["reference_accuracy"], 4),
                   "drop": round(fb["accuracy_drop"], 4), "ECE change": round(fb["ece_change"], 4),
                   "labelled rows": fb["rows"]},
            evidence={"feedback": fb}, fingerprint=acc_fp, severity="critical", links=links,
            extra_labels=("needs-attention",),
        )))  # fmt: skip
    for key in recovered:
        entry = state[key]
        reason = f"{entry['clean_runs']} consecutive clean monitoring runs (last {stamp})"
        still_open = []
        for fp in entry["open"]:
            if not attempt(f"{key}_resolved", lambda fp=fp, why=reason: alerts.resolve(cfg, fp, why)):
                still_open.append(fp)
        entry.update(open=still_open, clean_runs=0 if not still_open else entry["clean_runs"])
    if recovered:
        jsonio.write_json(out / "state.json", state)
    report["actions"] = {k: {kk: v.get(kk) for kk in ("status", "issue", "url", "dispatched") if kk in v}
                         for k, v in actions.items()}  # fmt: skip
    gha.set_outputs(
        drift=bool(report.get("drift")),
        drift_score=f"{report['drift_score']:.4f}" if judged else "",
        accuracy_drop=f"{fb['accuracy_drop']:.4f}" if "accuracy_drop" in fb else "",
        outcome=report["outcome"],
        report=repo.rel(out / f"{stamp}.md"),
    )
    gha.add_summary(md)
    if refused:  # the reports, audit entries and state are written; the configuration problem still fails the run
        raise refused[0]
    return report
