"""The five deploy gates and the post-deploy health check: checks that decide, and change nothing.

Gates, in order: integrity (file sha256 = manifest), metadata (manifest and card against their
schemas), thresholds (manifest metrics against today's config), compatibility (features = the
serving schema) and load-and-query (loads, predicts sane probabilities on the model's own held-out
rows, within the CPU-time budget per row). See docs/deployment.md.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops import gha, jsonio, registry
from mlops.config import Config, first_violation
from mlops.deployment_state import schema, violation_text
from mlops.errors import BadInput, CheckFailed
from mlops.repo import Repo

MANIFEST_SCHEMA = "manifest.schema.json"
# The schema of the generated card document (model-card.schema.json holds only its team-written parts).
CARD_SCHEMA = "model-card-document.schema.json"


@dataclass
class Gate:
    name: str
    passed: bool | None  # None: not run, because an earlier gate made it meaningless
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "reason": self.reason, "detail": self.detail}


# Held-out samples by (dataset path, sha256, seed, rows): a deploy's gates and health check share one.
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


def features(manifest: dict[str, Any]) -> list[str]:
    f = manifest.get("features", {})
    return list(f.get("numeric", [])) + list(f.get("categorical", []))


def p95(values: list[float]) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), 95)) if values else 0.0


def one_thread() -> Any:
    """Single-row predictions on one thread: OpenMP/BLAS pools cost more than they save at batch size 1
    and, on a busy runner, turn a 5 ms prediction into hundreds (measured: p95 776 ms -> 8 ms)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


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


# ---------------------------------------------------------------------------------- the gates


def run_gates(cfg: Config, version: str, folder: Path, state: dict[str, Any] | None) -> list[Gate]:
    """The five deploy gates, in order; later gates that depend on a failed one are marked not run."""
    manifest = jsonio.read_json(folder / registry.MANIFEST, "model manifest")
    integrity = integrity_gate(cfg.repo, folder, manifest)
    gates = [integrity, metadata_gate(cfg.repo, version, manifest), thresholds_gate(cfg, manifest)]
    served = served_features(cfg.repo, state)
    sample, sample_error = None, ""
    try:
        sample = holdout_sample(cfg, manifest, cfg.deployment.holdout_rows)
    except CheckFailed as exc:
        sample_error = str(exc)
    gates.append(compatibility_gate(cfg, manifest, served, sample, sample_error))
    if integrity.passed is False:
        gates.append(Gate("load_and_query", None, "not run: integrity failed, the file is not loaded"))
    elif sample is None:
        gates.append(Gate("load_and_query", False, sample_error))
    else:
        gates.append(load_and_query_gate(cfg, folder, manifest, sample))
    return gates


def integrity_gate(repo: Repo, folder: Path, manifest: dict[str, Any]) -> Gate:
    """The file is the one the manifest (and so the training run) describes."""
    try:
        registry.verify_integrity(folder, repo)
    except BadInput as exc:
        return Gate("integrity", False, str(exc), {"manifest_sha256": manifest.get("model_sha256")})
    return Gate(
        "integrity", True, "model file sha256 matches its manifest", {"model_sha256": manifest.get("model_sha256")}
    )


def metadata_gate(repo: Repo, version: str, manifest: dict[str, Any]) -> Gate:
    """The manifest (and the model card, when one exists) validate against their schemas."""
    from mlops.cards import card_json_path

    problems = []
    err = first_violation(schema(repo, MANIFEST_SCHEMA), manifest)
    if err is not None:
        problems.append(f"manifest {violation_text(err)}")
    card_path = card_json_path(repo, version)
    card_checked = card_path.exists() and (repo.schemas_dir / CARD_SCHEMA).exists()
    if card_checked:
        card = jsonio.read_json(card_path, "model card")
        err = first_violation(schema(repo, CARD_SCHEMA), card)
        if err is not None:
            problems.append(f"card {violation_text(err)}")
        else:  # the committed card is a second record of which bytes were trained: a swapped model shows here
            card_sha = (card.get("lineage") or {}).get("model_sha256")
            if card_sha and card_sha != manifest.get("model_sha256"):
                problems.append(
                    f"card /lineage/model_sha256 {str(card_sha)[:12]}… is not the manifest's "
                    f"{str(manifest.get('model_sha256'))[:12]}…: the model or its manifest was replaced"
                )
    if manifest.get("version") != version:
        problems.append(f"manifest names version {manifest.get('version')!r}, not {version!r}")
    return Gate(
        "metadata",
        not problems,
        "; ".join(problems) or "manifest valid" + (" and card valid" if card_checked else ""),
        {"manifest_schema": f"config/schemas/{MANIFEST_SCHEMA}", "card": repo.rel(card_path) if card_checked else None},
    )


