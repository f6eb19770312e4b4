"""A window of production data for monitoring and canary analysis: the log store's parts plus the
JSONL/Parquet logs config/monitoring.json's "log" globs name (older logs stay readable).

A row in both (the same prediction logged to a file and shipped to the store) is counted once,
the store's copy first: predictions by (request_id, role), feedback by (request_id, time, label).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mlops import predlog
from mlops.logstore.store import dedupe_key, open_uri


def read_logs(
    cfg: Any,
    kind: str,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    on_malformed: str = "refuse",
) -> predlog.LogRead:
    """Records of `kind` with since <= time < until from the store and the legacy log files.

    `files` lists the store parts read (absolute paths for a local store, URIs otherwise), then the
    log files; `skipped` the malformed parts, rows and lines skipped with on_malformed "skip"."""
    store = open_uri(cfg.store.uri, cfg.repo.root)
    scan = store.scan(kind, since, until, on_malformed)
    pattern = cfg.monitoring.log.predictions if kind == "predictions" else cfg.monitoring.log.feedback
    legacy = predlog.read(cfg.repo, pattern, kind, since, until, on_malformed)
    seen: set[tuple] = set()
    records = []
    for rec in scan.records + legacy.records:
        key = dedupe_key(kind, rec)
        if key not in seen:
            seen.add(key)
            records.append(rec)
    backend = store.backend
    files = [backend.path(p.path) if backend.local else backend.location(p.path) for p in scan.parts]
    return predlog.LogRead(
        records=records,
        files=files + legacy.files,
        skipped=scan.skipped + legacy.skipped,
        outside_window=scan.outside_window + legacy.outside_window,
    )
