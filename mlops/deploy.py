"""Gated deployment: the GitOps state file, the five deploy gates, health check, rollback, canary analysis.

`models/deployment.json` is the desired state of serving (production, canary with its traffic share,
shadow, and the history needed to roll back). Deploying never moves model folders: the state names
versions wherever they live (models/current, candidates/ or archived/) and pins their sha256, so
every change is one atomic write of one file, and a `git revert` of that write is a rollback.
See docs/deployment.md.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops import gha, jsonio, registry
from mlops.config import Config, describe_violation
from mlops.errors import BadInput, CheckFailed
from mlops.repo import Repo

MODES = ("shadow", "canary", "full")
STATE_SCHEMA = "deployment-state.schema.json"
MANIFEST_SCHEMA = "manifest.schema.json"
# The schema of the generated card document (model-card.schema.json holds only its team-written parts).
CARD_SCHEMA = "model-card-document.schema.json"
# Actions that change which version serves production, for finding "the previous production".
_PRODUCTION_ACTIONS = ("deploy-full", "promote-canary")
_ROLLBACK_ACTIONS = ("rollback", "auto-rollback")


# ----------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    canary_traffic: float = 0.1
    holdout_rows: int = 500
    latency_budget_ms_p95: float = 100.0
    latency_probe_rows: int = 100
    health_requests: int = 50
    health_latency_budget_ms_p95: float = 250.0
    analysis: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: Config) -> Settings:
        """Apply the schema's defaults to config/deployment.json (absent file: all defaults)."""
        raw = cfg.section("deployment")
        health = raw.get("health_check", {})
        analysis = {
            "min_requests": 200,
            "max_score_ks": 0.15,
            "max_positive_rate_delta": 0.05,
            "max_error_rate_delta": 0.01,
            "max_latency_ratio": 3.0,
            "min_feedback": 100,
            "max_accuracy_drop": 0.02,
        }
        analysis.update(raw.get("canary_analysis", {}))
        return cls(
            canary_traffic=float(raw.get("canary_traffic", 0.1)),
            holdout_rows=int(raw.get("holdout_rows", 500)),
            latency_budget_ms_p95=float(raw.get("latency_budget_ms_p95", 100.0)),
            latency_probe_rows=int(raw.get("latency_probe_rows", 100)),
            health_requests=int(health.get("requests", 50)),
            health_latency_budget_ms_p95=float(health.get("latency_budget_ms_p95", 250.0)),
            analysis=analysis,
        )


# -------------------------------------------------------------------------------------- state


def _schema(repo: Repo, name: str) -> dict[str, Any]:
    path = repo.schemas_dir / name
    if not path.exists():
        raise BadInput(repo.rel(path), "the JSON Schema is missing", "restore it from git")
    return jsonio.read_json(path, "schema")


def _first_violation(schema: dict[str, Any], data: Any) -> Any:
    import jsonschema

    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: (list(e.absolute_path), e.validator)
    )
    if not errors:
        return None
    err = errors[0]
    # "null or an object" fails as a whole; the useful line is the deepest failure inside the object branch.
    while err.validator in ("oneOf", "anyOf") and err.context:
        err = max(err.context, key=lambda e: (len(e.absolute_path), e.validator != "type"))
    return err


def _pointer(path: Any) -> str:
    return "/" + "/".join(str(p) for p in path)


def validate_state(repo: Repo, state: Any) -> None:
    """Raise BadInput naming the first place where a state breaks its schema or its own rules."""
    rel = repo.rel(repo.deployment_state)
    err = _first_violation(_schema(repo, STATE_SCHEMA), state)
    if err is not None:
        expected, found = describe_violation(err)
        raise BadInput(
            f"{rel}: {_pointer(err.absolute_path)}",
            f"expected {expected}, found {found}",
            f"fix it to match config/schemas/{STATE_SCHEMA}, or `git revert` the commit that broke it",
        )
    prod = state["production"]["version"]
    for role in ("canary", "shadow"):
        if state[role] and state[role]["version"] == prod:
            raise BadInput(
                f"{rel}: /{role}/version",
                f"{prod} is already production and cannot also be the {role}",
                f"set /{role} to null",
            )


def read_state(repo: Repo) -> dict[str, Any] | None:
    """The deployment state, schema-checked; None before the first deployment."""
    if not repo.deployment_state.exists():
        return None
    state = jsonio.read_json(repo.deployment_state, "deployment state")
    validate_state(repo, state)
    return state


def write_state(repo: Repo, state: dict[str, Any]) -> None:
    validate_state(repo, state)  # a bug here must never reach the file the router trusts
    jsonio.write_json(repo.deployment_state, state)


def previous_production(state: dict[str, Any]) -> str | None:
    """The production version before the current one, replaying history as a stack (rollbacks pop)."""
    stack: list[str] = []
    for entry in state["history"]:
        action, to = entry["action"], entry["to"]
        if action in _PRODUCTION_ACTIONS and to:
            stack.append(to)
        elif action in _ROLLBACK_ACTIONS and to:
            while stack and stack[-1] != to:
                stack.pop()
            if not stack:
                stack.append(to)
    current = state["production"]["version"]
    while stack and stack[-1] == current:
        stack.pop()
    return stack[-1] if stack else None