def thresholds_gate(cfg: Config, manifest: dict[str, Any]) -> Gate:
    """Re-checked from the manifest's metrics against today's config, never from a flag."""
    th = cfg.schedule.performance_thresholds
    metrics = manifest.get("metrics", {}) if isinstance(manifest.get("metrics"), dict) else {}
    acc, ece = metrics.get("accuracy"), metrics.get("ece")
    failed = []
    if not isinstance(acc, (int, float)) or acc < th.accuracy_min:
        failed.append(f"accuracy {acc} < accuracy_min {th.accuracy_min}")
    if not isinstance(ece, (int, float)) or ece > th.ece_max:
        failed.append(f"ece {ece} > ece_max {th.ece_max}")
    return Gate(
        "thresholds",
        not failed,
        "; ".join(failed) or "accuracy and ECE within config thresholds",
        {"accuracy": acc, "accuracy_min": th.accuracy_min, "ece": ece, "ece_max": th.ece_max},
    )


def served_features(repo: Repo, state: dict[str, Any] | None) -> tuple[dict | None, str | None]:
    """(features, where from) of the serving schema: production's, or (None, None) before a first deployment."""
    if state is None:
        return None, None
    prod_folder = registry.find_version(repo, state["production"]["version"])
    prod_manifest = jsonio.read_json(prod_folder / registry.MANIFEST, "model manifest")
    return prod_manifest.get("features", {}), f"production {prod_manifest['version']}"


def compatibility_gate(
    cfg: Config, manifest: dict[str, Any], served: tuple, sample: tuple | None, sample_error: str
) -> Gate:
    """The model expects exactly the serving schema (production's features, or the data's)."""
    expected, schema_from = served
    if expected is None and sample is not None:
        numeric = [c for c in sample[0].columns if c not in cfg.dataset.categorical]
        expected = {"numeric": numeric, "categorical": [c for c in sample[0].columns if c not in numeric]}
        schema_from = f"dataset {sample[2]['dataset']}"
    if expected is None:
        return Gate("compatibility", False, sample_error, {})
    mine = manifest.get("features", {})
    diffs = []
    for kind in ("numeric", "categorical"):
        have, want = set(mine.get(kind, [])), set(expected.get(kind, []))
        if have - want:
            diffs.append(f"{kind} features not served: {', '.join(sorted(have - want))}")
        if want - have:
            diffs.append(f"{kind} features the model lacks: {', '.join(sorted(want - have))}")
    return Gate(
        "compatibility",
        not diffs,
        "; ".join(diffs) or f"features match the serving schema ({schema_from})",
        {"serving_schema": schema_from},
    )


