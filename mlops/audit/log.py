"""Reading the log: its segments (entries-<first seq>.jsonl) and checkpoints.jsonl, from a folder or a git tree.

Only complete lines count; bytes after the last newline of a file are kept aside as a torn tail (an append
that was interrupted), which verify names and `mlops audit repair --truncate-torn-tail` removes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.audit.checkpoint import load_public_key, read_vkey
from mlops.audit.entries import CHECKPOINTS, PUBLIC_KEY, SEGMENT_RE, VKEY, WITNESSED
from mlops.errors import CheckFailed


@dataclass
class Segment:
    name: str
    first_seq: int
    count: int


@dataclass
class LogData:
    """The raw log as read from a folder or a git tree: complete lines plus anything torn at the end."""

    segments: list[Segment] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    checkpoint_lines: list[bytes] = field(default_factory=list)
    torn_entry: tuple[str, int] | None = None  # (segment name, bytes after the last newline)
    torn_checkpoint: int | None = None  # bytes after the last newline of checkpoints.jsonl
    public_key: Any = None  # the legacy PEM key (checkpoint-key.pub)
    vkey: Any = None  # the log's C2SP verifier key (checkpoint.vkey)
    witnessed: bytes | None = None  # the file `checkpoint`: the newest note with witness cosignatures
    where: str = "metadata/audit"

    def locate(self, seq: int) -> str:
        """'metadata/audit/entries-….jsonl line L' for the entry at position seq."""
        for seg in reversed(self.segments):
            if seg.first_seq <= seq:
                return f"{self.where}/{seg.name} line {seq - seg.first_seq + 1}"
        return f"{self.where} (seq {seq})"


def split_lines(data: bytes) -> tuple[list[bytes], int]:
    """Complete lines of a JSONL file and the length of an incomplete last line (0 when none)."""
    if not data:
        return [], 0
    parts = data.split(b"\n")
    torn = len(parts[-1])
    return parts[:-1], torn


def read_log(names: Iterable[str], read: Callable[[str], bytes], where: str = "metadata/audit") -> LogData:
    """Parse a log from its file names and a reader; raises CheckFailed on a broken segment sequence."""
    names = set(names)
    data = LogData(where=where)
    segs = sorted((int(m.group(1)), n) for n in names if (m := SEGMENT_RE.match(n)))
    for i, (first, name) in enumerate(segs):
        if first != len(data.lines):
            raise CheckFailed(
                f"{where}/{name}: segment starts at seq {first} but the segments before it hold "
                f"{len(data.lines)} entries; a segment was deleted, renamed or added"
            )
        lines, torn = split_lines(read(name))
        if torn and i != len(segs) - 1:
            raise CheckFailed(
                f"{where}/{name} line {len(lines) + 1}: ends without a newline but is not in the last segment; "
                "the segment was edited"
            )
        if torn:
            data.torn_entry = (name, torn)
        data.segments.append(Segment(name, first, len(lines)))
        data.lines.extend(lines)
    if CHECKPOINTS in names:
        data.checkpoint_lines, torn = split_lines(read(CHECKPOINTS))
        data.torn_checkpoint = torn or None
    return data


def read_dir(audit_dir: Path, where: str | None = None) -> LogData:
    """Read the log in a folder of the work tree."""
    names = sorted(p.name for p in audit_dir.iterdir()) if audit_dir.is_dir() else []
    data = read_log(names, lambda n: (audit_dir / n).read_bytes(), where or "metadata/audit")
    if (audit_dir / PUBLIC_KEY).exists():
        data.public_key = load_public_key(audit_dir / PUBLIC_KEY)
    if (audit_dir / VKEY).exists():
        data.vkey = read_vkey(audit_dir / VKEY)
    if (audit_dir / WITNESSED).is_file():
        data.witnessed = (audit_dir / WITNESSED).read_bytes()
    return data


def last_line(path: Path) -> bytes | None:
    """The last complete line of a JSONL file, read from its end (checkpoints.jsonl grows without bound)."""
    if not path.exists():
        return None
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        chunk, start = b"", end
        while start > 0:
            start = max(0, start - 8192)
            fh.seek(start)
            chunk = fh.read(end - start)
            if chunk.count(b"\n") >= 2 or start == 0:
                break
    lines = chunk.split(b"\n")
    return lines[-2] if len(lines) >= 2 else None
