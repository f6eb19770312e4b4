"""The write-ahead log of `mlops serve`: a request is answered only once its rows are fsynced here.

The log is a folder of segments, `segment-<seq>.jsonl`, one JSON line per row:
`{"kind": "predictions" | "feedback", "record": {...}}`. Rows go to the newest segment; the shipper
(mlops.shipping) seals it by size or age (a new segment takes the next rows), renames a sealed
segment to `segment-<seq>.shipping` before writing its rows to the store, and deletes it once the
store write returned.

Group commit: a request thread appends its lines under the log's lock, then waits until an fsync
that started after its write has finished. One waiting thread (the leader) runs the fsync outside
the lock while others keep appending; they share the next fsync. When the last fsync covered more
than one request (the server is busy), the leader first waits up to `group_commit_ms` for more
writers to join; a lone client never waits. An fsync that fails breaks the log: every later append
is refused (the server answers 503) until the server is restarted, since a failed fsync may have
dropped pages the kernel then reports clean.

On open, each segment's torn tail (a writer killed mid-line) is moved to `<segment>.torn` and cut,
with the prediction log's handling (mlops.predlog); the open segment is never reused: every
segment found is sealed and waits for the shipper, and new rows go to a new segment. One server
per folder: the open takes an exclusive lock on `<wal_dir>/.lock`.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops import jsonio
from mlops.errors import BadInput

KINDS = ("predictions", "feedback")
_NAME = re.compile(r"^segment-(\d{12})\.(jsonl|shipping)$")


class BufferFull(Exception):
    """The unshipped rows would pass buffer_max_rows: nothing is written, the request is refused (503)."""


class WalBroken(Exception):
    """An fsync (or write) of the log failed: nothing more is acknowledged until a restart."""


@dataclass(frozen=True)
class Segment:
    path: Path
    seq: int
    rows: int
    shipping: bool  # renamed for shipping: some of its rows may already be in the store


def _fsync_dir(folder: Path) -> None:
    jsonio.fsync_dir(folder)


def encode(kind: str, records: Iterable[dict[str, Any]]) -> bytes:
    lines = [jsonio.dumps_line({"kind": kind, "record": rec}) for rec in records]
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def read_segment(path: Path) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """({kind: records}, problems) of a segment's whole lines; a bad line is a problem, not a record."""
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    problems = []
    data = path.read_bytes()
    lines = data.split(b"\n")
    lines.pop()  # after the last newline: empty, or a torn tail (cut on open)
    for lineno, raw in enumerate(lines, 1):
        try:
            row = json.loads(raw)
            out[row["kind"]].append(row["record"])
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"{path.name}:{lineno}: {type(exc).__name__}: {exc}")
    return out, problems