def _entry(action: str, src: str | None, dst: str | None, reason: str, actor: str, **extra: Any) -> dict[str, Any]:
    out = {
        "time": jsonio.format_utc(jsonio.utc_now()),
        "action": action,
        "from": src,
        "to": dst,
        "reason": reason,
        "actor": actor,
    }
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


def describe(state: dict[str, Any] | None) -> dict[str, Any]:
    """A short summary of a state for records and outputs."""
    if state is None:
        return {"production": None, "canary": None, "shadow": None}
    return {
        "production": state["production"]["version"],
        "canary": {"version": state["canary"]["version"], "traffic": state["canary"]["traffic"]}
        if state["canary"]
        else None,
        "shadow": state["shadow"]["version"] if state["shadow"] else None,
    }


# -------------------------------------------------------------------------------------- gates


@dataclass
class Gate:
    name: str
    passed: bool | None  # None: not run, because an earlier gate made it meaningless
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "reason": self.reason, "detail": self.detail}


_SAMPLES: dict[tuple, tuple[Any, Any, dict[str, Any]]] = {}


def holdout_sample(cfg: Config, manifest: dict[str, Any], rows: int) -> tuple[Any, Any, dict[str, Any]]:
    """The model's own test split, regenerated deterministically from its dataset and seed.

    Refuses (CheckFailed) when the data at hand is not the data the model was trained on:
    a sample from other data would not be held out from this model.
    """
    from mlops import data
    from mlops.train import split

    want = manifest.get("dataset", {}).get("sha256")
    # The model's own data first (its recorded file, or its synthetic parameters), so a newer
    # export in config/dataset.json does not stop an older production model's checks.
    dataset = data.locate(cfg, manifest.get("dataset", {})) or data.acquire(cfg, no_download=True)
    info = {"dataset": cfg.repo.rel(dataset.path), "dataset_sha256": dataset.sha256, "rows": 0}
    if dataset.sha256 != want:
        raise CheckFailed(
            f"{cfg.repo.rel(dataset.path)}: sha256 {dataset.sha256[:12]} is not the {str(want)[:12]} this model was "
            "trained on, so its held-out split cannot be rebuilt; fetch that data (`mlops train` downloads it) first"
        )
    key = (str(dataset.path), dataset.sha256, manifest.get("seed"), rows)
    if key not in _SAMPLES:
        where = cfg.repo.rel(dataset.path)
        prepared = data.prepare(cfg, data.read_table(dataset.path, where), where)
        parts = split(prepared, cfg, int(manifest.get("seed", cfg.training.seed)))
        X, y = parts["X_test"].head(rows).reset_index(drop=True), parts["y_test"][:rows]
        _SAMPLES[key] = (X, y, {**info, "rows": int(len(X)), "split": "test", "seed": manifest.get("seed")})
    return _SAMPLES[key]


def _card_path(repo: Repo, version: str) -> Path:
    from mlops.cards import card_json_path

    return card_json_path(repo, version)


def _features(manifest: dict[str, Any]) -> list[str]:
    f = manifest.get("features", {})
    return list(f.get("numeric", [])) + list(f.get("categorical", []))


def _p95(values: list[float]) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), 95)) if values else 0.0


def check_predictions(proba: Any, rows: int) -> str | None:
    """Why a predict_proba output is unusable, or None: shape (rows, 2), finite, in [0, 1], rows sum to 1."""
    import numpy as np

    arr = np.asarray(proba)
    if arr.shape != (rows, 2):
        return f"predict_proba returned shape {arr.shape}, expected ({rows}, 2)"
    if not np.isfinite(arr).all():
        return f"{int((~np.isfinite(arr)).sum())} probabilities are not finite"
    if (arr < 0).any() or (arr > 1).any():
        return "probabilities outside [0, 1]"
    if not np.allclose(arr.sum(axis=1), 1.0, atol=1e-6):
        return "class probabilities do not sum to 1"
    return None


