"""The `production` data source: logged predictions joined with their feedback labels (docs/data.md).

- The window: predictions with since <= time < until (config/dataset.json /production/window_hours
  back from now, or `mlops train --since/--until`); feedback with since <= time < the run's time
  (`as_of`), since a label arrives after its prediction.
- The join: one prediction per request_id (the production row, else canary, else any role, in that
  order; the features of a request are the same whatever model scored it); the last feedback of a
  request_id wins (latest time; at the same second the greater label as text, so a rerun agrees).
  Only predictions with a label are rows; the label column is config/dataset.json /label.
- The columns: with /production/mix_base the base data set's columns (its rows first, production rows
  after; a logged feature the base lacks is left out and recorded, a base column no prediction logged
  is empty); else the logged features, sorted, then the label. /timestamp_column, when set, holds each
  production row's prediction time.
- The identity: the data set's sha256 is derived from what it was built from (`derived_sha256`), known
  before anything is written; the file is datasets/cache/production-<sha256[:16]>.parquet with a
  `.source.json` sidecar holding the lineage and the file's own sha256.

This module does not import `mlops.data` (which calls it); the base data set arrives as a table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops import jsonio
from mlops.config import Config
from mlops.errors import EXIT_OK, BadInput, MlopsError

DERIVATION = "mlops.production_data/1"
ROLE_ORDER = ("production", "canary")
READ_ATTEMPTS = 3


class WaitingForLabels(MlopsError):
    """Not a failure: too few labelled production rows yet. `mlops train` records it as the run's
    outcome and exits 0; any other command that meets it says so and exits 0 too."""

    exit_code = EXIT_OK

    def __init__(self, labelled: int, needed: int, lineage: dict[str, Any]):
        self.labelled = labelled
        self.needed = needed
        self.lineage = lineage
        w = lineage["window"]
        super().__init__(
            f"waiting for labels: {labelled} labelled production row(s) for predictions {w['since']} .. {w['until']} "
            f"in {lineage['store']}, {needed} needed (config/dataset.json /production/min_labelled_rows)"
        )


@dataclass(frozen=True)
class Window:
    since: dt.datetime
    until: dt.datetime
    as_of: dt.datetime  # feedback is read up to here: the run's time
    given: str  # "command line" or "config/dataset.json /production/window_hours"

    def record(self) -> dict[str, str]:
        return {
            "since": jsonio.format_utc(self.since),
            "until": jsonio.format_utc(self.until),
            "feedback_until": jsonio.format_utc(self.as_of),
            "from": self.given,
        }


@dataclass(frozen=True)
class Built:
    """The materialised production data set, for `mlops.data` to wrap in a DatasetFile."""

    path: Path
    sha256: str  # derived (see derived_sha256)
    file_sha256: str
    fetched_at: str
    updated_at: str | None
    detail: str
    lineage: dict[str, Any]


def window(cfg: Config, since: str | None = None, until: str | None = None) -> Window:
    """The prediction window: --since/--until when given, else window_hours back from --until or now."""
    now = jsonio.utc_now()
    end = jsonio.parse_utc(until, "--until") if until else now
    start = (
        jsonio.parse_utc(since, "--since") if since else end - dt.timedelta(hours=cfg.dataset.production.window_hours)
    )
    if end > now:
        raise BadInput("--until", f"{jsonio.format_utc(end)} is after the run's time {jsonio.format_utc(now)}",
                       "give an --until in the past: labels of later predictions cannot exist yet")  # fmt: skip
    if start >= end:
        raise BadInput("--since", f"{jsonio.format_utc(start)} is not before {jsonio.format_utc(end)}",
                       "give a --since earlier than --until")  # fmt: skip
    given = "command line" if since or until else "config/dataset.json /production/window_hours"
    return Window(start, end, now, given)


def derived_sha256(label: str, win: Window, parts: dict[str, list[dict[str, Any]]], base_sha256: str | None) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of everything the rows are a function of:
    the derivation rules' version, the label column, the window and feedback cut-off, the sha256 of
    every part read (per kind, sorted) and the base data set's sha256 (null without one). The same
    parts, window and base always give the same sha256, whoever builds it and wherever the store is."""
    doc = {
        "derivation": DERIVATION,
        "label": label,
        "window": {k: v for k, v in win.record().items() if k != "from"},
        "parts": {kind: sorted(p["sha256"] for p in listed) for kind, listed in sorted(parts.items())},
        "base_sha256": base_sha256,
    }
    return hashlib.sha256(jsonio.canonical(doc)).hexdigest()


