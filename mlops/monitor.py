"""`mlops monitor`: compare a window of the production prediction log with the current model's
reference profile, report, alert and record (docs/monitoring.md).

One run is four steps, each done once:
- `load`: every input read and checked (window, model and profile, prediction log, feedback,
  state.json, history.json, the audit key); a BadInput here leaves the disk as it was;
- `analyse`: the statistics of the window, an `Analysis` (nothing written);
- `decide`: the alerts to raise, the retraining to ask for, the alerts that recovered and the
  new clean-run state, a `Decision` (nothing written);
- `record`: reports, audit events, state, alert deliveries, outputs.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any

from mlops import gha, jsonio, predlog
from mlops.config import Config, MonitoringConfig
from mlops.errors import BadInput

STATE_FIX = "fix it or delete it (the next runs rebuild it; open issues are then closed by `mlops alerts resolve`)"


def report_dir(cfg: Config) -> Any:
    return cfg.repo.reports / "monitoring"


# ---------------------------------------------------------------------------- load


@dataclass(frozen=True)
class Inputs:
    """Everything one run reads, read and checked before anything is written."""

    since: dt.datetime
    until: dt.datetime
    profile: dict
    manifest: dict
    log: predlog.LogRead
    current: list[dict]  # rows of the monitored roles
    shadow: list[dict]  # shadow rows, reported apart (unless shadow is a monitored role)
    frame: Any  # the current rows as a DataFrame; None when too few to judge
    feedback: predlog.LogRead | None  # read only when the window is judged
    state: dict[str, Any]
    history: list[dict]

    @property
    def stamp(self) -> str:
        return jsonio.format_utc(self.until).replace("-", "").replace(":", "")


def load(cfg: Config, since: str | None = None, until: str | None = None) -> Inputs:
    """Read and check every input of a run; the only step that may refuse bad input."""
    from mlops import audit
    from mlops.logstore import window

    mon = cfg.monitoring
    start, end = _window(mon, since, until)
    profile, manifest = load_profile_for_current(cfg)
    log = window.read_logs(cfg, "predictions", start, end, mon.on_malformed)  # the store and the log files
    current = [r for r in log.records if r["role"] in mon.roles]
    shadow = [r for r in log.records if r["role"] == "shadow" and "shadow" not in mon.roles]
    frame = feedback = None
    if len(current) >= mon.min_rows:
        numeric = profile["features"]["numeric"]
        features = list(numeric) + list(profile["features"]["categorical"])
        where = f"{mon.log.predictions} ({jsonio.format_utc(start)}..{jsonio.format_utc(end)})"
        frame = predlog.frame(current, features, where, numeric)
        # Feedback for a window's predictions arrives after them, maybe after the window closes: read all of
        # it since the window opened (store partitions from that hour on, every log file), join by id.
        feedback = window.read_logs(cfg, "feedback", start, None, mon.on_malformed)
    state, history = _read_state(cfg), _read_history(cfg)
    audit.check_can_record(cfg.repo)  # the run records events: a missing signing key is refused now
    return Inputs(start, end, profile, manifest, log, current, shadow, frame, feedback, state, history)


def _window(mon: MonitoringConfig, since: str | None, until: str | None) -> tuple[dt.datetime, dt.datetime]:
    end = jsonio.parse_utc(until, "--until") if until else jsonio.utc_now()
    start = jsonio.parse_utc(since, "--since") if since else end - dt.timedelta(hours=mon.window_hours)
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


def _read_state(cfg: Config) -> dict[str, Any]:
    """state.json: per alert key, the open fingerprints, the clean runs since, the last window counted."""
    path = report_dir(cfg) / "state.json"
    state = jsonio.read_json(path, "monitoring state", cfg.repo.rel(path)) if path.exists() else {}
    if not isinstance(state, dict):
        raise BadInput(cfg.repo.rel(path), "must be a JSON object", STATE_FIX)
    for key, entry in state.items():
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("open"), list)
            and all(isinstance(fp, str) for fp in entry["open"])
            and isinstance(entry.get("clean_runs"), int)
            and isinstance(entry.get("counted_until", ""), str)
        ):
            raise BadInput(f"{cfg.repo.rel(path)}: /{key}", 'expected {"open": [fingerprints], "clean_runs": n}',
                           STATE_FIX)  # fmt: skip
    return state


def _read_history(cfg: Config) -> list[dict]:
    path = report_dir(cfg) / "history.json"
    history = jsonio.read_json(path, "monitoring history", cfg.repo.rel(path)) if path.exists() else []
    if not isinstance(history, list):
        raise BadInput(cfg.repo.rel(path), "must be a JSON list", "fix or delete the file")
    for i, h in enumerate(history):
        if not (isinstance(h, dict) and isinstance(h.get("until"), str)):
            raise BadInput(f"{cfg.repo.rel(path)}: /{i}", 'expected an object with an "until" time', "fix or delete it")
    return history


# ---------------------------------------------------------------------------- analyse


@dataclass
class Analysis:
    """What one window shows. `report()` is the monitoring report as written (docs/monitoring.md)."""

    window: dict[str, str]
    model_version: str | None
    roles: list[str]
    rows: int
    rows_by_role: dict[str, int]
    log_files: list[str]
    skipped_lines: list[str]
    min_rows: int
    thresholds: dict[str, float]
    drift: Any = None  # drift.DriftResult; None when the window had too few rows to judge
    weighted_drift_score: float | None = None
    columns: list[dict] = field(default_factory=list)  # per feature, most important first
    prediction_drift: dict[str, Any] = field(default_factory=dict)
    positive_rate: dict[str, float] = field(default_factory=dict)
    shadow: dict[str, Any] | None = None
    feedback: dict[str, Any] = field(default_factory=dict)
    accuracy_alarm: bool = False

    @property
    def judged(self) -> bool:
        return self.drift is not None

    @property
    def drift_alarm(self) -> bool:
        return self.judged and self.drift.dataset_drift(self.thresholds["share"])

    @property
    def outcome(self) -> str:
        if not self.judged:
            return "insufficient_data"
        return "drift" if self.drift_alarm else "ok"

    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "window": self.window, "model_version": self.model_version, "roles": self.roles, "rows": self.rows,
            "rows_by_role": self.rows_by_role, "log_files": self.log_files, "skipped_lines": self.skipped_lines,
            "min_rows": self.min_rows, "thresholds": self.thresholds, "outcome": self.outcome,
            "drift": self.drift_alarm, "accuracy_alarm": self.accuracy_alarm,
        }  # fmt: skip
        if not self.judged:
            return report
        report.update(
            drift_score=self.drift.share, weighted_drift_score=self.weighted_drift_score,
            drifted_features=self.drift.drifted, columns=self.columns, prediction_drift=self.prediction_drift,
            positive_rate=self.positive_rate, feedback=self.feedback,
        )  # fmt: skip
        if self.shadow is not None:
            report["shadow"] = self.shadow
        return report


def analyse(cfg: Config, inputs: Inputs) -> Analysis:
    """Every statistic of the window; no files written."""
    import numpy as np

    from mlops import drift
    from mlops import profile as prof

    mon, repo, profile = cfg.monitoring, cfg.repo, inputs.profile
    analysis = Analysis(
        window={"since": jsonio.format_utc(inputs.since), "until": jsonio.format_utc(inputs.until)},
        model_version=inputs.manifest.get("version"),
        roles=list(mon.roles),
        rows=len(inputs.current),
        rows_by_role={role: sum(1 for r in inputs.log.records if r["role"] == role) for role in predlog.ROLES},
        log_files=[repo.rel(p) if "://" not in p else p for p in inputs.log.files],
        skipped_lines=inputs.log.skipped,
        min_rows=mon.min_rows,
        thresholds={
            "column": mon.drift_threshold,
            "p_value": mon.p_value_threshold,
            "share": cfg.schedule.performance_thresholds.drift_alert_threshold,
            "accuracy_drop": mon.accuracy_drop_threshold,
        },
    )
    frame = inputs.frame
    if frame is None:
        return analysis
    rules = (mon.drift_threshold, mon.p_value_threshold)
    result = drift.compare(prof.references(profile), frame, *rules)
    importance = prof.importance(profile)
    columns = [{**c.as_dict(), "importance": importance.get(c.column)} for c in result.columns]
    columns.sort(key=lambda r: (-(r["importance"] or 0.0), r["column"]))
    predicted = frame["prediction"].to_numpy(dtype=int)  # 0/1, checked when the log was read
    positive_rate = float(predicted.mean())
    score_reference = prof.score_reference(profile)
    analysis.drift = result
    analysis.weighted_drift_score = drift.importance_weighted(result, importance)
    analysis.columns = columns
    scores = frame["score"].to_numpy(dtype=float)
    analysis.prediction_drift = drift.numeric_drift(score_reference, scores, *rules).as_dict()
    analysis.positive_rate = {"current": positive_rate, "reference": profile["positive_rate"],
                              "shift": positive_rate - float(profile["positive_rate"])}  # fmt: skip
    if inputs.shadow:
        scores = np.asarray([r["score"] for r in inputs.shadow], dtype=float)
        analysis.shadow = {
            "rows": len(inputs.shadow),
            "versions": sorted({str(r["model_version"]) for r in inputs.shadow}),
            "mean_score": float(scores.mean()),
            "score_drift": drift.numeric_drift(score_reference, scores, *rules).as_dict(),
        }
    analysis.feedback, analysis.accuracy_alarm = _feedback(cfg, inputs)
    return analysis


# ---------------------------------------------------------------------------- render


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
        ev = report["evidently"]
        said = "drift detected" if ev["dataset_drift"] else "drift NOT detected"
        lines += ["", f"Evidently's HTML report (sample of {report['evidently_sample_rows']} rows, the alert's "
                      f"per-column methods and thresholds, drift share {ev['drift_share']}): "
                      f"`{report['evidently_html']}` (workflow artifact; not committed). Its verdict: {said} "
                      f"({ev['drifted_columns']} columns, share {ev['share']:.2f})"
                      + ("." if ev["dataset_drift"] == ev["alert_drift"] else
                         "; the alert, on the whole window, says otherwise.")]  # fmt: skip
    lines += ["", "![drift score history](trend.png)"]
    return "\n".join(lines) + "\n"


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


def _feedback(cfg: Config, inputs: Inputs) -> tuple[dict[str, Any], bool]:
    """(the feedback section, accuracy alarm): accuracy and ECE on the window's labelled rows."""
    import numpy as np

    from mlops.metrics import expected_calibration_error

    mon, frame, fb = cfg.monitoring, inputs.frame, inputs.feedback
    labels = {str(r["request_id"]): r["label"] for r in sorted(fb.records, key=lambda r: r["time"])}
    ids = frame["request_id"].astype(str).tolist()
    have = np.array([i in labels for i in ids], dtype=bool)
    feedback: dict[str, Any] = {"rows": int(have.sum()), "min_rows": mon.min_feedback_rows, "skipped_lines": fb.skipped}
    if have.sum() < mon.min_feedback_rows:
        return feedback, False
    y = _binary([labels[i] for i, h in zip(ids, have, strict=True) if h], inputs.manifest.get("label", {}),
                f"{mon.log.feedback}: label")  # fmt: skip
    scores = frame["score"].to_numpy(dtype=float)
    predicted = frame["prediction"].to_numpy(dtype=int)
    acc = float(np.mean(predicted[have] == y))
    ece = expected_calibration_error(y, np.clip(scores[have], 0, 1), bins=cfg.training.ece_bins)
    ref = inputs.profile["metrics"]
    drop = float(ref["accuracy"]) - acc
    feedback.update(accuracy=acc, reference_accuracy=ref["accuracy"], accuracy_drop=drop, ece=ece,
                    reference_ece=ref["ece"], ece_change=ece - float(ref["ece"]))  # fmt: skip
    return feedback, drop > mon.accuracy_drop_threshold


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


