"""`mlops simulate-traffic`: a production window for the demo and tests, written to the prediction log.

Rows come from the training distribution (the seeded synthetic generator when the dataset source is
`synthetic`; otherwise sampled from the reference profile's marginals), K numeric features are
shifted by S reference standard deviations, the current model scores them, and the prediction log
and feedback (true labels, a share P flipped for accuracy decay) are appended.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from mlops import jsonio
from mlops.config import Config
from mlops.errors import BadInput
from mlops.repo import Repo


def score_rows(repo: Repo, df: Any, request_ids: list[str], times: list[str]) -> list[dict]:
    """Score feature rows and return prediction records, one per row in order, then any shadow records.

    This is the boundary the router replaces: once models/deployment.json exists, mlops.serving
    routes each request id to production or canary and adds the shadow's records (issue 7).
    """
    if repo.deployment_state.exists():
        from mlops import serving

        return serving.score_rows(repo, df, request_ids, times)
    from mlops import registry
    from mlops.profile import positive_scores

    pipeline, manifest = registry.load_current(repo)
    features = list(manifest["features"]["numeric"]) + list(manifest["features"]["categorical"])
    scores = positive_scores(pipeline, df[features])
    rows = _plain_rows(df[features])
    return [
        {"request_id": rid, "time": when, "model_version": manifest["version"], "role": "production",
         "features": feats, "score": float(s), "prediction": int(s >= 0.5)}
        for rid, when, feats, s in zip(request_ids, times, rows, scores, strict=True)
    ]  # fmt: skip


def _plain_rows(df: Any) -> list[dict]:
    out = []
    for row in df.to_dict("records"):
        clean = {}
        for k, v in row.items():
            v = v.item() if hasattr(v, "item") else v
            if v is None or (isinstance(v, float) and not math.isfinite(v)):
                v = None
            clean[k] = v
        out.append(clean)
    return out


def _draw(cfg: Config, profile: dict, rows: int, seed: int) -> tuple[Any, Any]:
    """(features DataFrame, labels or None) from the training distribution."""
    import pandas as pd

    if cfg.dataset.source == "synthetic":
        from mlops import synthetic

        frame = synthetic.generate(rows, seed)
        return frame, frame[synthetic.LABEL].to_numpy().astype(int)
    from mlops.monitor import reference_sample

    features = profile["features"]["numeric"] + profile["features"]["categorical"]
    return pd.DataFrame({c: reference_sample(profile, c, rows) for c in features}), None


def simulate(
    cfg: Config,
    rows: int,
    *,
    shift: float = 0.0,
    features: int = 0,
    seed: int = 0,
    label_noise: float = 0.0,
    hours: float | None = None,
    until: str | None = None,
    fmt: str = "jsonl",
    feedback: bool = True,
) -> dict[str, Any]:
    """Write `rows` scored rows spread evenly over the window ending at `until` (default now)."""
    import numpy as np

    from mlops import predlog
    from mlops.monitor import load_profile_for_current

    # The numbers were range-checked where the command line was parsed (mlops.commands.monitor_cmd).
    repo = cfg.repo
    profile, manifest = load_profile_for_current(cfg)
    numeric = list(profile["features"]["numeric"])
    if not 0 <= features <= len(numeric):
        raise BadInput("--features", f"{features} is not between 0 and the {len(numeric)} numeric features",
                       f"pass --features 0..{len(numeric)}")  # fmt: skip
    hours = cfg.monitoring.window_hours if hours is None else hours
    end = jsonio.parse_utc(until, "--until") if until else jsonio.utc_now()
    start = end - dt.timedelta(hours=hours)

    df, labels = _draw(cfg, profile, rows, seed)
    rng = np.random.default_rng(seed + 1)
    shifted = sorted(rng.choice(numeric, size=features, replace=False).tolist()) if features else []
    for c in shifted:
        df[c] = df[c].astype(float) + shift * float(profile["columns"][c].get("std") or 0.0)
    step = (end - start) / rows
    stamp = jsonio.format_utc(end).replace("-", "").replace(":", "")
    # Ids exist before scoring: the router routes by request id (issue 7).
    ids = [f"sim-{stamp}-{seed}-{i:07d}" for i in range(rows)]
    records = score_rows(repo, df, ids, [jsonio.format_utc(start + step * i) for i in range(rows)])
    fb_records = []
    if feedback and labels is not None:
        flip = rng.uniform(size=rows) < label_noise
        truth = np.where(flip, 1 - labels, labels)
        fb_records = [
            {"request_id": r["request_id"], "label": int(y), "time": jsonio.format_utc(end)}
            for r, y in zip(records[:rows], truth, strict=True)  # shadow records follow the served ones
        ]
    if fmt == "parquet":
        folder = repo.production_logs
        predlog.write_parquet(folder / f"predictions-{stamp}-{seed}.parquet", records)
        if fb_records:
            predlog.write_parquet(folder / f"feedback-{stamp}-{seed}.parquet", fb_records)
        written = [folder / f"predictions-{stamp}-{seed}.parquet"]
    else:
        written = predlog.append_predictions(repo, records)
        if fb_records:
            written += predlog.append_feedback(repo, fb_records)
    return {
        "rows": rows, "shifted_features": shifted, "shift": shift, "label_noise": label_noise,
        "feedback_rows": len(fb_records), "model_version": manifest.get("version"),
        "window": {"since": jsonio.format_utc(start), "until": jsonio.format_utc(end)},
        "files": sorted({repo.rel(p) for p in written}),
    }  # fmt: skip
