"""What the audit log stores: its file names, and entry lines (canonical JSON) with their checks.

An entry line is exactly the bytes hashed as its RFC 9162 leaf, so it is written by one encoder,
`jsonio.canonical` (sorted keys, no whitespace, UTF-8, no NaN), and `verify` re-encodes what it reads with
the same encoder to tell an edited line from a written one.
"""

from __future__ import annotations

import getpass
import os
import re
from typing import Any

from mlops import jsonio
from mlops.errors import BadInput

EVENT_TYPES = (
    "dataset_validated",
    "training_run",
    "gate_decision",
    "promotion",
    "archive",
    "deployment_change",
    "rollback",
    "monitoring_run",
    "drift_detected",
    "alert_opened",
    "alert_updated",
    "alert_reopened",
    "alert_closed",
    "retrain_dispatched",
    "retention_prune",
    "checkpoint_format",
)
ENTRY_KEYS = frozenset({"seq", "time", "type", "actor", "commit", "run_id", "payload"})
MAX_ENTRY_BYTES = 64 * 1024
SEGMENT_RE = re.compile(r"^entries-(\d{12})\.jsonl$")
CHECKPOINTS = "checkpoints.jsonl"
PUBLIC_KEY = "checkpoint-key.pub"
VKEY = "checkpoint.vkey"  # the log's C2SP verifier key (name = origin)
WITNESSED = "checkpoint"  # the newest checkpoint as a signed note, with witness cosignatures
ORIGIN_ENV = "MLOPS_AUDIT_ORIGIN"
WITNESS_KEY_ENV = "MLOPS_AUDIT_WITNESS_KEY"
LOCK = ".lock"
STATE_CACHE = ".state.json"
SIGNING_KEY_ENV = "MLOPS_AUDIT_SIGNING_KEY"
REPAIR_COMMAND = "mlops audit repair --truncate-torn-tail"
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def segment_name(first_seq: int) -> str:
    return f"entries-{first_seq:012d}.jsonl"


def check_event_type(event_type: Any) -> None:
    if event_type not in EVENT_TYPES:
        raise BadInput(
            "event_type", f"{event_type!r} is not an audit event type", "use one of: " + ", ".join(EVENT_TYPES)
        )


def encode_payload(payload: Any, where: str = "payload") -> bytes:
    """Canonical JSON bytes of a payload (sorted keys, no whitespace, UTF-8, no NaN); BadInput when it has none."""
    if not isinstance(payload, dict):
        raise BadInput(where, f"must be a JSON object, got {type(payload).__name__}", "pass a dict")
    return _canonical_or_bad_input(payload, where)


def _canonical_or_bad_input(value: Any, where: str) -> bytes:
    try:
        return jsonio.canonical(value)
    except (TypeError, ValueError, RecursionError) as exc:  # a lone surrogate is a UnicodeEncodeError (ValueError)
        raise BadInput(
            where, f"cannot be stored as canonical JSON ({exc})", "use strings, numbers, lists, dicts"
        ) from None


class EntryEncoder:
    """Entry lines for one writer: the actor, commit and run id are the same for every entry it appends."""

    def __init__(self, actor: str, commit: str, run_id: str | None):
        self.actor, self.commit, self.run_id = actor, commit, run_id

    def line(self, seq: int, time: str, event_type: str, payload: Any) -> bytes:
        """The entry's line (no newline); BadInput naming the problem when the event cannot be stored."""
        check_event_type(event_type)
        if not isinstance(payload, dict):
            raise BadInput("payload", f"must be a JSON object, got {type(payload).__name__}", "pass a dict")
        entry = {
            "actor": self.actor,
            "commit": self.commit,
            "payload": payload,
            "run_id": self.run_id,
            "seq": seq,
            "time": time,
            "type": event_type,
        }
        line = _canonical_or_bad_input(entry, "payload")
        if len(line) > MAX_ENTRY_BYTES:
            raise BadInput(
                "payload",
                f"the {event_type} entry is {len(line)} bytes, over the {MAX_ENTRY_BYTES}-byte limit",
                "store large evidence in a file and put its path and sha256 in the payload",
            )
        return line


def default_actor(actor: str | None = None) -> str:
    """The explicit actor, else GITHUB_ACTOR, else the local user name."""
    if actor:
        return actor
    if os.environ.get("GITHUB_ACTOR"):
        return os.environ["GITHUB_ACTOR"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


def parse_line(line: bytes) -> Any:
    """A stored line as JSON; ValueError when it is not JSON (NaN and Infinity are not)."""
    return jsonio.loads(line, parse_constant=_reject_constant)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def check_entry_line(line: bytes, expected_seq: int) -> str | None:
    """Why a stored line is not a well-formed entry at position expected_seq, or None when it is."""
    try:
        obj = parse_line(line)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"is not valid JSON ({exc})"
    if not isinstance(obj, dict) or set(obj) != ENTRY_KEYS:
        keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        return f"has keys {keys}, expected {sorted(ENTRY_KEYS)}"
    try:
        again = jsonio.canonical(obj)
    except (TypeError, ValueError) as exc:
        return f"cannot be re-encoded ({exc})"
    if again != line:
        return "is not in canonical form (sorted keys, no whitespace, UTF-8), so its bytes were edited"
    if obj["seq"] != expected_seq:
        return (
            f"has seq {obj['seq']!r} where seq {expected_seq} belongs (an entry was deleted, reordered or duplicated)"
        )
    if obj["type"] not in EVENT_TYPES:
        return f"has unknown type {obj['type']!r}"
    if not isinstance(obj["time"], str) or not TIME_RE.match(obj["time"]):
        return f"has time {obj['time']!r}, expected YYYY-MM-DDTHH:MM:SSZ"
    if not isinstance(obj["payload"], dict):
        return "has a payload that is not a JSON object"
    return None