# ---------------------------------------------------------------------------- decide


@dataclass
class Decision:
    """What the run does about the window: alerts to raise, retraining to ask for, alerts recovered."""

    state: dict[str, Any]  # state.json after this window
    recovered: list[str]  # alert keys (drift, accuracy) whose open alerts are to be resolved
    drift_alert: Any = None  # alerts.Alert
    retrain_reason: str | None = None
    retrain_window: dict[str, str] | None = None  # {since, until}: the window the dispatched training reads
    accuracy_alert: Any = None  # alerts.Alert


def decide(cfg: Config, inputs: Inputs, analysis: Analysis) -> Decision:
    """The alerts and the new clean-run state; nothing is written or sent."""
    from mlops import alerts

    version, until, stamp = analysis.model_version, analysis.window["until"], inputs.stamp
    state = copy.deepcopy(inputs.state)
    drift_fp = alerts.make_fingerprint("drift", "monitoring", version)
    acc_fp = alerts.make_fingerprint("regression", "monitoring", version)
    judged_accuracy = analysis.judged and "accuracy" in analysis.feedback
    alarms = (
        ("drift", drift_fp, analysis.drift_alarm if analysis.judged else None),
        ("accuracy", acc_fp, analysis.accuracy_alarm if judged_accuracy else None),
    )
    needed = cfg.alerts.resolve_after_clean_runs
    recovered = [key for key, fp, alarm in alarms if _track(state, key, fp, alarm, needed, until)]
    decision = Decision(state=state, recovered=recovered)
    out = report_dir(cfg)
    links = {"report": cfg.repo.rel(out / f"{stamp}.md"), "trend": cfg.repo.rel(out / "trend.png")}
    if analysis.drift_alarm:
        decision.drift_alert = _drift_alert(analysis, drift_fp, links)
        if cfg.monitoring.retrain_on_drift:
            decision.retrain_reason = f"drift on {_top(analysis)} (monitoring {stamp})"
            decision.retrain_window = {k: analysis.window[k] for k in ("since", "until")}
    if analysis.accuracy_alarm:
        decision.accuracy_alert = _accuracy_alert(analysis, acc_fp, links)
    return decision


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