def run_gates(cfg: Config, version: str, folder: Path, state: dict[str, Any] | None) -> list[Gate]:
    """The five deploy gates, in order; later gates that depend on a failed one are marked not run."""
    repo = cfg.repo
    settings = Settings.from_config(cfg)
    gates: list[Gate] = []
    manifest = jsonio.read_json(folder / registry.MANIFEST, "model manifest")

    # 1. integrity: the file is the one the manifest (and so the training run) describes.
    try:
        registry.verify_integrity(folder, repo)
        gates.append(
            Gate(
                "integrity",
                True,
                "model file sha256 matches its manifest",
                {"model_sha256": manifest.get("model_sha256")},
            )
        )
    except BadInput as exc:
        gates.append(Gate("integrity", False, str(exc), {"manifest_sha256": manifest.get("model_sha256")}))

    # 2. metadata: manifest (and the model card, when one exists) validate against their schemas.
    problems = []
    err = _first_violation(_schema(repo, MANIFEST_SCHEMA), manifest)
    if err is not None:
        expected, found = describe_violation(err)
        problems.append(f"manifest {_pointer(err.absolute_path)}: expected {expected}, found {found}")
    card_path = _card_path(repo, version)
    card_checked = False
    if card_path.exists() and (repo.schemas_dir / CARD_SCHEMA).exists():
        card_checked = True
        card = jsonio.read_json(card_path, "model card")
        err = _first_violation(_schema(repo, CARD_SCHEMA), card)
        if err is not None:
            expected, found = describe_violation(err)
            problems.append(f"card {_pointer(err.absolute_path)}: expected {expected}, found {found}")
        else:  # the committed card is a second record of which bytes were trained: a swapped model shows here
            card_sha = (card.get("lineage") or {}).get("model_sha256")
            if card_sha and card_sha != manifest.get("model_sha256"):
                problems.append(
                    f"card /lineage/model_sha256 {str(card_sha)[:12]}… is not the manifest's "
                    f"{str(manifest.get('model_sha256'))[:12]}…: the model or its manifest was replaced"
                )
    if manifest.get("version") != version:
        problems.append(f"manifest names version {manifest.get('version')!r}, not {version!r}")
    gates.append(
        Gate(
            "metadata",
            not problems,
            "; ".join(problems) or "manifest valid" + (" and card valid" if card_checked else ""),
            {
                "manifest_schema": f"config/schemas/{MANIFEST_SCHEMA}",
                "card": repo.rel(card_path) if card_checked else None,
            },
        )
    )

    # 3. thresholds: re-checked from the manifest's metrics against today's config, never from a flag.
    th = cfg.schedule.performance_thresholds
    metrics = manifest.get("metrics", {}) if isinstance(manifest.get("metrics"), dict) else {}
    acc, ece = metrics.get("accuracy"), metrics.get("ece")
    failed = []
    if not isinstance(acc, (int, float)) or acc < th.accuracy_min:
        failed.append(f"accuracy {acc} < accuracy_min {th.accuracy_min}")
    if not isinstance(ece, (int, float)) or ece > th.ece_max:
        failed.append(f"ece {ece} > ece_max {th.ece_max}")
    gates.append(
        Gate(
            "thresholds",
            not failed,
            "; ".join(failed) or "accuracy and ECE within config thresholds",
            {"accuracy": acc, "accuracy_min": th.accuracy_min, "ece": ece, "ece_max": th.ece_max},
        )
    )

    # 4. compatibility: the model expects exactly the serving schema (production's features, or the data's).
    expected_features, schema_from = None, None
    if state is not None:
        prod_folder = registry.find_version(repo, state["production"]["version"])
        prod_manifest = jsonio.read_json(prod_folder / registry.MANIFEST, "model manifest")
        expected_features, schema_from = prod_manifest.get("features", {}), f"production {prod_manifest['version']}"
    sample = None
    try:
        sample = holdout_sample(cfg, manifest, settings.holdout_rows)
    except CheckFailed as exc:
        sample_error = str(exc)
    if expected_features is None and sample is not None:
        numeric = [c for c in sample[0].columns if c not in cfg.dataset.categorical]
        expected_features = {"numeric": numeric, "categorical": [c for c in sample[0].columns if c not in numeric]}
        schema_from = f"dataset {sample[2]['dataset']}"
    mine = manifest.get("features", {})
    if expected_features is None:
        gates.append(Gate("compatibility", False, sample_error, {}))
    else:
        diffs = []
        for kind in ("numeric", "categorical"):
            have, want = set(mine.get(kind, [])), set(expected_features.get(kind, []))
            if have - want:
                diffs.append(f"{kind} features not served: {', '.join(sorted(have - want))}")
            if want - have:
                diffs.append(f"{kind} features the model lacks: {', '.join(sorted(want - have))}")
        gates.append(
            Gate(
                "compatibility",
                not diffs,
                "; ".join(diffs) or f"features match the serving schema ({schema_from})",
                {"serving_schema": schema_from},
            )
        )

    # 5. load and query: it loads, predicts sane probabilities on held-out rows, fast enough.
    if gates[0].passed is False:
        gates.append(Gate("load_and_query", None, "not run: integrity failed, the file is not loaded"))
    elif sample is None:
        gates.append(Gate("load_and_query", False, sample_error))
    else:
        gates.append(_load_and_query(repo, folder, manifest, sample, settings))
    return gates