class Wal:
    """The log folder: append (durable on return), seal, list sealed segments, remove shipped ones."""

    def __init__(self, folder: Path, *, group_commit_ms: float, max_rows: int, where: str = "config/store.json"):
        import fcntl

        self.folder = folder
        self.delay = group_commit_ms / 1000.0
        self.max_rows = max_rows
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise BadInput(f"{where}: /wal_dir", f"cannot create {folder} ({exc.strerror})",
                           "point wal_dir at a writable local folder") from None  # fmt: skip
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise BadInput(f"{where}: /wal_dir", f"{folder} is in use by another `mlops serve`",
                           "stop that server, or give each server its own wal_dir") from None  # fmt: skip
        self.cond = threading.Condition()
        self._sealed: list[Segment] = self._recover()
        self.backlog = sum(s.rows for s in self._sealed)
        self._written = self._synced = 0  # append tickets: written and made durable
        self._syncing = False
        self._last_group = 1
        self.broken: str | None = None
        self._fd = -1
        self._seq = max((s.seq for s in self._sealed), default=0)
        self._open_next()

    # ------------------------------------------------------------------ segments

    def _recover(self) -> list[Segment]:
        from mlops.predlog import _cut_torn_tail

        found = []
        for path in sorted(self.folder.iterdir()):
            m = _NAME.match(path.name)
            if not m:
                continue
            fd = os.open(path, os.O_RDWR)
            try:
                _cut_torn_tail(fd, path)  # the prediction log's torn-tail handling: fragment to <segment>.torn
            finally:
                os.close(fd)
            if path.stat().st_size == 0 and m.group(2) == "jsonl":
                path.unlink()  # an empty segment: nothing to ship
                continue
            rows = path.read_bytes().count(b"\n")
            found.append(Segment(path, int(m.group(1)), rows, m.group(2) == "shipping"))
        _fsync_dir(self.folder)
        return found

    def _open_next(self) -> None:
        self._seq += 1
        self._path = self.folder / f"segment-{self._seq:012d}.jsonl"
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        _fsync_dir(self.folder)  # the file's name is durable before any row in it is acknowledged
        self._rows = 0
        self._first: float | None = None

    def current_rows_and_age(self) -> tuple[int, float]:
        with self.cond:
            age = 0.0 if self._first is None else time.monotonic() - self._first
            return self._rows, age

    def seal(self) -> None:
        """Close the open segment (if it has rows) and start the next; its rows wait for the shipper."""
        with self.cond:
            while self._syncing:
                self.cond.wait()
            if self._rows == 0 or self.broken:
                return
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self._break(exc)
                return
            self._synced = self._written
            self.cond.notify_all()
            os.close(self._fd)
            self._sealed.append(Segment(self._path, self._seq, self._rows, False))
            self._open_next()

    def sealed(self) -> list[Segment]:
        with self.cond:
            return list(self._sealed)

    def mark_shipping(self, seg: Segment) -> Segment:
        """Rename a sealed segment to .shipping (durably) before any of its rows goes to the store."""
        if seg.shipping:
            return seg
        target = seg.path.with_suffix(".shipping")
        os.replace(seg.path, target)
        _fsync_dir(self.folder)
        marked = Segment(target, seg.seq, seg.rows, True)
        with self.cond:
            self._sealed = [marked if s.seq == seg.seq else s for s in self._sealed]
        return marked

    def remove(self, seg: Segment) -> None:
        """Delete a segment whose rows the store holds."""
        seg.path.unlink(missing_ok=True)
        _fsync_dir(self.folder)
        with self.cond:
            self._sealed = [s for s in self._sealed if s.seq != seg.seq]
            self.backlog -= seg.rows
            self.cond.notify_all()

    # ------------------------------------------------------------------ append

    def append(self, batches: list[tuple[str, list[dict[str, Any]]]]) -> None:
        """Write [(kind, records), ...] and return once they are fsynced; BufferFull or WalBroken otherwise."""
        payload = b"".join(encode(kind, recs) for kind, recs in batches)
        rows = sum(len(recs) for _kind, recs in batches)
        if not rows:
            return
        with self.cond:
            if self.broken:
                raise WalBroken(self.broken)
            if self.backlog + rows > self.max_rows:
                raise BufferFull(f"{self.backlog} rows wait for the store (buffer_max_rows {self.max_rows})")
            try:
                jsonio.write_all(self._fd, payload)
            except OSError as exc:
                self._break(exc)
                raise WalBroken(self.broken) from None
            self._written += 1
            ticket = self._written
            self._rows += rows
            self.backlog += rows
            if self._first is None:
                self._first = time.monotonic()
            self._wait_durable(ticket)

    def _wait_durable(self, ticket: int) -> None:
        """Called under the lock: return once an fsync covered `ticket` (leading one if none runs)."""
        while self._synced < ticket:
            if self.broken:
                raise WalBroken(self.broken)
            if self._syncing:
                self.cond.wait()
                continue
            self._syncing = True
            try:
                if self.delay and self._last_group > 1:
                    self.cond.wait(self.delay)  # busy: let more writers join this fsync
                target, fd = self._written, self._fd
                self.cond.release()
                try:
                    os.fsync(fd)
                    error = None
                except OSError as exc:
                    error = exc
                finally:
                    self.cond.acquire()
            finally:
                self._syncing = False
                self.cond.notify_all()
            if error is not None:
                self._break(error)
                raise WalBroken(self.broken)
            self._last_group = target - self._synced
            self._synced = max(self._synced, target)

    def _break(self, exc: OSError) -> None:
        self.broken = f"write-ahead log {self.folder}: {exc.strerror or exc}; restart the server"
        self.cond.notify_all()

    def close(self) -> None:
        """Seal what is open (fsynced) and release the folder."""
        self.seal()
        with self.cond:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if self._rows == 0:
                self._path.unlink(missing_ok=True)
        os.close(self._lock_fd)