def _top(analysis: Analysis) -> str:
    return ", ".join(analysis.drift.drifted[:8])


def _drift_alert(analysis: Analysis, fingerprint: str, links: dict[str, str]) -> Any:
    from mlops import alerts

    w, share = analysis.window, analysis.drift.share
    return alerts.Alert(
        kind="drift", title=f"Data drift on model {analysis.model_version}",
        summary=f"{len(analysis.drift.drifted)} of {len(analysis.columns)} features drifted "
                f"(share {share:.3f} ≥ {analysis.thresholds['share']}): {_top(analysis)}.",
        facts={"window": f"{w['since']} → {w['until']}", "rows": analysis.rows, "drift score": round(share, 4),
               "importance-weighted": _fmt(analysis.weighted_drift_score), "drifted": _top(analysis),
               "prediction drift": _fmt(analysis.prediction_drift["score"])},
        evidence={"columns": [c for c in analysis.columns if c["drifted"]]},
        fingerprint=fingerprint, links=links,
    )  # fmt: skip


def _accuracy_alert(analysis: Analysis, fingerprint: str, links: dict[str, str]) -> Any:
    from mlops import alerts

    fb = analysis.feedback
    return alerts.Alert(
        kind="regression", title=f"Accuracy drop in production for model {analysis.model_version}",
        summary=f"Accuracy on {fb['rows']} labelled rows is {fb['accuracy']:.4f}, "
                f"{fb['accuracy_drop']:.4f} below the test split's {fb['reference_accuracy']:.4f}.",
        facts={"accuracy": round(fb["accuracy"], 4), "reference": round(fb["reference_accuracy"], 4),
               "drop": round(fb["accuracy_drop"], 4), "ECE change": round(fb["ece_change"], 4),
               "labelled rows": fb["rows"]},
        evidence={"feedback": fb}, fingerprint=fingerprint, severity="critical", links=links,
        extra_labels=("needs-attention",),
    )  # fmt: skip