def load_and_query_gate(cfg: Config, folder: Path, manifest: dict, sample: tuple) -> Gate:
    """It loads, predicts sane probabilities on held-out rows, fast enough."""
    budget = cfg.deployment.latency_budget_ms_p95
    X, _y, info = sample
    detail: dict[str, Any] = {"sample": info, "latency_budget_ms_p95": budget}
    try:
        began = time.perf_counter()
        from mlops.serving import one_job

        pipeline = one_job(registry.load_model(folder, cfg.repo)[0])  # as the router serves it
        detail["load_ms"] = round((time.perf_counter() - began) * 1000, 3)
        Xf = X[features(manifest)]
        proba = pipeline.predict_proba(Xf)
    except Exception as exc:  # noqa: BLE001 - any failure to load or predict is this gate's finding
        return Gate("load_and_query", False, f"{type(exc).__name__}: {str(exc)[:300]}", detail)
    problem = check_predictions(proba, len(Xf))
    if problem:
        return Gate("load_and_query", False, problem, detail)
    with one_thread():
        cpu, wall = time_rows(lambda row: pipeline.predict_proba(row), Xf, cfg.deployment.latency_probe_rows)
    latency = p95(cpu)
    detail.update(
        rows=int(len(Xf)),
        cpu_ms_p95=round(latency, 3),
        latency_ms_p95=round(p95(wall), 3),
        latency_probes=len(cpu),
        positive_rate=round(float((proba[:, 1] >= 0.5).mean()), 6),
    )
    if latency > budget:
        return Gate(
            "load_and_query",
            False,
            f"p95 single-row CPU time {latency:.2f} ms exceeds the budget of {budget} ms",
            detail,
        )
    return Gate(
        "load_and_query",
        True,
        f"{len(Xf)} held-out rows scored; p95 CPU {latency:.2f} ms (wall {p95(wall):.2f} ms)",
        detail,
    )


def time_rows(predict: Any, X: Any, rows: int) -> tuple[list[float], list[float]]:
    """(CPU ms, wall ms) of `predict` on each of the first `rows` rows of X, one row at a time.

    The budget is checked on CPU time: the time this thread spent computing the prediction. Another
    process on the same cores delays a prediction (wall clock) but does not add to its CPU time, so a
    busy runner cannot fail the gate while a model that does more work per row still does (issue 17).
    Run under one_thread(), on a pipeline set to one job (mlops.serving.one_job): work handed to other
    threads would not be counted.
    """
    cpu, wall = [], []
    for i in range(min(rows, len(X))):
        row = X.iloc[[i]]
        c0, w0 = time.thread_time(), time.perf_counter()
        predict(row)
        cpu.append((time.thread_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    return cpu, wall


# ------------------------------------------------------------------------------ health check


def health_check(cfg: Config, state: dict[str, Any]) -> dict[str, Any]:
    """Send held-out rows one by one through a router built from `state` as written; nothing is logged."""
    from mlops.serving import Router

    settings = cfg.deployment.health_check
    out: dict[str, Any] = {"requests": 0, "budget_ms_p95": settings.latency_budget_ms_p95}
    try:
        router = Router(cfg.repo, state=state, log=False)
        X = _health_rows(cfg, router, max(settings.requests, 1))
        roles: dict[str, int] = {}
        with one_thread():
            cpu, wall = _probe(router, X, settings.requests, roles)
        out.update(requests=len(cpu), roles=roles, cpu_ms_p95=round(p95(cpu), 3), latency_ms_p95=round(p95(wall), 3))
    except (CheckFailed, BadInput) as exc:
        out.update(passed=False, reason=str(exc)[:300])
        return out
    if out["cpu_ms_p95"] > settings.latency_budget_ms_p95:
        out.update(
            passed=False,
            reason=f"p95 routed CPU time {out['cpu_ms_p95']} ms exceeds {settings.latency_budget_ms_p95} ms",
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


def _probe(router: Any, X: Any, requests: int, roles: dict[str, int]) -> tuple[list[float], list[float]]:
    """Route rows one by one; (CPU ms, wall ms) per request (see time_rows for why CPU time is the budget's)."""
    answers: list[Any] = []

    def route(row: Any) -> None:
        answers.append(router.predict(row, [f"health-{len(answers)}"]))

    cpu, wall = time_rows(route, X, requests)
    for i, answer in enumerate(answers):
        score = float(answer["score"].iloc[0])
        if not (math.isfinite(score) and 0 <= score <= 1):
            raise CheckFailed(f"request health-{i} got score {score}")
        roles[answer["role"].iloc[0]] = roles.get(answer["role"].iloc[0], 0) + 1
    return cpu, wall


def summary_markdown(record: dict[str, Any]) -> str:
    rows = [
        (g["name"], {True: "passed", False: "FAILED", None: "not run"}[g["passed"]], g["reason"])
        for g in record["gates"]
    ]
    head = f"### Deploy {record['mode']}: `{record['version']}` — {record['decision']}\n\n"
    return head + gha.md_table(["gate", "result", "detail"], rows)