def one_thread() -> Any:
    """Single-row predictions on one thread: OpenMP/BLAS pools cost more than they save at batch size 1
    and, on a busy runner, turn a 5 ms prediction into hundreds (measured: p95 776 ms -> 8 ms)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _load_and_query(repo: Repo, folder: Path, manifest: dict, sample: tuple, settings: Settings) -> Gate:
    X, _y, info = sample
    feats = _features(manifest)
    detail: dict[str, Any] = {"sample": info, "latency_budget_ms_p95": settings.latency_budget_ms_p95}
    try:
        began = time.perf_counter()
        pipeline, _ = registry.load_model(folder, repo)
        detail["load_ms"] = round((time.perf_counter() - began) * 1000, 3)
        Xf = X[feats]
        proba = pipeline.predict_proba(Xf)
    except Exception as exc:  # noqa: BLE001 - any failure to load or predict is this gate's finding
        return Gate("load_and_query", False, f"{type(exc).__name__}: {str(exc)[:300]}", detail)
    problem = check_predictions(proba, len(Xf))
    if problem:
        return Gate("load_and_query", False, problem, detail)
    timings = []
    with one_thread():
        for i in range(min(settings.latency_probe_rows, len(Xf))):
            row = Xf.iloc[[i]]
            t0 = time.perf_counter()
            pipeline.predict_proba(row)
            timings.append((time.perf_counter() - t0) * 1000)
    p95 = _p95(timings)
    detail.update(
        rows=int(len(Xf)),
        latency_ms_p95=round(p95, 3),
        latency_probes=len(timings),
        positive_rate=round(float((proba[:, 1] >= 0.5).mean()), 6),
    )
    if p95 > settings.latency_budget_ms_p95:
        return Gate(
            "load_and_query",
            False,
            f"p95 single-row latency {p95:.2f} ms exceeds the budget of {settings.latency_budget_ms_p95} ms",
            detail,
        )
    return Gate("load_and_query", True, f"{len(Xf)} held-out rows scored; p95 {p95:.2f} ms", detail)


# --------------------------------------------------------------------------------- recording


def _record_path(repo: Repo, kind: str, version: str) -> Path:
    stamp = jsonio.format_utc(jsonio.utc_now()).replace("-", "").replace(":", "")
    folder = repo.metadata / "deployments"
    path = folder / f"{stamp}-{kind}-{version}.json"
    n = 2
    while path.exists():
        path = folder / f"{stamp}-{kind}-{version}-{n}.json"
        n += 1
    return path


def _audit(repo: Repo, event_type: str, payload: dict[str, Any], actor: str | None) -> None:
    from mlops import audit

    audit.record(repo, event_type, payload, actor=actor)


def _alert(cfg: Config, title: str, summary: str, facts: dict, evidence: dict, key: str, links: dict) -> dict:
    from mlops import alerts

    alert = alerts.Alert(
        kind="deployment-failure",
        title=title,
        summary=summary,
        facts=facts,
        evidence=evidence,
        fingerprint=alerts.make_fingerprint("deployment-failure", cfg.dataset.name, key),
        severity="critical",
        links=links,
    )
    return alerts.raise_alert(cfg, alert)


def _actor(actor: str | None) -> str:
    from mlops import audit

    return audit.default_actor(actor)


def move_champion(cfg: Config, version: str) -> str:
    """Point MLflow's `champion` alias at a version when the tracking store knows it; returns what happened."""
    repo = cfg.repo
    if not os.environ.get("MLFLOW_TRACKING_URI") and not (repo.mlflow_dir / "mlflow.db").exists():
        return "no tracking store"
    try:
        from mlops.tracking import Tracker

        tracker = Tracker(repo, experiment=cfg.dataset.name, registered_model=f"{cfg.dataset.name}-classifier")
        registered = tracker.version_for(version)
        if registered is None:
            return "version not in the tracking store"
        tracker.set_alias("champion", registered)
        return f"champion -> registered version {registered}"
    except Exception as exc:  # noqa: BLE001 - the deployment stands; the alias is bookkeeping
        gha.warn(f"could not move the MLflow champion alias to {version}: {type(exc).__name__}: {exc}")
        return f"failed: {type(exc).__name__}"


# ------------------------------------------------------------------------------------- deploy


def _sha_of(folder: Path) -> str:
    return str(jsonio.read_json(folder / registry.MANIFEST, "model manifest")["model_sha256"])


def plan(
    state: dict[str, Any] | None, mode: str, version: str, sha: str, traffic: float, entry: dict[str, Any]
) -> dict[str, Any]:
    """The state after deploying `version` in `mode` (pure: no I/O)."""
    now = entry["time"]
    if state is None:
        new: dict[str, Any] = {"format": 1, "canary": None, "shadow": None, "history": []}
    else:
        new = {**state, "history": list(state["history"])}
    if mode == "full":
        new["production"] = {"version": version, "model_sha256": sha, "since": now}
        if new["canary"] and new["canary"]["version"] == version:
            new["canary"] = None
        if new["shadow"] and new["shadow"]["version"] == version:
            new["shadow"] = None
    elif mode == "canary":
        new["canary"] = {"version": version, "sha256": sha, "traffic": traffic, "since": now}
        if new["shadow"] and new["shadow"]["version"] == version:
            new["shadow"] = None
    else:
        new["shadow"] = {"version": version, "sha256": sha, "since": now}
        if new["canary"] and new["canary"]["version"] == version:
            new["canary"] = None
    new["history"].append(entry)
    new["updated_at"] = now
    return new