# ---------------------------------------------------------------------------- record


def run(cfg: Config, since: str | None = None, until: str | None = None) -> dict[str, Any]:
    """One monitoring run: load -> analyse -> decide -> record. Returns the report with its actions."""
    inputs = load(cfg, since, until)  # every BadInput happens here or in analyse, before anything is written
    analysis = analyse(cfg, inputs)
    decision = decide(cfg, inputs, analysis)
    return record(cfg, inputs, analysis, decision)


def record(cfg: Config, inputs: Inputs, analysis: Analysis, decision: Decision) -> dict[str, Any]:
    """Write the reports, record the audit events and state, deliver the alerts, set the outputs."""
    from mlops import audit

    repo, out, stamp = cfg.repo, report_dir(cfg), inputs.stamp
    report = analysis.report()
    files = _render(cfg, inputs, analysis, report)  # all rendered (Evidently included) before the first write
    for path, payload in files.items():
        jsonio.atomic_write_bytes(path, payload)
    fb = analysis.feedback
    payload = {
        "window": analysis.window, "outcome": analysis.outcome, "rows": analysis.rows,
        "model_version": analysis.model_version, "drift_score": report.get("drift_score"),
        "weighted_drift_score": analysis.weighted_drift_score, "drifted_features": report.get("drifted_features", []),
        "accuracy_drop": fb.get("accuracy_drop"), "report": repo.rel(out / f"{stamp}.json"),
    }  # fmt: skip
    report["audit_seq"] = audit.record(repo, "monitoring_run", payload).get("seq")
    if analysis.drift_alarm:
        audit.record(repo, "drift_detected", payload)
    # Written before GitHub is contacted: an alert that fails below is still known to be open.
    jsonio.write_json(out / "state.json", decision.state)
    actions, refused = _deliver(cfg, decision, stamp)
    if decision.recovered:
        jsonio.write_json(out / "state.json", decision.state)
    report["actions"] = {k: {kk: v.get(kk) for kk in ("status", "issue", "url", "dispatched") if kk in v}
                         for k, v in actions.items()}  # fmt: skip
    gha.set_outputs(
        drift=analysis.drift_alarm,
        drift_score=f"{analysis.drift.share:.4f}" if analysis.judged else "",
        accuracy_drop=f"{fb['accuracy_drop']:.4f}" if "accuracy_drop" in fb else "",
        outcome=analysis.outcome,
        report=repo.rel(out / f"{stamp}.md"),
    )
    gha.add_summary(files[out / f"{stamp}.md"].decode("utf-8"))
    if refused:  # the reports, audit entries and state are written; the configuration problem still fails the run
        raise refused[0]
    return report