def _read_consistent(store: Any, kind: str, since: dt.datetime, until: dt.datetime) -> tuple[list[dict], list[Any]]:
    """(records, parts) of one kind, the parts listed before and after the read being the same ones, so
    the lineage names exactly the parts the rows came from (a part shipped meanwhile: read again)."""
    for _ in range(READ_ATTEMPTS):
        before = store.parts(kind, since, until)
        records = store.read(kind, since, until)
        after = store.parts(kind, since, until)
        if [(p.path, p.sha256) for p in before] == [(p.path, p.sha256) for p in after]:
            return records, before
    raise BadInput(store.uri, f"new {kind} parts kept arriving while the window was read ({READ_ATTEMPTS} tries)",
                   "run again, or give an --until further in the past")  # fmt: skip


def _choose_predictions(records: list[dict]) -> dict[str, dict]:
    """One prediction per request_id: production, else canary, else the first role by name; then the earliest."""

    def rank(rec: dict) -> tuple:
        role = str(rec.get("role"))
        order = ROLE_ORDER.index(role) if role in ROLE_ORDER else len(ROLE_ORDER)
        return (order, role, rec["time"])

    out: dict[str, dict] = {}
    for rec in records:
        key = str(rec["request_id"])
        if key not in out or rank(rec) < rank(out[key]):
            out[key] = rec
    return out


def _last_labels(records: list[dict]) -> tuple[dict[str, Any], int]:
    """({request_id: label}, how many request_ids had more than one label): the latest wins."""
    best: dict[str, tuple] = {}
    seen: dict[str, int] = {}
    for rec in records:
        key = str(rec["request_id"])
        seen[key] = seen.get(key, 0) + 1
        rank = (jsonio.format_utc(jsonio.parse_utc(str(rec["time"]))), str(rec["label"]))
        if key not in best or rank > best[key][0]:
            best[key] = (rank, rec["label"])
    return {k: v[1] for k, v in best.items()}, sum(1 for n in seen.values() if n > 1)


def _rows(cfg: Config, predictions: dict[str, dict], labels: dict[str, Any]) -> list[dict]:
    ds = cfg.dataset
    joined = sorted((p["time"], key) for key, p in predictions.items() if key in labels)
    rows = []
    for _, key in joined:
        p = predictions[key]
        row = dict(p["features"])
        if ds.timestamp_column:
            row[ds.timestamp_column] = p["time"]
        row[ds.label] = labels[key]
        rows.append(row)
    return rows


def _frame(cfg: Config, rows: list[dict], base: Any | None) -> tuple[Any, list[str]]:
    """(DataFrame of the production rows, after the base rows when given; logged features left out)."""
    import pandas as pd

    label = cfg.dataset.label
    names = sorted({k for r in rows for k in r} - {label})
    if base is None:
        return pd.DataFrame(rows, columns=[*names, label]), []
    base_frame = base.to_pandas()
    columns = list(base_frame.columns)
    if label not in columns:
        raise BadInput(f"the base data set: column {label!r}", "the label column named by /label is missing",
                       "fix config/dataset.json /label or the base data")  # fmt: skip
    left_out = [n for n in names if n not in columns]
    prod = pd.DataFrame(rows, columns=columns)
    a, b = base_frame[label], prod[label]
    numeric = pd.api.types.is_numeric_dtype
    if not (numeric(a) and numeric(b)) and a.dtype != b.dtype:  # 1 and "1" must not become two classes
        base_frame[label], prod[label] = a.astype("string"), b.astype("string")
    frame = pd.concat([base_frame, prod], ignore_index=True) if len(base_frame) else prod
    return frame, left_out