def _check_request(repo: Repo, mode: str, version: str | None, traffic: float | None) -> tuple[dict | None, str]:
    """Every bad-input refusal of `mlops deploy`, before anything is read twice or written."""
    if mode not in MODES:
        raise BadInput("--mode", f"unknown mode {mode!r}", f"use one of {', '.join(MODES)}")
    if traffic is not None:
        if mode != "canary":
            raise BadInput(
                "--traffic",
                f"a traffic share only applies to --mode canary, not --mode {mode}",
                "drop --traffic (full takes all traffic; shadow answers none)",
            )
        if not (isinstance(traffic, (int, float)) and math.isfinite(traffic) and 0 < traffic < 1):
            raise BadInput("--traffic", f"{traffic} is outside (0, 1)", "give the canary's share, e.g. --traffic 0.1")
    state = read_state(repo)
    if version is None:
        current = registry.current_manifest(repo)
        if current is None:
            raise BadInput(
                "--version", "no version given and no models/current/", "run `mlops train` or pass --version"
            )
        version = str(current["version"])
    registry.find_version(repo, version)
    if state is None and mode != "full":
        raise BadInput(
            repo.rel(repo.deployment_state),
            f"nothing is in production yet, so there is nothing to {mode} against",
            f"deploy a first version with `mlops deploy --mode full --version {version}`",
        )
    if state is not None:
        prod = state["production"]["version"]
        if mode == "full" and version == prod:
            raise BadInput("--version", f"{version} is already production", "nothing to do")
        if mode != "full" and version == prod:
            raise BadInput(
                "--version",
                f"{version} is production; it cannot also be the {mode}",
                "deploy a different version, e.g. the latest candidate",
            )
    return state, version