def _render(cfg: Config, inputs: Inputs, analysis: Analysis, report: dict[str, Any]) -> dict[Any, bytes]:
    """Every report file's bytes, in the order they are written; adds the Evidently fields to `report`."""
    mon, out, stamp = cfg.monitoring, report_dir(cfg), inputs.stamp
    files: dict[Any, bytes] = {}
    # Without Evidently (the `report` extra) everything else is written; the report and the log say how to get it.
    if inputs.frame is not None and analysis.drift is not None and mon.evidently_report and not _no_evidently(report):
        html_path = out / "html" / f"{stamp}.html"
        from mlops.evidently_report import evidently_report

        text, report["evidently"] = evidently_report(
            inputs.frame, inputs.profile, mon.evidently_sample_rows, analysis.drift, analysis.thresholds["share"]
        )
        # HTML reports are MBs of inlined JS: kept out of git by html/.gitignore, uploaded as an artifact.
        files[out / "html" / ".gitignore"] = b"*\n!.gitignore\n"
        files[html_path] = text.encode("utf-8")
        report["evidently_html"] = cfg.repo.rel(html_path)
        report["evidently_sample_rows"] = min(mon.evidently_sample_rows, len(inputs.frame))
    history = _updated_history(inputs.history, report, mon.history_points)
    md = markdown(report).encode("utf-8")
    files[out / f"{stamp}.json"] = jsonio.dumps(report).encode("utf-8")
    files[out / f"{stamp}.md"] = md
    files[out / "latest.md"] = md
    files[out / "history.json"] = jsonio.dumps(history).encode("utf-8")
    files[out / "trend.png"] = trend_png(history, cfg.schedule.performance_thresholds.drift_alert_threshold)
    return files


