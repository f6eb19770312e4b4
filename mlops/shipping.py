"""What `mlops serve` logs, from its write-ahead log (mlops.wal) to the log store (mlops.logstore).

`ServingLog` is the server's one log: `log_predictions` / `log_feedback` return once the rows are
fsynced in the WAL (a request is acknowledged only then); a background thread seals the open
segment when it holds part_max_rows rows or its first row is part_max_age_seconds old, and ships
every sealed segment with `Store.write` per kind, oldest first, deleting a segment only after the
store write returned. On start every segment left by an earlier run (a torn one included, its tail
cut) is shipped the same way. A store that cannot be written keeps the segments on disk (the
backlog) and is retried with a backoff; past buffer_max_rows unshipped rows the server refuses new
rows (503). On a clean shutdown what is left is sealed and shipped once more.

Duplicates: a segment is renamed `.shipping` (durably) before its first store write. A `.shipping`
segment found on a later attempt (the store write failed midway, or the server died between the
store write and the delete) may be partly in the store: its rows are checked against the store's
rows of the same hours and only the missing ones are written, so a replay never duplicates a row.
The key is (request_id, role, model_version, time) for predictions, (request_id, label, time) for
feedback.

Request ids for POST /feedback: ids served since start (and the WAL's at start) are kept in memory,
id -> serving model version, for feedback_lookback_days. An id not there is looked up once in the
store's predictions of the lookback before the server started (read on the first miss, kept).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

from mlops import jsonio
from mlops.wal import KINDS, Segment, Wal, read_segment

_MAX_BACKOFF = 30.0


def _key(kind: str, rec: dict[str, Any]) -> tuple:
    when = jsonio.format_utc(jsonio.parse_utc(str(rec["time"])))
    if kind == "predictions":
        return (str(rec["request_id"]), rec["role"], str(rec["model_version"]), when)
    return (str(rec["request_id"]), str(rec["label"]), when)


def _hours(records: list[dict[str, Any]]) -> tuple[dt.datetime, dt.datetime]:
    times = [jsonio.parse_utc(str(r["time"])) for r in records]
    lo = min(times).replace(minute=0, second=0, microsecond=0)
    return lo, max(times).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)


class ServedIds:
    """Request ids this server served (id -> model version), and the store's from before it started."""

    def __init__(self, lookback_days: float):
        self.lookback = dt.timedelta(days=lookback_days)
        self.started = jsonio.utc_now()
        self._lock = threading.Lock()
        self._ids: dict[str, tuple[str, float]] = {}  # insertion order is serving order
        self._store_ids: dict[str, str] | None = None

    def add(self, records: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        with self._lock:
            for rec in records:
                if rec.get("role") != "shadow":
                    self._ids[str(rec["request_id"])] = (str(rec["model_version"]), now)
            horizon = now - self.lookback.total_seconds()
            while self._ids:
                first = next(iter(self._ids))
                if self._ids[first][1] >= horizon:
                    break
                del self._ids[first]

    def version_of(self, request_id: str, store: Any) -> str | None:
        """The model version that answered `request_id`, or None if neither this server nor the store has it."""
        with self._lock:
            if request_id in self._ids:
                return self._ids[request_id][0]
            if self._store_ids is None:  # once: what was shipped before this server started
                rows = store.read("predictions", self.started - self.lookback, self.started + dt.timedelta(seconds=1))
                self._store_ids = {str(r["request_id"]): str(r["model_version"]) for r in rows if r["role"] != "shadow"}
            return self._store_ids.get(request_id)


class Shipper:
    """The background thread that seals segments and writes them to the store."""

    def __init__(self, wal: Wal, store: Any, *, part_max_rows: int, part_max_age_seconds: float, tick: float = 0.2):
        self.wal, self.store = wal, store
        self.part_max_rows, self.part_max_age = part_max_rows, part_max_age_seconds
        self.tick = min(tick, part_max_age_seconds)
        self.last_error: str | None = None
        self.last_error_time: str | None = None
        self.last_ship_time: str | None = None
        self.shipped_rows = 0
        self._pause = 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlops-shipper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def nudge(self) -> None:
        """An append filled the open segment: seal and ship now rather than at the next tick."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._pause or self.tick)
            self._wake.clear()
            if self._stop.is_set():
                return
            self.ship_once()

    def ship_once(self) -> bool:
        """Seal the open segment if due, then ship every sealed one; False when the store refused."""
        rows, age = self.wal.current_rows_and_age()
        if rows >= self.part_max_rows or (rows and age >= self.part_max_age):
            self.wal.seal()
        for seg in self.wal.sealed():
            try:
                self._ship(seg)
            except Exception as exc:  # noqa: BLE001 - any store failure keeps the segment for a retry
                self.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
                self.last_error_time = jsonio.format_utc(jsonio.utc_now())
                self._pause = min(_MAX_BACKOFF, max(self.tick, self._pause * 2))
                return False
        self._pause = 0.0
        return True

    def _ship(self, seg: Segment) -> None:
        retry = seg.shipping
        seg = self.wal.mark_shipping(seg)
        records, problems = read_segment(seg.path)
        if problems:  # a whole line that is no row (the disk, not a writer): kept beside the segment, not shipped
            side = seg.path.with_name(seg.path.name + ".bad")
            side.write_text("".join(p + "\n" for p in problems), encoding="utf-8")
        for kind in KINDS:
            rows = records[kind]
            if rows and retry:
                rows = self._not_in_store(kind, rows)
            if rows:
                self.store.write(kind, rows)
        self.wal.remove(seg)
        self.shipped_rows += seg.rows
        self.last_ship_time = jsonio.format_utc(jsonio.utc_now())

    def _not_in_store(self, kind: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        since, until = _hours(rows)
        have = {_key(kind, r) for r in self.store.read(kind, since, until)}
        return [r for r in rows if _key(kind, r) not in have]

    def stop(self) -> None:
        """Stop the thread, seal what is open and try one last time to ship it (kept on disk if the store refuses)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()
        self.wal.seal()
        self.ship_once()

    def status(self) -> dict[str, Any]:
        sealed = self.wal.sealed()
        open_rows, _age = self.wal.current_rows_and_age()
        return {
            "uri": getattr(self.store, "uri", None),
            "backlog_rows": self.wal.backlog,
            "segments": len(sealed) + (1 if open_rows else 0),
            "last_error": self.last_error,
            "last_error_time": self.last_error_time,
            "last_ship_time": self.last_ship_time,
            "shipped_rows": self.shipped_rows,
            "wal_broken": self.wal.broken,
        }


class FeedbackRefused(Exception):
    """A feedback item the server answers with 400 and this message."""


def _is_class(label: Any, classes: list[Any]) -> bool:
    if isinstance(label, bool) or not isinstance(label, (str, int, float)):
        return False
    return any(label == c if not isinstance(c, bool) else False for c in classes) or str(label) in map(str, classes)


class ServingLog:
    """The server's log: WAL appends that return once durable, the shipper, the served request ids."""

    def __init__(self, wal: Wal, store: Any, cfg: Any):
        self.wal, self.store = wal, store
        self.part_max_rows = cfg.part_max_rows
        self.served = ServedIds(cfg.feedback_lookback_days)
        for seg in wal.sealed():  # ids of the rows the last run logged but did not ship
            self.served.add(read_segment(seg.path)[0]["predictions"])
        self.shipper = Shipper(
            wal, store, part_max_rows=cfg.part_max_rows, part_max_age_seconds=cfg.part_max_age_seconds
        )

    @classmethod
    def open(cls, repo: Any, cfg: Any) -> ServingLog:
        """The WAL under config/store.json /wal_dir and the store at /uri, from the repository's config."""
        from pathlib import Path

        from mlops.logstore import open_store

        store = open_store(cfg)
        folder = Path(cfg.store.wal_dir)
        folder = folder if folder.is_absolute() else repo.root / folder
        wal = Wal(folder, group_commit_ms=cfg.store.group_commit_ms, max_rows=cfg.store.buffer_max_rows)
        return cls(wal, store, cfg.store)

    def start(self) -> None:
        self.shipper.start()
        self.shipper.nudge()  # ship what the last run left at once

    def _append(self, kind: str, records: list[dict[str, Any]]) -> None:
        self.wal.append([(kind, records)])
        rows, _age = self.wal.current_rows_and_age()
        if rows >= self.part_max_rows:
            self.shipper.nudge()

    def log_predictions(self, records: list[dict[str, Any]]) -> None:
        """Durable on return (BufferFull / WalBroken otherwise)."""
        self._append("predictions", records)
        self.served.add(records)

    def feedback_records(self, items: list[dict[str, Any]], classes_of: Any) -> list[dict[str, Any]]:
        """Feedback records stamped now, after every item is checked; FeedbackRefused names the first bad one."""
        now = jsonio.format_utc(jsonio.utc_now())
        out = []
        for i, item in enumerate(items):
            where = f"feedback[{i}]" if len(items) > 1 else "feedback"
            if not isinstance(item, dict) or "request_id" not in item or "label" not in item:
                raise FeedbackRefused(f'{where}: expected {{"request_id": ..., "label": ...}}; send both')
            rid = str(item["request_id"])
            version = self.served.version_of(rid, self.store)
            if version is None:
                raise FeedbackRefused(
                    f"{where}: request_id {rid[:80]!r} was never served (not by this server since it started, "
                    f"nor in the store's predictions of the last {self.served.lookback.days} days); "
                    "send feedback for a request id a prediction answered"
                )
            classes = classes_of(version)
            if not _is_class(item["label"], classes):
                raise FeedbackRefused(
                    f"{where}: label {str(item['label'])[:40]!r} is not one of model {version}'s classes "
                    f"({', '.join(map(str, classes))}); send one of them"
                )
            out.append({"request_id": rid, "label": item["label"], "time": now})
        return out

    def log_feedback(self, records: list[dict[str, Any]]) -> None:
        self._append("feedback", records)

    def status(self) -> dict[str, Any]:
        return self.shipper.status()

    def close(self) -> None:
        """Stop shipping, seal and ship what is left (kept in the WAL if the store refuses), release the WAL."""
        self.shipper.stop()
        self.wal.close()