def _parquet_bytes(frame: Any) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    return buffer.getvalue().to_pybytes()


def _part_list(parts: list[Any]) -> list[dict[str, Any]]:
    return [{"path": p.path, "sha256": p.sha256, "rows": p.rows} for p in parts]


def build(cfg: Config, win: Window, base: tuple[dict[str, Any], Any] | None = None, store: Any | None = None) -> Built:
    """Read the window from the store, join, check there are enough labels, write the file (once).

    `base` is (the base data set's record, its pyarrow table) when /production/mix_base is on.
    Raises WaitingForLabels (nothing written) when fewer than /production/min_labelled_rows rows have a label.
    """
    from mlops import logstore

    ds, repo = cfg.dataset, cfg.repo
    store = store if store is not None else logstore.open_store(cfg)
    store.check_reachable()
    predictions, pred_parts = _read_consistent(store, "predictions", win.since, win.until)
    feedback, fb_parts = _read_consistent(store, "feedback", win.since, win.as_of)
    chosen = _choose_predictions(predictions)
    labels, relabelled = _last_labels(feedback)
    rows = _rows(cfg, chosen, labels)
    base_record = base[0] if base else None
    parts = {"predictions": _part_list(pred_parts), "feedback": _part_list(fb_parts)}
    sha = derived_sha256(ds.label, win, parts, base_record["sha256"] if base_record else None)
    lineage: dict[str, Any] = {
        "store": store.uri,
        "window": win.record(),
        "derivation": DERIVATION,
        "parts": parts,
        "rows": {
            "predictions": len(chosen), "feedback": len(labels), "relabelled": relabelled, "labelled": len(rows),
            "base": None, "total": None,
        },
        "min_labelled_rows": ds.production.min_labelled_rows,
        "base": base_record,
        "left_out_features": [],
    }  # fmt: skip
    if len(rows) < ds.production.min_labelled_rows:
        raise WaitingForLabels(len(rows), ds.production.min_labelled_rows, lineage)
    frame, left_out = _frame(cfg, rows, base[1] if base else None)
    lineage["rows"].update(base=len(frame) - len(rows) if base else None, total=len(frame))
    lineage["left_out_features"] = left_out
    path = repo.download_cache / f"production-{sha[:16]}.parquet"
    side_path = path.with_name(path.name + ".source.json")
    payload = _parquet_bytes(frame)
    file_sha = hashlib.sha256(payload).hexdigest()
    updated = max(chosen[k]["time"] for k in chosen if k in labels)
    side = {"source": "production", "sha256": sha, "file_sha256": file_sha, "fetched_at": jsonio.format_utc(win.as_of),
            "updated_at": updated, "production": lineage}  # fmt: skip
    if not (path.is_file() and _file_sha(path) == file_sha):
        path.parent.mkdir(parents=True, exist_ok=True)
        jsonio.atomic_write_bytes(path, payload)
    jsonio.write_json(side_path, side)
    w = lineage["window"]
    base_note = f" after {lineage['rows']['base']} base row(s)" if base else ""
    detail = (
        f"{store.uri}: predictions {w['since']} .. {w['until']}, feedback until {w['feedback_until']}; "
        f"{len(rows)} labelled row(s){base_note}"
    )
    return Built(path, sha, file_sha, side["fetched_at"], updated, detail, lineage)


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def window_of(record: dict[str, Any]) -> Window | None:
    """The Window a manifest's production lineage was built over (None when it records none)."""
    w = (record.get("production") or {}).get("window") or {}
    try:
        return Window(
            jsonio.parse_utc(str(w["since"])), jsonio.parse_utc(str(w["until"])),
            jsonio.parse_utc(str(w["feedback_until"])), str(w.get("from", "")),
        )  # fmt: skip
    except (KeyError, BadInput):
        return None