def _no_evidently(report: dict[str, Any]) -> bool:
    """True (and noted in the report and the log) when Evidently, the optional `report` extra, is not installed."""
    import importlib.util

    if importlib.util.find_spec("evidently") is not None:
        return False
    report["evidently_html"] = None
    report["evidently_skipped"] = "Evidently is not installed: pip install -e '.[report]' for the HTML report"
    gha.warn(f"monitor: no Evidently HTML report; {report['evidently_skipped']}")
    return True


def _updated_history(history: list[dict], report: dict[str, Any], points: int) -> list[dict]:
    entry = {
        "until": report["window"]["until"], "outcome": report["outcome"], "rows": report["rows"],
        "drift_score": report.get("drift_score"), "weighted_drift_score": report.get("weighted_drift_score"),
        "accuracy_drop": report.get("feedback", {}).get("accuracy_drop"), "model_version": report["model_version"],
    }  # fmt: skip
    history = [h for h in history if h.get("until") != entry["until"]] + [entry]
    history.sort(key=lambda h: h["until"])
    return history[-points:]


def _deliver(cfg: Config, decision: Decision, stamp: str) -> tuple[dict[str, Any], list[BadInput]]:
    """Every alert, dispatch and resolve is attempted; a refusal (bad token, missing workflow) is returned
    to be reported after the others ran. A resolve that was refused keeps its fingerprint open."""
    from mlops import alerts

    actions: dict[str, Any] = {}
    refused: list[BadInput] = []
    retrain = functools.partial(alerts.dispatch_retrain, **(decision.retrain_window or {}))
    sends = [
        ("drift_alert", alerts.raise_alert, decision.drift_alert),
        ("retrain", retrain, decision.retrain_reason),
        ("accuracy_alert", alerts.raise_alert, decision.accuracy_alert),
    ]
    for name, deliver, what in sends:
        if what is not None:
            _attempt(actions, refused, name, functools.partial(deliver, cfg, what))
    for key in decision.recovered:
        entry = decision.state[key]
        reason = f"{entry['clean_runs']} consecutive clean monitoring runs (last {stamp})"
        name = f"{key}_resolved"
        still_open = [
            fp
            for fp in entry["open"]
            if not _attempt(actions, refused, name, functools.partial(alerts.resolve, cfg, fp, reason))
        ]
        entry.update(open=still_open, clean_runs=0 if not still_open else entry["clean_runs"])
    return actions, refused


def _attempt(actions: dict[str, Any], refused: list[BadInput], name: str, deliver: Any) -> bool:
    """One delivery; a refusal is kept to be raised once every other delivery was attempted."""
    try:
        actions[name] = deliver()
        return True
    except BadInput as exc:
        refused.append(exc)
        actions[name] = {"status": "refused", "error": str(exc)}
        return False
