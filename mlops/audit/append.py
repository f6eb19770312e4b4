"""Appending to the log: the locked writer, record() for one event, and checkpoints after an append.

Writers serialise on a file lock (metadata/audit/.lock). An append is a plain loop over the new entries:
encode, fold the leaf into the tree's compact range (its peaks), write the line; then fsync, then a new
checkpoint, fsynced too. So an event is durable when record() returns, and a crash mid-append can only leave
an incomplete final line, which verify names and `mlops audit repair --truncate-torn-tail` removes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlops import jsonio
from mlops.audit.checkpoint import NOTE, log_origin, next_checkpoint, parse_checkpoint, signing_key_for
from mlops.audit.entries import (
    CHECKPOINTS,
    LOCK,
    REPAIR_COMMAND,
    SEGMENT_RE,
    STATE_CACHE,
    VKEY,
    EntryEncoder,
    check_entry_line,
    check_event_type,
    default_actor,
    encode_payload,
    parse_line,
    segment_name,
)
from mlops.audit.log import last_line, read_dir, split_lines
from mlops.errors import CheckFailed
from mlops.merkle import EMPTY_ROOT, MerkleTree, append_to_peaks, leaf_hash, root_from_peaks
from mlops.repo import Repo

# ~5,000 entries of 200 bytes per segment: a diff stays small and git never rewrites an old segment.
SEGMENT_BYTES = 1 << 20
CHECKPOINT_FORMAT = "c2sp.org/tlog-checkpoint"
LEGACY_FORMAT = "mlops-audit-checkpoint/v1"


def _torn_message(path: str, line_no: int, nbytes: int, what: str) -> str:
    return (
        f"{path} line {line_no}: the final {what} is incomplete ({nbytes} bytes without a newline: an append was "
        f"interrupted); run `{REPAIR_COMMAND}` to remove only that incomplete line, then retry"
    )


def read_peak_cache(folder: Path, size: int, root: bytes) -> list[bytes] | None:
    """The cached peaks of the tree of `size` entries, trusted only when they reproduce `root`."""
    try:
        state = json.loads((folder / STATE_CACHE).read_bytes())
        peaks = [bytes.fromhex(p) for p in state["peaks"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    # Other peaks with this root would be a SHA-256 collision.
    if state.get("size") != size or size.bit_count() != len(peaks) or root_from_peaks(peaks) != root:
        return None
    return peaks


def write_peak_cache(folder: Path, size: int, peaks: list[bytes]) -> None:
    # A cache, not a record: replaced atomically but not fsynced; a stale one fails read_peak_cache's check.
    tmp = folder / (STATE_CACHE + ".tmp")
    tmp.write_bytes(jsonio.canonical({"size": size, "peaks": [p.hex() for p in peaks]}))
    os.replace(tmp, folder / STATE_CACHE)


def switch_event(prev: dict, origin: str) -> tuple[str, dict]:
    """The event recorded when legacy JSON checkpoints give way to C2SP notes (verify checks it is there)."""
    payload = {
        "checkpoint_format": CHECKPOINT_FORMAT,
        "origin": origin,
        "previous_format": LEGACY_FORMAT,
        "previous_root": prev["root"],
        "previous_size": prev["size"],
    }
    return "checkpoint_format", payload


class AuditWriter:
    """Appends entries and checkpoints under the log's file lock; use as a context manager.

    It keeps only the compact range (the peaks) of the tree in memory: enough to compute every new root.
    The peaks come from a cache file checked against the latest checkpoint's root, or are rebuilt by hashing
    the log; either way they are never taken from an entry that a checkpoint does not already cover.
    """

    def __init__(self, repo: Repo, *, actor: str | None = None, timeout: float = 60.0, signing_key: Any = None):
        self._signing_key = signing_key
        self.repo = repo
        self.dir = repo.audit_dir
        self.where = repo.rel(self.dir)
        self._timeout = timeout
        self._actor = actor
        self._lock: Any = None
        self._fd: int | None = None
        self._broken = False

    def __enter__(self) -> AuditWriter:
        from filelock import FileLock, Timeout

        # Validated before anything is created.
        line = last_line(self.dir / CHECKPOINTS)
        try:
            last = parse_line(line) if line else None
        except ValueError:
            last = None  # _load names it
        self.origin = log_origin(self.repo, last if isinstance(last, dict) else None)
        self.signing_key = self._signing_key or signing_key_for(self.dir, self.origin)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.dir / LOCK))
        try:
            # A short poll: filelock retries a busy lock by polling, and appends hold it for milliseconds.
            self._lock.acquire(timeout=self._timeout, poll_interval=0.002)
        except Timeout:
            raise CheckFailed(
                f"{self.where}/{LOCK}: another process held the audit lock for {self._timeout:.0f}s"
            ) from None
        try:
            self._load()
        except BaseException:
            self._lock.release()
            raise
        self.encoder = EntryEncoder(
            default_actor(self._actor), self.repo.git_commit(), os.environ.get("GITHUB_RUN_ID") or None
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._lock.release()

    # -- state

    def _load(self) -> None:
        """The latest checkpoint, the last segment and the peaks; CheckFailed when the log cannot take an append."""
        ck_path = self.dir / CHECKPOINTS
        if ck_path.exists() and ck_path.stat().st_size:
            with open(ck_path, "rb") as fh:  # only its last byte: checkpoints.jsonl grows without bound
                fh.seek(-1, os.SEEK_END)
                ends_clean = fh.read(1) == b"\n"
            if not ends_clean:
                lines = ck_path.read_bytes().split(b"\n")
                raise CheckFailed(
                    _torn_message(f"{self.where}/{CHECKPOINTS}", len(lines), len(lines[-1]), "checkpoint")
                )
        line = last_line(ck_path)
        self.last_checkpoint = parse_checkpoint(line, f"{self.where}/{CHECKPOINTS} (last line)") if line else None
        ck_size = self.last_checkpoint["size"] if self.last_checkpoint else 0
        ck_root = bytes.fromhex(self.last_checkpoint["root"]) if self.last_checkpoint else EMPTY_ROOT
        on_disk = self._open_last_segment()
        if on_disk < ck_size:
            raise CheckFailed(
                f"{self.where}: holds {on_disk} entries but the latest checkpoint covers {ck_size}; entries were "
                "removed. Run `mlops audit verify` to see where"
            )
        peaks = read_peak_cache(self.dir, ck_size, ck_root)
        if peaks is None:
            tree = MerkleTree()
            tree.extend(read_dir(self.dir, self.where).lines[:ck_size])
            if tree.root() != ck_root:
                raise CheckFailed(
                    f"{self.where}: the entries do not match the latest checkpoint's root; run `mlops audit verify`"
                )
            peaks = tree.peaks()
        self.peaks, self.size = peaks, ck_size
        # Complete entries after the latest checkpoint (a writer stopped between entry and checkpoint) are
        # checked, then folded in; the next checkpoint covers them.
        if on_disk > ck_size:
            tail = read_dir(self.dir, self.where)
            for seq in range(ck_size, on_disk):
                problem = check_entry_line(tail.lines[seq], seq)
                if problem:
                    raise CheckFailed(f"entry seq {seq} ({tail.locate(seq)}) {problem}; run `mlops audit verify`")
                self.peaks, self.size = append_to_peaks(self.peaks, self.size, leaf_hash(tail.lines[seq]))

    def _open_last_segment(self) -> int:
        """Set the segment appends go to (the last one); returns the number of complete entries on disk."""
        segs = sorted((int(m.group(1)), p.name) for p in self.dir.iterdir() if (m := SEGMENT_RE.match(p.name)))
        if not segs:
            self.seg_first, self.seg_name, self.seg_bytes = 0, segment_name(0), 0
            return 0
        first, name = segs[-1]
        data = (self.dir / name).read_bytes()
        lines, torn = split_lines(data)
        if torn:
            raise CheckFailed(_torn_message(f"{self.where}/{name}", len(lines) + 1, torn, "entry"))
        self.seg_first, self.seg_name, self.seg_bytes = first, name, len(data)
        return first + len(lines)

    # -- appending

    def encode(self, events: Iterable[tuple[str, dict]], time: str | None = None) -> list[bytes]:
        """Validate and encode events as entry lines (no newline) from seq self.size on; writes nothing."""
        when = time or jsonio.format_utc(jsonio.utc_now())
        return [
            self.encoder.line(self.size + i, when, event_type, payload)
            for i, (event_type, payload) in enumerate(events)
        ]

    def append_lines(self, lines: list[bytes]) -> range:
        """Append encoded entry lines durably; returns their seqs.

        Each line is folded into the peaks and written; the segment is fsynced when it fills and at the end.
        The new size and peaks are kept only once every write and fsync has returned.
        """
        if self._broken:
            raise CheckFailed(f"{self.where}: an earlier append failed in this writer; open a new one")
        first = self.size
        peaks, size = self.peaks, self.size
        try:
            for line in lines:
                if self.seg_bytes and self.seg_bytes + len(line) + 1 > SEGMENT_BYTES:
                    self._roll(size)
                peaks, size = append_to_peaks(peaks, size, leaf_hash(line))
                self._write(line + b"\n")
            if self._fd is not None:
                os.fsync(self._fd)
        except BaseException:
            self._broken = True
            raise
        self.peaks, self.size = peaks, size
        return range(first, size)

    def _roll(self, first_seq: int) -> None:
        """Start a new segment: the current one is full, so it is made durable and never written again."""
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        self.seg_first, self.seg_name, self.seg_bytes = first_seq, segment_name(first_seq), 0

    def _write(self, payload: bytes) -> None:
        """Write whole lines to the current segment (opened, and created durably, on first use)."""
        if self._fd is None:
            path = self.dir / self.seg_name
            created = not path.exists()
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if created:
                jsonio.fsync_dir(self.dir)
        jsonio.write_all(self._fd, payload)
        self.seg_bytes += len(payload)

    def checkpoint(self, *, force: bool = False) -> dict:
        """Append a checkpoint for the current size (signed when a key is set); returns it.

        Without force, a checkpoint for an unchanged size is not repeated; force re-signs the current head.
        """
        prev = self.last_checkpoint
        if prev is not None and prev["size"] == self.size and not force:
            return prev
        if self.size == 0:
            raise CheckFailed(f"{self.where}: the log is empty; there is no tree head to checkpoint")
        if prev is not None and NOTE not in prev:  # the one event that marks the switch to C2SP notes
            self.append_lines(self.encode([switch_event(prev, self.origin)]))
            if self.signing_key is not None and not (self.dir / VKEY).exists():  # the legacy key, as a vkey
                jsonio.atomic_write_bytes(self.dir / VKEY, (self.signing_key.verifier.vkey() + "\n").encode())
        ck = next_checkpoint(prev, self.size, root_from_peaks(self.peaks), self.origin, self.signing_key)
        fd = os.open(self.dir / CHECKPOINTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            jsonio.write_all(fd, jsonio.canonical(ck) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        self.last_checkpoint = ck
        write_peak_cache(self.dir, self.size, self.peaks)
        return ck

    def append_batch(self, events: Iterable[tuple[str, dict]], *, checkpoint: bool = True) -> range:
        """Append (event_type, payload) pairs, then (by default) one checkpoint; returns their seqs."""
        seqs = self.append_lines(self.encode(events))
        if checkpoint:
            self.checkpoint()
        return seqs


def writer(repo: Repo, *, actor: str | None = None, timeout: float = 60.0) -> AuditWriter:
    """A locked writer for several appends: ``with audit.writer(repo) as w: w.append_batch(events)``."""
    return AuditWriter(repo, actor=actor, timeout=timeout)


def record(repo: Repo, event_type: str, payload: dict, *, actor: str | None = None) -> dict:
    """Append one event durably (entry fsynced, then a new checkpoint) and return the stored entry."""
    check_event_type(event_type)
    encode_payload(payload)  # bad input is refused before the lock is taken or anything is created
    with AuditWriter(repo, actor=actor) as w:
        (line,) = w.encode([(event_type, payload)])
        w.append_lines([line])
        w.checkpoint()
    return parse_line(line)