def deploy(
    cfg: Config,
    mode: str,
    version: str | None = None,
    traffic: float | None = None,
    *,
    reason: str | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Gate, then change the deployment state, then health-check through the router (rolling back on failure)."""
    repo = cfg.repo
    settings = Settings.from_config(cfg)
    state, version = _check_request(repo, mode, version, traffic)
    if mode == "canary" and traffic is None:
        traffic = settings.canary_traffic
    who = _actor(actor)
    folder = registry.find_version(repo, version)
    gates = run_gates(cfg, version, folder, state)
    passed = all(g.passed for g in gates)
    record_path = _record_path(repo, mode, version)
    record: dict[str, Any] = {
        "time": jsonio.format_utc(jsonio.utc_now()),
        "mode": mode,
        "version": version,
        "model_folder": repo.rel(folder),
        "traffic": traffic if mode == "canary" else (1.0 if mode == "full" else 0.0),
        "actor": who,
        "commit": repo.git_commit(),
        "gates": [g.to_dict() for g in gates],
        "passed": passed,
        "state_before": describe(state),
    }
    rel = repo.rel(record_path)
    if not passed:
        refused = [g for g in gates if g.passed is False]
        record.update(decision="refused", state_after=describe(state))
        jsonio.write_json(record_path, record)
        reasons = "; ".join(f"{g.name}: {g.reason}" for g in refused)
        _audit(
            repo,
            "gate_decision",
            {
                "stage": "deployment",
                "mode": mode,
                "version": version,
                "passed": False,
                "refused": [g.name for g in refused],
                "record": rel,
            },
            who,
        )
        alert = _alert(
            cfg,
            f"Deployment refused: {version}",
            f"`mlops deploy --mode {mode}` refused {version}: {reasons}. Nothing was changed.",
            {g.name: ("passed" if g.passed else "not run" if g.passed is None else "FAILED") for g in gates},
            record,
            version,
            {"gate record": rel},
        )
        gha.add_summary(summary_markdown(record))
        raise CheckFailed(
            f"deployment refused by gate {refused[0].name}: {refused[0].reason} "
            f"(record: {rel}; alert: {alert.get('status')})"
        )

    sha = _sha_of(folder)
    entry = _entry(
        f"deploy-{mode}",
        state["production"]["version"]
        if state and mode == "full"
        else (state[mode]["version"] if state and state.get(mode) else None),
        version,
        reason or f"mlops deploy --mode {mode}",
        who,
        to_sha256=sha,
        traffic=traffic if mode == "canary" else None,
        record=rel,
    )
    new_state = plan(state, mode, version, sha, float(traffic or 0.5), entry)
    record.update(decision="deployed", state_after=describe(new_state))
    jsonio.write_json(record_path, record)
    write_state(repo, new_state)
    _audit(
        repo,
        "deployment_change",
        {
            "action": entry["action"],
            "version": version,
            "sha256": sha,
            "from": entry["from"],
            "traffic": record["traffic"],
            "record": rel,
            "state": describe(new_state),
        },
        who,
    )

    health = health_check(cfg, new_state)
    record["health_check"] = health
    if not health["passed"]:
        restored = auto_rollback(cfg, state, new_state, health, who, rel)
        record.update(decision="rolled back", state_after=describe(restored))
        jsonio.write_json(record_path, record)
        alert = _alert(
            cfg,
            f"Deployment rolled back: {version}",
            f"{version} passed its gates but failed the post-deploy health check ({health['reason']}); "
            "the previous deployment state was restored automatically.",
            {k: v for k, v in health.items() if isinstance(v, (int, float, str, bool)) and k != "passed"},
            record,
            version,
            {"gate record": rel},
        )
        gha.add_summary(summary_markdown(record))
        raise CheckFailed(
            f"{version} failed the post-deploy health check ({health['reason']}) and was rolled back "
            f"(record: {rel}; alert: {alert.get('status')})"
        )
    if mode == "full":
        record["mlflow_champion"] = move_champion(cfg, version)
    jsonio.write_json(record_path, record)
    gha.add_summary(summary_markdown(record))
    return record


def health_check(cfg: Config, state: dict[str, Any]) -> dict[str, Any]:
    """Send held-out rows one by one through a router built from `state` as written; nothing is logged."""
    from mlops.serving import Router

    settings = Settings.from_config(cfg)
    out: dict[str, Any] = {"requests": 0, "budget_ms_p95": settings.health_latency_budget_ms_p95}
    try:
        router = Router(cfg.repo, state=state, log=False)
        X = _health_rows(cfg, router, max(settings.health_requests, 1))
        timings, roles = [], {}
        with one_thread():
            _probe(router, X, settings.health_requests, timings, roles)
        out.update(requests=len(timings), roles=roles, latency_ms_p95=round(_p95(timings), 3))
    except (CheckFailed, BadInput) as exc:
        out.update(passed=False, reason=str(exc)[:300])
        return out
    if out["latency_ms_p95"] > settings.health_latency_budget_ms_p95:
        out.update(
            passed=False,
            reason=f"p95 routed latency {out['latency_ms_p95']} ms exceeds {settings.health_latency_budget_ms_p95} ms",
        )
        return out
    out.update(passed=True, reason="all requests answered within budget")
    return out


def _health_rows(cfg: Config, router: Any, rows: int) -> Any:
    """Held-out rows from the newest model's data: the canary's or shadow's, else production's.

    Production may have been trained on an older copy of a data file that was since refreshed in
    place; its rows cannot be drawn any more, and that must not fail a healthy new model.
    """
    refused: Exception | None = None
    for role in ("canary", "shadow", "production"):
        if role in router.models:
            try:
                return holdout_sample(cfg, router.models[role].manifest, rows)[0]
            except (BadInput, CheckFailed) as exc:
                refused = refused or exc
    raise refused or CheckFailed("the router has no model to draw held-out rows for")


def _probe(router: Any, X: Any, requests: int, timings: list[float], roles: dict[str, int]) -> None:
    for i in range(min(requests, len(X))):
        t0 = time.perf_counter()
        answer = router.predict(X.iloc[[i]], [f"health-{i}"])
        timings.append((time.perf_counter() - t0) * 1000)
        score = float(answer["score"].iloc[0])
        if not (math.isfinite(score) and 0 <= score <= 1):
            raise CheckFailed(f"request health-{i} got score {score}")
        roles[answer["role"].iloc[0]] = roles.get(answer["role"].iloc[0], 0) + 1


def auto_rollback(
    cfg: Config, before: dict | None, failed: dict, health: dict, who: str, record: str
) -> dict[str, Any] | None:
    """Restore the state as it was before a deployment that failed its health check."""
    repo = cfg.repo
    last = failed["history"][-1]
    if before is None:
        # There was no deployment before this one: "as before" is no state file at all.
        repo.deployment_state.unlink()
        jsonio.fsync_dir(repo.models)
        restored = None
    else:
        restored = {**before, "history": [*failed["history"]]}
        entry = _entry(
            "auto-rollback",
            last["to"],
            before["production"]["version"],
            f"post-deploy health check failed: {health['reason']}",
            who,
            record=record,
        )
        restored["history"].append(entry)
        restored["updated_at"] = entry["time"]
        write_state(repo, restored)
    _audit(
        repo,
        "rollback",
        {
            "automatic": True,
            "failed_version": last["to"],
            "reason": health["reason"],
            "record": record,
            "state": describe(restored),
        },
        who,
    )
    return restored


# ------------------------------------------------------------------------------------ rollback


def rollback(cfg: Config, to: str | None = None, *, reason: str | None = None, actor: str | None = None) -> dict:
    """Restore an earlier production version (default: the previous one), integrity-checked; drops canary and shadow."""
    repo = cfg.repo
    state = read_state(repo)
    if state is None:
        raise BadInput(
            repo.rel(repo.deployment_state),
            "there is no deployment to roll back",
            "deploy first with `mlops deploy --mode full`",
        )
    current = state["production"]["version"]
    target = to or previous_production(state)
    if target is None:
        raise BadInput(
            repo.rel(repo.deployment_state),
            f"history has no production version before {current}",
            "name one with `mlops rollback --to VERSION`",
        )
    if target == current and not state["canary"] and not state["shadow"]:
        raise BadInput("--to", f"{target} is already production", "nothing to roll back")
    folder = registry.find_version(repo, target)
    who = _actor(actor)
    try:
        manifest = registry.verify_integrity(folder, repo)
        pinned = [h.get("to_sha256") for h in state["history"] if h.get("to") == target and h.get("to_sha256")]
        if pinned and manifest["model_sha256"] != pinned[-1]:
            # The file matches its manifest, but both changed since this version last served.
            raise BadInput(
                repo.rel(folder / registry.MODEL_FILE),
                f"sha256 {manifest['model_sha256'][:12]}… is not the {pinned[-1][:12]}… the deployment history "
                "pinned when this version last served",
                f"restore the committed model (git checkout -- {repo.rel(folder)}) or roll back to another version",
            )
    except BadInput as exc:
        _alert(
            cfg,
            f"Rollback refused: {target}",
            f"Rolling back to {target} was refused: {exc}",
            {"target": target},
            {"error": str(exc)},
            f"rollback-{target}",
            {},
        )
        raise CheckFailed(f"rollback to {target} refused: {exc}") from None
    why = reason or "mlops rollback"
    entry = _entry("rollback", current, target, why, who, to_sha256=manifest["model_sha256"])
    new = {
        **state,
        "history": [*state["history"], entry],
        "updated_at": entry["time"],
        "production": {"version": target, "model_sha256": manifest["model_sha256"], "since": entry["time"]},
        "canary": None,
        "shadow": None,
    }
    write_state(repo, new)
    _audit(
        repo,
        "rollback",
        {
            "from": current,
            "to": target,
            "reason": why,
            "sha256": manifest["model_sha256"],
            "dropped": describe(state),
            "automatic": False,
        },
        who,
    )
    out = {"from": current, "to": target, "reason": why, "model_folder": repo.rel(folder)}
    out["mlflow_champion"] = move_champion(cfg, target)
    gha.add_summary(f"### Rollback\n\nProduction `{current}` → `{target}` ({why}). MLflow: {out['mlflow_champion']}.")
    return out


# ------------------------------------------------------------------------------ canary analysis


def _ks(a: Any, b: Any) -> float:
    import numpy as np

    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    grid = np.concatenate([a, b])
    return float(
        np.max(np.abs(np.searchsorted(a, grid, "right") / len(a) - np.searchsorted(b, grid, "right") / len(b)))
    )


def _role_stats(records: list[dict], errors: int, labels: dict[str, Any]) -> dict[str, Any]:
    scores = [float(r["score"]) for r in records]
    # Latency only from single-row requests: a batch's per-row time depends on the batch's size.
    lat = [
        float(r["latency_ms"])
        for r in records
        if r.get("batch_size") == 1 and isinstance(r.get("latency_ms"), (int, float))
    ]
    labelled = [(int(r["prediction"]), int(labels[r["request_id"]])) for r in records if r["request_id"] in labels]
    n = len(records)
    return {
        "requests": n,
        "errors": errors,
        "error_rate": errors / (n + errors) if n + errors else 0.0,
        "positive_rate": sum(int(r["prediction"]) for r in records) / n if n else None,
        "score_mean": sum(scores) / n if n else None,
        "latency_ms_p95": _p95(lat) if lat else None,
        "feedback": len(labelled),
        "accuracy": sum(p == y for p, y in labelled) / len(labelled) if labelled else None,
    }


def read_errors(repo: Repo, since: str | None) -> list[dict]:
    """Serving errors the router logged (serving-errors-YYYYMMDD.jsonl beside the prediction log)."""
    import json

    out = []
    for path in sorted(repo.production_logs.glob("serving-errors-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a crash
            if isinstance(rec, dict) and (since is None or str(rec.get("time", "")) >= since):
                out.append(rec)
    return out


def analyze(cfg: Config, *, apply: bool = False, since: str | None = None, actor: str | None = None) -> dict:
    """Compare canary with production on the logged window; with apply, promote or roll back the canary."""
    from mlops import predlog

    repo = cfg.repo
    state = read_state(repo)
    if state is None or not state["canary"]:
        raise BadInput(
            repo.rel(repo.deployment_state),
            "there is no canary to analyze",
            "start one with `mlops deploy --mode canary`",
        )
    tol = Settings.from_config(cfg).analysis
    canary, prod = state["canary"], state["production"]
    start = since or canary.get("since")
    start_dt = jsonio.parse_utc(start, "--since") if start else None
    log_cfg = cfg.section("monitoring").get("log", {})
    preds = predlog.read(
        repo,
        log_cfg.get("predictions", "datasets/production/predictions-*"),
        "predictions",
        since=start_dt,
        on_malformed="skip",
    ).records
    feedback = predlog.read(
        repo, log_cfg.get("feedback", "datasets/production/feedback-*"), "feedback", since=start_dt, on_malformed="skip"
    ).records
    labels = {str(f["request_id"]): f["label"] for f in feedback}
    errors = read_errors(repo, jsonio.format_utc(start_dt) if start_dt else None)
    by_role = {
        "canary": [r for r in preds if r["role"] == "canary" and r["model_version"] == canary["version"]],
        "production": [
            r
            for r in preds
            if r["role"] == "production" and r["model_version"] == prod["version"] and not r.get("fallback_from")
        ],
    }
    err_count = {
        role: sum(1 for e in errors if e.get("role") == role and e.get("model_version") == v)
        for role, v in (("canary", canary["version"]), ("production", prod["version"]))
    }
    stats = {role: _role_stats(recs, err_count[role], labels) for role, recs in by_role.items()}
    c, p = stats["canary"], stats["production"]
    checks = []

    def check(name: str, value: Any, limit: Any, ok: bool | None, note: str = "") -> None:
        checks.append({"name": name, "value": value, "limit": limit, "passed": ok, "note": note})

    enough = c["requests"] >= tol["min_requests"] and p["requests"] >= tol["min_requests"]
    check("requests", {"canary": c["requests"], "production": p["requests"]}, tol["min_requests"], enough)
    if enough:
        ks = _ks([r["score"] for r in by_role["canary"]], [r["score"] for r in by_role["production"]])
        check("score_ks", round(ks, 6), tol["max_score_ks"], ks <= tol["max_score_ks"])
        delta = abs(c["positive_rate"] - p["positive_rate"])
        check(
            "positive_rate_delta",
            round(delta, 6),
            tol["max_positive_rate_delta"],
            delta <= tol["max_positive_rate_delta"],
        )
        err = c["error_rate"] - p["error_rate"]
        check("error_rate_delta", round(err, 6), tol["max_error_rate_delta"], err <= tol["max_error_rate_delta"])
        if c["latency_ms_p95"] is not None and p["latency_ms_p95"]:
            ratio = c["latency_ms_p95"] / p["latency_ms_p95"]
            check("latency_ratio", round(ratio, 4), tol["max_latency_ratio"], ratio <= tol["max_latency_ratio"])
        else:
            check("latency_ratio", None, tol["max_latency_ratio"], None, "no single-row requests logged for both roles")
        if c["feedback"] >= tol["min_feedback"] and p["feedback"] >= tol["min_feedback"]:
            drop = p["accuracy"] - c["accuracy"]
            check("accuracy_drop", round(drop, 6), tol["max_accuracy_drop"], drop <= tol["max_accuracy_drop"])
        else:
            check(
                "accuracy_drop",
                None,
                tol["max_accuracy_drop"],
                None,
                f"fewer than {tol['min_feedback']} labelled predictions per role",
            )
        decision = "promote" if all(x["passed"] is not False for x in checks) else "rollback"
    else:
        decision = "wait"
    record: dict[str, Any] = {
        "time": jsonio.format_utc(jsonio.utc_now()),
        "canary": canary,
        "production": prod,
        "window_since": jsonio.format_utc(start_dt) if start_dt else None,
        "tolerances": tol,
        "stats": stats,
        "checks": checks,
        "decision": decision,
        "applied": False,
    }
    path = _record_path(repo, "canary-analysis", canary["version"])
    rel = repo.rel(path)
    who = _actor(actor)
    if apply and decision != "wait":
        failed = [x["name"] for x in checks if x["passed"] is False]
        if decision == "promote":
            entry = _entry(
                "promote-canary",
                prod["version"],
                canary["version"],
                "canary analysis passed",
                who,
                to_sha256=canary["sha256"],
                record=rel,
            )
            new = {
                **state,
                "history": [*state["history"], entry],
                "updated_at": entry["time"],
                "canary": None,
                "production": {"version": canary["version"], "model_sha256": canary["sha256"], "since": entry["time"]},
            }
            event = "deployment_change"
        else:
            entry = _entry(
                "canary-rollback",
                canary["version"],
                prod["version"],
                f"canary analysis failed: {', '.join(failed)}",
                who,
                record=rel,
            )
            new = {**state, "history": [*state["history"], entry], "updated_at": entry["time"], "canary": None}
            event = "rollback"
        # The canary's sha256 is re-verified before it becomes production: the state pins it, the disk must agree.
        if decision == "promote":
            folder = registry.find_version(repo, canary["version"])
            try:
                registry.verify_integrity(folder, repo)
            except BadInput as exc:
                raise CheckFailed(f"canary {canary['version']} cannot be promoted: {exc}") from None
            if _sha_of(folder) != canary["sha256"]:
                raise CheckFailed(f"canary {canary['version']}: manifest sha256 differs from the one deployed")
        record["applied"] = True
        record["state_after"] = describe(new)
        jsonio.write_json(path, record)
        write_state(repo, new)
        _audit(
            repo,
            event,
            {
                "action": entry["action"],
                "from": entry["from"],
                "to": entry["to"],
                "decision": decision,
                "failed_checks": failed,
                "record": rel,
                "state": describe(new),
            },
            who,
        )
        if decision == "promote":
            record["mlflow_champion"] = move_champion(cfg, canary["version"])
            jsonio.write_json(path, record)
    else:
        jsonio.write_json(path, record)
    if decision == "rollback":
        _alert(
            cfg,
            f"Canary failed analysis: {canary['version']}",
            f"Canary {canary['version']} differs from production {prod['version']} beyond tolerance"
            + (" and was rolled back." if record["applied"] else "; run with --apply to roll it back."),
            {x["name"]: x["value"] if not isinstance(x["value"], dict) else str(x["value"]) for x in checks},
            {"checks": checks, "stats": stats},
            f"canary-{canary['version']}",
            {"analysis": rel},
        )
    record["record"] = rel
    gha.add_summary(analysis_markdown(record))
    return record


# ---------------------------------------------------------------------------------- summaries


def summary_markdown(record: dict[str, Any]) -> str:
    rows = [
        (g["name"], {True: "passed", False: "FAILED", None: "not run"}[g["passed"]], g["reason"])
        for g in record["gates"]
    ]
    head = f"### Deploy {record['mode']}: `{record['version']}` — {record['decision']}\n\n"
    return head + gha.md_table(["gate", "result", "detail"], rows)


def analysis_markdown(record: dict[str, Any]) -> str:
    rows = [
        (x["name"], str(x["value"]), str(x["limit"]), {True: "ok", False: "FAILED", None: "skipped"}[x["passed"]])
        for x in record["checks"]
    ]
    head = (
        f"### Canary analysis: `{record['canary']['version']}` — {record['decision']}"
        f"{' (applied)' if record['applied'] else ''}\n\n"
    )
    return head + gha.md_table(["check", "value", "limit", "result"], rows)
