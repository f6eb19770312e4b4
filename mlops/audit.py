"""The Merkle-rooted audit log in metadata/audit/: canonical JSON entries, checkpoints, proofs, verification.

Layout (docs/audit.md): ``entries-<first seq, 12 digits>.jsonl`` segments of at most SEGMENT_BYTES, one
canonical JSON entry per line (the line is exactly the bytes hashed as an RFC 9162 leaf); ``checkpoints.jsonl``,
one checkpoint per line (tree size, root, time, the previous checkpoint's size and root, optional ed25519
signature); ``checkpoint-key.pub``, the public key when checkpoints are signed. Writers serialise on a file
lock; an append is durable (fsync) before record() returns, and a crash mid-append can only leave an
incomplete final line, which verify names and ``mlops audit repair --truncate-torn-tail`` removes.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import os
import re
import subprocess
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import accumulate, chain
from operator import itemgetter
from pathlib import Path
from typing import Any

from mlops import jsonio
from mlops.errors import BadInput, CheckFailed
from mlops.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    ProofError,
    extend_peaks,
    leaf_hash,
    leaf_hashes,
    root_from_peaks,
    verify_consistency,
    verify_inclusion,
)
from mlops.repo import Repo

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
)
ENTRY_KEYS = frozenset({"seq", "time", "type", "actor", "commit", "run_id", "payload"})
CHECKPOINT_KEYS = frozenset({"size", "root", "time", "prev_size", "prev_root"})
SIGNATURE_KEYS = frozenset({"key_id", "signature"})
# ~5,000 entries of 200 bytes per segment: a diff stays small and git never rewrites an old segment.
SEGMENT_BYTES = 1 << 20
MAX_ENTRY_BYTES = 64 * 1024
SEGMENT_RE = re.compile(r"^entries-(\d{12})\.jsonl$")
CHECKPOINTS = "checkpoints.jsonl"
PUBLIC_KEY = "checkpoint-key.pub"
LOCK = ".lock"
STATE_CACHE = ".state.json"
SIGNING_KEY_ENV = "MLOPS_AUDIT_SIGNING_KEY"
REPAIR_COMMAND = "mlops audit repair --truncate-torn-tail"
SIGNATURE_CONTEXT = b"mlops-audit-checkpoint/v1\n"
PROOF_FORMAT = "mlops-audit-inclusion-proof/v1"
_TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

# One encoder built once: json.dumps() with options builds a new encoder per call, which doubles its cost.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def segment_name(first_seq: int) -> str:
    return f"entries-{first_seq:012d}.jsonl"


# ---------------------------------------------------------------------------------------------- entries


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> bool:
    """True when the C encoder alone yields canonical JSON (string keys, JSON-native values)."""
    t = type(value)
    if t in _SCALARS:
        return True
    if t is dict:
        for k, v in value.items():  # noqa: SIM110 - no generator per dict: this is the batch hot path
            if type(k) is not str or (type(v) not in _SCALARS and not _plain(v)):
                return False
        return True
    if t is list or t is tuple:
        for v in value:  # noqa: SIM110
            if type(v) not in _SCALARS and not _plain(v):
                return False
        return True
    return False


def _no_default(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


try:  # the C encoder made once; JSONEncoder.encode() builds a new one on every call
    from _json import encode_basestring as _c_basestring
    from _json import make_encoder as _c_make_encoder

    _C_ENCODE = _c_make_encoder(None, _no_default, _c_basestring, None, ":", ",", True, False, False)
except ImportError:  # pragma: no cover - CPython always has _json
    _C_ENCODE = None


def _canonical(obj: Any) -> bytes:
    """jsonio.canonical(obj), through the prebuilt C encoder when the value is plain JSON already."""
    if _C_ENCODE is not None and _plain(obj):
        return "".join(_C_ENCODE(obj, 0)).encode("utf-8")
    return jsonio.canonical(obj)


def encode_payload(payload: Any, where: str = "payload") -> bytes:
    """Canonical JSON bytes of a payload (sorted keys, no whitespace, UTF-8, no NaN)."""
    if not isinstance(payload, dict):
        raise BadInput(where, f"must be a JSON object, got {type(payload).__name__}", "pass a dict")
    try:
        if _plain(payload):
            if _C_ENCODE is not None:
                return "".join(_C_ENCODE(payload, 0)).encode("utf-8")
            return _ENCODER.encode(payload).encode("utf-8")
        return jsonio.canonical(payload)
    except (TypeError, ValueError, RecursionError) as exc:
        raise BadInput(
            where, f"cannot be stored as canonical JSON ({exc})", "use strings, numbers, lists, dicts"
        ) from None


class EntryEncoder:
    """Builds entry lines for one actor/commit/run; the envelope is spliced by hand to skip re-sorting it.

    The key order written here (actor, commit, payload, run_id, seq, time, type) is the sorted order, so the
    line equals jsonio.canonical(entry) byte for byte (tests/test_audit.py pins that).
    """

    def __init__(self, actor: str, commit: str, run_id: str | None):
        self.actor, self.commit, self.run_id = actor, commit, run_id
        self._head = b'{"actor":' + _ENCODER.encode(actor).encode() + b',"commit":' + _ENCODER.encode(commit).encode()
        self._head += b',"payload":'
        self._run = b',"run_id":' + _ENCODER.encode(run_id).encode() + b',"seq":'
        self._types = {t: b',"type":' + _ENCODER.encode(t).encode() + b"}" for t in EVENT_TYPES}

    def line(self, seq: int, time_bytes: bytes, event_type: str, payload_bytes: bytes) -> bytes:
        tail = self._types.get(event_type)
        if tail is None:
            raise BadInput(
                "event_type", f"{event_type!r} is not an audit event type", "use one of: " + ", ".join(EVENT_TYPES)
            )
        return self._head + payload_bytes + self._run + str(seq).encode() + b',"time":"' + time_bytes + b'"' + tail


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


def check_entry_line(line: bytes, expected_seq: int) -> str | None:
    """Why a stored line is not a well-formed entry at position expected_seq, or None when it is."""
    try:
        obj = json.loads(line, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"is not valid JSON ({exc})"
    if not isinstance(obj, dict) or set(obj) != ENTRY_KEYS:
        keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        return f"has keys {keys}, expected {sorted(ENTRY_KEYS)}"
    try:
        again = _canonical(obj)
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
    if not isinstance(obj["time"], str) or not _TIME_RE.match(obj["time"]):
        return f"has time {obj['time']!r}, expected YYYY-MM-DDTHH:MM:SSZ"
    if not isinstance(obj["payload"], dict):
        return "has a payload that is not a JSON object"
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# ---------------------------------------------------------------------------------------------- signing


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def key_id(public_raw: bytes) -> str:
    """First 16 hex digits of SHA-256 over the raw public key: names the key a checkpoint was signed with."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def _public_raw(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_private_key(text: str, where: str = SIGNING_KEY_ENV) -> Any:
    """An ed25519 private key from PEM (PKCS#8) or base64 of the 32-byte seed."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    text = text.strip()
    fix = "set it to the output of `mlops audit keygen` (base64 of a 32-byte ed25519 seed) or a PKCS#8 PEM key"
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError):
        raise BadInput(where, "is not an ed25519 private key", fix) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BadInput(where, "is not an ed25519 private key", fix)
    return key


def load_public_key(path: Path, pem: bytes | None = None) -> Any:
    """The ed25519 public key in a PEM file (checkpoint-key.pub), or in `pem` read from elsewhere (git)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes() if pem is None else pem)
    except (ValueError, OSError) as exc:
        raise BadInput(
            str(path), f"is not a PEM public key ({exc})", "regenerate it with `mlops audit keygen`"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise BadInput(str(path), "is not an ed25519 public key", "regenerate it with `mlops audit keygen`")
    return key


def _signed_bytes(checkpoint: dict) -> bytes:
    body = {k: v for k, v in checkpoint.items() if k != "signature"}
    return SIGNATURE_CONTEXT + jsonio.canonical(body)


def sign_checkpoint(checkpoint: dict, private_key: Any) -> dict:
    signed = dict(checkpoint)
    signed["key_id"] = key_id(_public_raw(private_key.public_key()))
    signed["signature"] = _b64(private_key.sign(_signed_bytes(signed)))
    return signed


def check_signature(checkpoint: dict, public_key: Any) -> str | None:
    """Why a checkpoint's signature does not verify under public_key, or None when it does."""
    from cryptography.exceptions import InvalidSignature

    sig = checkpoint.get("signature")
    if sig is None:
        return "is not signed"
    if checkpoint.get("key_id") != key_id(_public_raw(public_key)):
        return f"is signed by key {checkpoint.get('key_id')!r}, not by the committed {PUBLIC_KEY}"
    try:
        public_key.verify(base64.b64decode(sig, validate=True), _signed_bytes(checkpoint))
    except (InvalidSignature, ValueError, TypeError):
        return "has a signature that does not verify"
    return None


def _signing_key_for(audit_dir: Path) -> Any:
    """The private key to sign with; BadInput when a public key is committed but no matching key is set."""
    text = os.environ.get(SIGNING_KEY_ENV, "").strip()
    pub_path = audit_dir / PUBLIC_KEY
    if not text:
        if pub_path.exists():
            raise BadInput(
                SIGNING_KEY_ENV,
                f"is not set, but {PUBLIC_KEY} is committed so every new checkpoint must be signed",
                f"set {SIGNING_KEY_ENV} to the signing key (the repository secret)",
            )
        return None
    key = load_private_key(text)
    if pub_path.exists() and _public_raw(load_public_key(pub_path)) != _public_raw(key.public_key()):
        raise BadInput(SIGNING_KEY_ENV, f"does not match the committed {PUBLIC_KEY}", "set the matching key")
    return key


def check_can_record(repo: Repo) -> None:
    """BadInput now if record() would refuse for want of the signing key, so a caller can check before it acts."""
    _signing_key_for(repo.audit_dir)


# ---------------------------------------------------------------------------------------------- reading


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
    public_key: Any = None
    where: str = "metadata/audit"

    def locate(self, seq: int) -> str:
        """'metadata/audit/entries-….jsonl line L' for the entry at position seq."""
        for seg in reversed(self.segments):
            if seg.first_seq <= seq:
                return f"{self.where}/{seg.name} line {seq - seg.first_seq + 1}"
        return f"{self.where} (seq {seq})"


def _split_lines(data: bytes) -> tuple[list[bytes], int]:
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
        lines, torn = _split_lines(read(name))
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
        data.checkpoint_lines, torn = _split_lines(read(CHECKPOINTS))
        data.torn_checkpoint = torn or None
    return data


def read_dir(audit_dir: Path, where: str | None = None) -> LogData:
    """Read the log in a folder of the work tree."""
    names = sorted(p.name for p in audit_dir.iterdir()) if audit_dir.is_dir() else []
    data = read_log(names, lambda n: (audit_dir / n).read_bytes(), where or "metadata/audit")
    if (audit_dir / PUBLIC_KEY).exists():
        data.public_key = load_public_key(audit_dir / PUBLIC_KEY)
    return data


def _parse_checkpoint(line: bytes, where: str) -> dict:
    try:
        ck = json.loads(line, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckFailed(f"{where}: is not valid JSON ({exc})") from None
    if not isinstance(ck, dict) or not set(ck) >= CHECKPOINT_KEYS or set(ck) - CHECKPOINT_KEYS - SIGNATURE_KEYS:
        keys = sorted(ck) if isinstance(ck, dict) else type(ck).__name__
        raise CheckFailed(f"{where}: has keys {keys}, expected {sorted(CHECKPOINT_KEYS)} (+ key_id, signature)")
    for k in ("size", "prev_size"):
        if type(ck[k]) is not int or ck[k] < 0:
            raise CheckFailed(f"{where}: {k} {ck[k]!r} is not a non-negative integer")
    for k in ("root", "prev_root"):
        if not isinstance(ck[k], str) or not _HEX64.match(ck[k]):
            raise CheckFailed(f"{where}: {k} {ck[k]!r} is not a lowercase hex SHA-256")
    if not isinstance(ck["time"], str) or not _TIME_RE.match(ck["time"]):
        raise CheckFailed(f"{where}: time {ck['time']!r} is not YYYY-MM-DDTHH:MM:SSZ")
    if _canonical(ck) != line:
        raise CheckFailed(f"{where}: is not in canonical form, so its bytes were edited")
    return ck


# ---------------------------------------------------------------------------------------------- verifying


@dataclass
class VerifyResult:
    entries: int
    segments: int
    checkpoints: int
    signed: int
    root: str  # root of every complete entry
    checkpoint_root: str | None
    unchecked_tail: int  # complete entries after the latest checkpoint
    warnings: list[str] = field(default_factory=list)
    tree: MerkleTree | None = field(default=None, repr=False)


def _first_bad_entry(data: LogData, lo: int, hi: int) -> str | None:
    for seq in range(lo, min(hi, len(data.lines))):
        problem = check_entry_line(data.lines[seq], seq)
        if problem:
            return f"entry seq {seq} ({data.locate(seq)}) {problem}"
    return None


def verify_data(data: LogData) -> VerifyResult:
    """Every check of `mlops audit verify` on parsed data; raises CheckFailed naming the first problem."""
    where = data.where
    tree = MerkleTree()
    tree.extend(data.lines)
    prev_size, prev_root = 0, EMPTY_ROOT
    signed, seen_signed = 0, False
    last: dict | None = None
    for k, line in enumerate(data.checkpoint_lines):
        at = f"{where}/{CHECKPOINTS} line {k + 1} (checkpoint #{k})"
        ck = _parse_checkpoint(line, at)
        size = ck["size"]
        if (ck["prev_size"], ck["prev_root"]) != (prev_size, prev_root.hex()):
            raise CheckFailed(
                f"{at}: names previous checkpoint size {ck['prev_size']} root {ck['prev_root'][:16]}…, but the "
                f"checkpoint before it has size {prev_size} root {prev_root.hex()[:16]}…; the checkpoint was forged "
                "or one was removed"
            )
        if size < prev_size or size == 0:
            # Equal sizes are allowed: `keygen` re-signs the current tree head without a new entry.
            raise CheckFailed(f"{at}: size {size} is below the previous checkpoint's {prev_size} or zero")
        if size > tree.size:
            bad = _first_bad_entry(data, prev_size, tree.size)
            raise CheckFailed(
                f"{at}: covers {size} entries but the log holds only {tree.size}; "
                f"entries seq {tree.size}..{size - 1} are missing (deleted or truncated)" + (f"; {bad}" if bad else "")
            )
        root = tree.root(size)
        if root.hex() != ck["root"]:
            bad = _first_bad_entry(data, prev_size, size)
            span = f"entry seq {prev_size}" if size - prev_size == 1 else f"entries seq {prev_size}..{size - 1}"
            raise CheckFailed(
                f"{at}: root {ck['root'][:16]}… does not match the {size} entries on disk "
                f"(computed {root.hex()[:16]}…); "
                + (bad if bad else f"{span} ({data.locate(prev_size)}) were edited, or the checkpoint was forged")
            )
        if prev_size:
            try:
                verify_consistency(prev_size, size, tree.consistency_proof(prev_size, size), prev_root, root)
            except ProofError as exc:  # cannot happen for roots recomputed from one log; kept as a guard
                raise CheckFailed(f"{at}: is not consistent with the checkpoint before it ({exc})") from None
        if data.public_key is not None:
            problem = None if "signature" not in ck and not seen_signed else check_signature(ck, data.public_key)
            if problem:
                raise CheckFailed(f"{at}: {problem}" + ("; a signed checkpoint precedes it" if seen_signed else ""))
        elif seen_signed and "signature" not in ck:
            # Without the public key the signatures cannot be checked, but this needs no key: removing
            # checkpoint-key.pub must not turn off signing for whoever appends next.
            raise CheckFailed(
                f"{at}: is not signed but a signed checkpoint precedes it (a signing downgrade; "
                f"was {PUBLIC_KEY} removed?)"
            )
        if "signature" in ck:
            signed += 1
            seen_signed = True
        prev_size, prev_root, last = size, root, ck
    if data.public_key is not None and last is not None and "signature" not in last:
        # Otherwise stripping every signature would pass as "a log from before the key".
        k = len(data.checkpoint_lines) - 1
        raise CheckFailed(
            f"{where}/{CHECKPOINTS} line {k + 1} (checkpoint #{k}): the latest checkpoint is not signed but "
            f"{PUBLIC_KEY} is committed; signatures were stripped, or run `mlops audit keygen --force` to re-key"
        )
    warnings = []
    tail_start = prev_size
    bad = _first_bad_entry(data, tail_start, tree.size)
    if bad:
        raise CheckFailed(bad + " (not yet covered by a checkpoint)")
    if data.torn_checkpoint:
        raise CheckFailed(
            f"{where}/{CHECKPOINTS} line {len(data.checkpoint_lines) + 1}: the final checkpoint is incomplete "
            f"({data.torn_checkpoint} bytes without a newline: a write was interrupted); run `{REPAIR_COMMAND}` "
            "to remove only that incomplete line"
        )
    if data.torn_entry:
        name, nbytes = data.torn_entry
        raise CheckFailed(
            f"{where}/{name} line {data.segments[-1].count + 1}: the final entry (seq {tree.size}) is incomplete "
            f"({nbytes} bytes without a newline: an append was interrupted); run `{REPAIR_COMMAND}` "
            "to remove only that incomplete line"
        )
    if tree.size > tail_start:
        warnings.append(
            f"{tree.size - tail_start} entries after the latest checkpoint (an append stopped before its "
            "checkpoint); the next append checkpoints them"
        )
    if data.public_key is None and signed:
        warnings.append(f"{signed} checkpoints are signed but no {PUBLIC_KEY} is committed: signatures not checked")
    return VerifyResult(
        entries=tree.size,
        segments=len(data.segments),
        checkpoints=len(data.checkpoint_lines),
        signed=signed,
        root=tree.root().hex(),
        checkpoint_root=last["root"] if last else None,
        unchecked_tail=tree.size - tail_start,
        warnings=warnings,
        tree=tree,
    )


def verify(repo: Repo) -> VerifyResult:
    """Verify the log in the work tree; raises CheckFailed naming the first bad entry or checkpoint."""
    return verify_data(read_dir(repo.audit_dir, repo.rel(repo.audit_dir)))


def _git(repo: Repo, *args: str, input: bytes | None = None) -> bytes:
    try:
        out = subprocess.run(["git", *args], cwd=repo.root, input=input, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BadInput("--against", f"cannot run git ({exc})", "install git and run inside a checkout") from None
    if out.returncode != 0:
        raise BadInput(
            "--against", f"git {args[0]} failed: {out.stderr.decode(errors='replace').strip()}", "fetch the ref first"
        )
    return out.stdout


def read_git(repo: Repo, ref: str) -> LogData:
    """Read the log as committed at a git ref (one `git cat-file --batch` for every file).

    The all-zero SHA (GitHub's `before` of a push that creates a branch) names the empty log.
    """
    if re.fullmatch(r"0{40}|0{64}", ref):
        return LogData(where=f"{ref[:12]}…:{repo.rel(repo.audit_dir)}")
    try:
        _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except BadInput:
        raise BadInput(
            "--against", f"{ref!r} is not a commit in this repository", f"run `git fetch origin {ref}`"
        ) from None
    prefix = _git(repo, "rev-parse", "--show-prefix").decode().strip()
    rel = prefix + repo.rel(repo.audit_dir)
    listing = _git(repo, "ls-tree", "-z", "--name-only", f"{ref}:{rel}") if _tree_exists(repo, ref, rel) else b""
    names = [n for n in listing.decode().split("\0") if n]
    wanted = [n for n in names if SEGMENT_RE.match(n) or n in (CHECKPOINTS, PUBLIC_KEY)]
    blobs = _cat_files(repo, [f"{ref}:{rel}/{n}" for n in wanted])
    files = dict(zip(wanted, blobs, strict=True))
    data = read_log(set(files), files.__getitem__, f"{ref}:{repo.rel(repo.audit_dir)}")
    if PUBLIC_KEY in files:
        data.public_key = load_public_key(Path(f"{ref}:{repo.rel(repo.audit_dir)}/{PUBLIC_KEY}"), files[PUBLIC_KEY])
    return data


def _tree_exists(repo: Repo, ref: str, rel: str) -> bool:
    out = subprocess.run(
        ["git", "cat-file", "-e", f"{ref}:{rel}"], cwd=repo.root, capture_output=True, timeout=60, check=False
    )
    return out.returncode == 0


def _cat_files(repo: Repo, specs: list[str]) -> list[bytes]:
    if not specs:
        return []
    out = _git(repo, "cat-file", "--batch", input=("\n".join(specs) + "\n").encode())
    blobs, pos = [], 0
    for spec in specs:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        if len(header) != 3:
            raise BadInput("--against", f"git cannot read {spec}", "fetch the ref first")
        size = int(header[2])
        blobs.append(out[end + 1 : end + 1 + size])
        pos = end + 1 + size + 1
    return blobs


@dataclass
class AgainstResult:
    ref: str
    old_size: int
    old_root: str
    new: VerifyResult
    proof_length: int


def verify_against(repo: Repo, ref: str) -> AgainstResult:
    """The work-tree log verifies and is an append-only extension of the log at git ref (consistency proof)."""
    old = read_git(repo, ref)
    data = read_dir(repo.audit_dir, repo.rel(repo.audit_dir))
    new = verify_data(data)
    tree = new.tree
    assert tree is not None
    m, n = len(old.lines), tree.size
    old_root = MerkleTree.from_leaf_hashes(leaf_hash(x) for x in old.lines).root()
    if n < m:
        raise CheckFailed(
            f"the log at {ref} holds {m} entries but the work tree only {n}: entries seq {n}..{m - 1} were removed"
        )
    proof = tree.consistency_proof(m, n)
    try:
        verify_consistency(m, n, proof, old_root, tree.root())
    except ProofError as exc:
        first = next((i for i in range(m) if old.lines[i] != data.lines[i]), 0)
        raise CheckFailed(
            f"entry seq {first} ({data.locate(first)}) differs from the one at {ref}: the log is not an append-only "
            f"extension of {ref} ({exc}); history was rewritten"
        ) from None
    if old.public_key is not None and (
        data.public_key is None or _public_raw(data.public_key) != _public_raw(old.public_key)
    ):
        raise CheckFailed(
            f"{data.where}/{PUBLIC_KEY} is {'missing' if data.public_key is None else 'not the one'} committed at "
            f"{ref}: the signing key was removed or swapped (re-keying is `mlops audit keygen --force`, reviewed)"
        )
    for k, line in enumerate(old.checkpoint_lines):
        if k >= len(data.checkpoint_lines) or data.checkpoint_lines[k] != line:
            raise CheckFailed(
                f"{data.where}/{CHECKPOINTS} line {k + 1} (checkpoint #{k}) differs from the one at {ref}: "
                "committed checkpoints were rewritten or removed"
            )
    return AgainstResult(ref, m, old_root.hex(), new, len(proof))


# ---------------------------------------------------------------------------------------------- writing


_first, _second = itemgetter(0), itemgetter(1)
_PLUS_ONE = (1).__add__
# Below this many entries an append writes and hashes in the calling thread (a thread costs ~0.1 ms).
_THREADED_BATCH = 256
# While the writer thread runs, leaves are hashed this many at a time, with a short sleep between chunks.
_HASH_CHUNK = 1024
_HANDOFF_S = 2e-5


def _join(thread: threading.Thread) -> None:
    """Join the writer thread even through a KeyboardInterrupt: its descriptor must not be closed under it."""
    interrupted: BaseException | None = None
    while thread.is_alive():
        try:
            thread.join()
        except BaseException as exc:  # noqa: BLE001 - re-raised once the thread is done
            interrupted = exc
    if interrupted is not None:
        raise interrupted


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _torn_message(path: str, line_no: int, nbytes: int, what: str) -> str:
    return (
        f"{path} line {line_no}: the final {what} is incomplete ({nbytes} bytes without a newline: an append was "
        f"interrupted); run `{REPAIR_COMMAND}` to remove only that incomplete line, then retry"
    )


def _last_line(path: Path) -> bytes | None:
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
        self.signing_key = self._signing_key or _signing_key_for(self.dir)
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
        segs = sorted((int(m.group(1)), p.name) for p in self.dir.iterdir() if (m := SEGMENT_RE.match(p.name)))
        ck_path = self.dir / CHECKPOINTS
        if ck_path.exists() and ck_path.stat().st_size:
            with open(ck_path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                ends_clean = fh.read(1) == b"\n"
            if not ends_clean:
                lines = ck_path.read_bytes().split(b"\n")
                raise CheckFailed(
                    _torn_message(f"{self.where}/{CHECKPOINTS}", len(lines), len(lines[-1]), "checkpoint")
                )
        last_line = _last_line(ck_path)
        self.last_checkpoint = (
            _parse_checkpoint(last_line, f"{self.where}/{CHECKPOINTS} (last line)") if last_line else None
        )
        ck_size = self.last_checkpoint["size"] if self.last_checkpoint else 0
        ck_root = bytes.fromhex(self.last_checkpoint["root"]) if self.last_checkpoint else EMPTY_ROOT
        if segs:
            first, name = segs[-1]
            data = (self.dir / name).read_bytes()
            lines, torn = _split_lines(data)
            if torn:
                raise CheckFailed(_torn_message(f"{self.where}/{name}", len(lines) + 1, torn, "entry"))
            self.seg_first, self.seg_name, self.seg_bytes = first, name, len(data)
            on_disk = first + len(lines)
        else:
            self.seg_first, self.seg_name, self.seg_bytes = 0, segment_name(0), 0
            on_disk = 0
        if on_disk < ck_size:
            raise CheckFailed(
                f"{self.where}: holds {on_disk} entries but the latest checkpoint covers {ck_size}; entries were "
                "removed. Run `mlops audit verify` to see where"
            )
        peaks = self._cached_peaks(ck_size, ck_root)
        if peaks is None:
            data_all = read_dir(self.dir, self.where)
            tree = MerkleTree()
            tree.extend(data_all.lines[:ck_size])
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
                self._fold(leaf_hash(tail.lines[seq]))

    def _cached_peaks(self, size: int, root: bytes) -> list[bytes] | None:
        try:
            state = json.loads((self.dir / STATE_CACHE).read_bytes())
            peaks = [bytes.fromhex(p) for p in state["peaks"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        # Trusted only when it reproduces the checkpoint: other peaks with this root would be a SHA-256 collision.
        if state.get("size") != size or bin(size).count("1") != len(peaks) or root_from_peaks(peaks) != root:
            return None
        return peaks

    def _save_cache(self) -> None:
        # A cache, not a record: replaced atomically but not fsynced; a stale one fails the check above.
        tmp = self.dir / (STATE_CACHE + ".tmp")
        tmp.write_bytes(jsonio.canonical({"size": self.size, "peaks": [p.hex() for p in self.peaks]}))
        os.replace(tmp, self.dir / STATE_CACHE)

    def _fold(self, digest: bytes) -> None:
        peaks = self.peaks
        peaks.append(digest)
        n = self.size = self.size + 1
        sha = hashlib.sha256
        while not n & 1:
            right = peaks.pop()
            peaks[-1] = sha(b"\x01" + peaks[-1] + right).digest()
            n >>= 1

    # -- appending

    def encode(self, events: Iterable[tuple[str, dict]], time: str | None = None) -> list[bytes]:
        """Validate and encode events as entry lines (no newline) from seq self.size on; writes nothing."""
        return self._encode_batch(events, time)[1]

    def _encode_batch(self, events: Iterable[tuple[str, dict]], time: str | None = None) -> tuple[bytes, list[bytes]]:
        """(the bytes to append: every line followed by a newline, the lines); validates, writes nothing.

        The fast path encodes the batch's payloads column by column (flat objects with the same keys) or with
        one call of the C encoder, and splices the envelope around each with one str.join for the whole batch;
        whatever it cannot prove identical to jsonio.canonical (anything but plain JSON values, a payload whose
        text holds the ``},{`` it splits on, an error to report) goes through the per-entry path, which yields
        the same bytes.
        """
        events = events if isinstance(events, list) else list(events)
        when = (time or jsonio.format_utc(jsonio.utc_now())).encode()
        blob = self._encode_fast(events, when)
        if blob is not None:
            lines = blob.split(b"\n")
            lines.pop()  # the empty string after the final newline
            if len(lines) == len(events) and max(map(len, lines)) <= MAX_ENTRY_BYTES:
                return blob, lines
        lines = self._encode_each(events, when)
        return (b"\n".join(lines) + b"\n" if lines else b""), lines

    def _encode_fast(self, events: list, when: bytes) -> bytes | None:
        """The batch's bytes when every event is plain (see _encode_batch), else None."""
        n = len(events)
        try:
            if not n or _C_ENCODE is None or set(map(len, events)) != {2}:
                return None
            types = list(map(_first, events))
            payloads = list(map(_second, events))
        except (TypeError, KeyError, IndexError):  # not pairs: the per-entry path raises as the caller expects
            return None
        enc = self.encoder
        time_part = ',"time":"' + when.decode() + '"'
        try:
            tails = list(map({t: time_part + tail.decode() + "\n" for t, tail in enc._types.items()}.get, types))
        except TypeError:  # an unhashable event type
            return None
        if None in tails or set(map(type, payloads)) != {dict}:
            return None
        head, run = enc._head.decode("utf-8"), enc._run.decode("utf-8")
        parts = self._encode_columns(payloads, n, head, run)
        if parts is None:
            if not set(map(type, chain.from_iterable(payloads))) <= {str}:
                return None  # a non-string key: jsonio.canonical converts and re-sorts those
            try:
                if not set(map(type, chain.from_iterable(map(dict.values, payloads)))) <= _SCALARS and not all(
                    map(_plain, payloads)
                ):
                    return None
            except RecursionError:  # nested too deep, or a cycle: the per-entry path refuses it
                return None
            try:
                text = "".join(_C_ENCODE(payloads, 0))
            except (ValueError, TypeError, RecursionError):
                return None
            # text is "[{" p0 "},{" p1 ... "}]": each payload is an object, so "},{" stands between two payloads.
            # "},{" cannot overlap itself, so split finds every occurrence; n pieces means no payload holds one.
            bodies = text[2:-2].split("},{")
            if len(bodies) != n:
                return None
            parts = [head + "{"] * (5 * n)
            parts[1::5] = bodies
            parts[2::5] = ["}" + run] * n
        width = len(parts) // n
        parts[width - 2 :: width] = map(str, range(self.size, self.size + n))
        parts[width - 1 :: width] = tails
        try:
            return "".join(parts).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: the per-entry path refuses it
            return None

    def _encode_columns(self, payloads: list[dict], n: int, head: str, run: str) -> list[str] | None:
        """The pieces of the batch's lines up to run_id when every payload is a flat object with the same keys
        (all strings), else None; the caller fills the last two pieces of each line (seq, time and type).

        Each key's values are encoded as one column: a string column in one call of the C string encoder that
        the C JSON encoder itself calls, on the column's strings joined by "a": when that adds nothing but the
        two quotes, no string needs an escape and each goes in as it is, between quotes; otherwise each string
        is encoded on its own. Other scalars: one C JSON encoder call on the column, split at its commas (a
        number, true, false or null holds none). Keys go in sorted order, as the C encoder's sort_keys does.
        """
        if set(map(type, payloads[0])) != {str}:  # every payload is a dict (checked by the caller)
            return None  # no keys, or a key that is not a string
        keys = sorted(payloads[0])
        if set(map(len, payloads)) != {len(keys)}:
            return None
        width = 2 * len(keys) + 3
        parts: list[str] = [head] * (width * n)
        close = "{"  # what ends the piece before a label: "{" first, then '"' after a string put in bare
        for k, key in enumerate(keys):
            try:
                column = list(map(itemgetter(key), payloads))
            except KeyError:  # same number of keys, not the same keys
                return None
            kinds = set(map(type, column))
            if not kinds <= _SCALARS:
                return None
            label = ("," if k else "") + _c_basestring(key) + ":"
            if kinds == {str}:
                joined = "a".join(column)
                if len(_c_basestring(joined)) == len(joined) + 2:
                    values: Any = column
                    opened, after = '"', '"'
                else:
                    values, opened, after = map(_c_basestring, column), "", ""
            elif str in kinds:
                return None
            else:
                try:
                    values = "".join(_C_ENCODE(column, 0))[1:-1].split(",")
                except (ValueError, TypeError, RecursionError):
                    return None  # NaN or infinity: the per-entry path names it
                if len(values) != n:
                    return None
                opened, after = "", ""
            parts[2 * k :: width] = [(head + "{" if not k else close) + label + opened] * n
            parts[2 * k + 1 :: width] = values
            close = after
        parts[width - 3 :: width] = [close + "}" + run] * n
        return parts

    def _encode_each(self, events: Iterable[tuple[str, dict]], when: bytes) -> list[bytes]:
        """The per-entry path: raises the BadInput naming the first event that cannot be stored."""
        enc = self.encoder
        head, run, tails, time_part = enc._head, enc._run, enc._types, b',"time":"' + when + b'"'
        c_encode, plain, join = _C_ENCODE, _plain, b"".join
        out = []
        seq = self.size
        for event_type, payload in events:
            tail = tails.get(event_type)
            if tail is None:
                enc.line(seq, when, event_type, b"{}")  # raises the BadInput naming the event types
            try:
                if c_encode is None or type(payload) is not dict or not plain(payload):
                    raise ValueError("not plain")
                body = "".join(c_encode(payload, 0)).encode("utf-8")
            except (ValueError, RecursionError):
                body = encode_payload(payload)  # the general path, and the BadInput when it cannot be encoded
            entry = join((head, body, run, b"%d" % seq, time_part, tail))
            if len(entry) > MAX_ENTRY_BYTES:
                raise BadInput(
                    "payload",
                    f"the {event_type} entry is {len(entry)} bytes, over the {MAX_ENTRY_BYTES}-byte limit",
                    "store large evidence in a file and put its path and sha256 in the payload",
                )
            out.append(entry)
            seq += 1
        return out

    def append_lines(self, lines: list[bytes]) -> range:
        """Append encoded entry lines durably: one write and one fsync per segment touched."""
        return self._append(b"".join(x + b"\n" for x in lines), lines)

    def _append(self, blob: bytes, lines: list[bytes]) -> range:
        """Append the lines (blob = each line followed by a newline) durably, then fold them into the peaks.

        The writes and fsyncs (one per segment touched, in order) run in a helper thread for a large batch
        while this thread hashes the new leaves and nodes: both release the GIL, so the hashing hides behind
        the fsync. The new size and peaks are taken only after every fsync returned.
        """
        if self._broken:
            raise CheckFailed(f"{self.where}: an earlier append failed in this writer; open a new one")
        first, m = self.size, len(lines)
        if not m:
            return range(first, first)
        # Cut the blob at line ends so that no segment passes SEGMENT_BYTES (an empty one takes one line).
        plan: list[tuple[int, int]] = []  # (start, end) bytes to the current segment; (lines so far, -1): roll first
        pos, used, total = 0, self.seg_bytes, len(blob)
        ends: list[int] = []  # where each line ends in blob (after its newline), built at the first roll
        while pos < total:
            room = SEGMENT_BYTES - used
            end = total if total - pos <= room else blob.rfind(b"\n", pos, pos + room) + 1
            if not end:  # not even the next line fits
                if used:
                    # The lines before pos (a line end): a bisect over the line ends instead of counting newlines
                    # in up to 1 MiB per roll (lines are canonical JSON: no line holds a newline of its own).
                    ends = ends or list(accumulate(map(_PLUS_ONE, map(len, lines))))
                    before = bisect_right(ends, pos) if ends[-1] == total else blob.count(b"\n", 0, pos)
                    plan.append((before, -1))
                    used = 0
                    continue
                end = blob.index(b"\n", pos) + 1
            plan.append((pos, end))
            used += end - pos
            pos = end
        errors: list[BaseException] = []

        def write() -> None:
            try:
                view = memoryview(blob)
                for i, j in plan:
                    if j < 0:
                        self._roll(first + i)
                    else:
                        self._write_fsync(view[i:j])
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                errors.append(exc)

        try:
            if m >= _THREADED_BATCH:
                io = threading.Thread(target=write, name="audit-append", daemon=True)
                io.start()
                try:
                    peaks, size = self.peaks, first
                    for a in range(0, m, _HASH_CHUNK):
                        peaks, size = extend_peaks(peaks, size, leaf_hashes(lines[a : a + _HASH_CHUNK]))
                        if io.is_alive():
                            # A hash chunk is one C call that holds the GIL; a short sleep lets the writer take
                            # it to issue its next write or fsync (waiting for the switch interval costs ms).
                            time.sleep(_HANDOFF_S)
                finally:
                    _join(io)
            else:
                write()
                if not errors:
                    peaks, size = extend_peaks(self.peaks, first, leaf_hashes(lines))
            if errors:
                raise errors[0]
        except BaseException:
            self._broken = True
            raise
        self.peaks, self.size = peaks, size
        return range(first, size)

    def _roll(self, first_seq: int) -> None:
        """Start a new segment: the previous one is full and is never written again."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.seg_first, self.seg_name, self.seg_bytes = first_seq, segment_name(first_seq), 0

    def _write_fsync(self, payload: memoryview) -> None:
        """One write of whole lines to the current segment, then its fsync."""
        if self._fd is None:
            path = self.dir / self.seg_name
            created = not path.exists()
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if created:
                jsonio.fsync_dir(self.dir)
        _write_all(self._fd, payload)
        os.fsync(self._fd)
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
        ck = {
            "prev_root": prev["root"] if prev else EMPTY_ROOT.hex(),
            "prev_size": prev["size"] if prev else 0,
            "root": root_from_peaks(self.peaks).hex(),
            "size": self.size,
            "time": jsonio.format_utc(jsonio.utc_now()),
        }
        if self.signing_key is not None:
            ck = sign_checkpoint(ck, self.signing_key)
        fd = os.open(self.dir / CHECKPOINTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            _write_all(fd, jsonio.canonical(ck) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        self.last_checkpoint = ck
        self._save_cache()
        return ck

    def append_batch(self, events: Iterable[tuple[str, dict]], *, checkpoint: bool = True) -> range:
        """Append (event_type, payload) pairs with one write+fsync (per segment); returns their seqs."""
        seqs = self._append(*self._encode_batch(events))
        if checkpoint:
            self.checkpoint()
        return seqs


def writer(repo: Repo, *, actor: str | None = None, timeout: float = 60.0) -> AuditWriter:
    """A locked writer for batch appends: ``with audit.writer(repo) as w: w.append_batch(events)``."""
    return AuditWriter(repo, actor=actor, timeout=timeout)


def record(repo: Repo, event_type: str, payload: dict, *, actor: str | None = None) -> dict:
    """Append one event durably (entry fsynced, then a new checkpoint) and return the stored entry."""
    if event_type not in EVENT_TYPES:
        raise BadInput(
            "event_type", f"{event_type!r} is not an audit event type", "use one of: " + ", ".join(EVENT_TYPES)
        )
    encode_payload(payload)  # bad input is refused before the lock is taken or anything is created
    with AuditWriter(repo, actor=actor) as w:
        (line,) = w.encode([(event_type, payload)])
        w.append_lines([line])
        w.checkpoint()
    return json.loads(line)


# ---------------------------------------------------------------------------------------------- proofs


def prove(repo: Repo, seq: int) -> dict:
    """An inclusion proof of entry seq against the latest checkpoint, checkable offline with check_proof()."""
    data = read_dir(repo.audit_dir, repo.rel(repo.audit_dir))
    if not data.checkpoint_lines:
        raise BadInput(
            "--seq",
            f"{seq} is not covered: {data.where}/{CHECKPOINTS} holds no checkpoint yet",
            "record an event first",
        )
    k = len(data.checkpoint_lines) - 1
    ck = _parse_checkpoint(data.checkpoint_lines[k], f"{data.where}/{CHECKPOINTS} line {k + 1} (checkpoint #{k})")
    size = ck["size"]
    if not 0 <= seq < size:
        raise BadInput("--seq", f"{seq} is not covered by the latest checkpoint (size {size})", f"use 0..{size - 1}")
    if len(data.lines) < size:
        raise CheckFailed(f"{data.where}: holds {len(data.lines)} entries but checkpoint #{k} covers {size}")
    tree = MerkleTree()
    tree.extend(data.lines[:size])
    if tree.root().hex() != ck["root"]:
        raise CheckFailed(f"{data.where}: entries do not match checkpoint #{k}'s root; run `mlops audit verify`")
    return {
        "checkpoint": ck,
        "entry": data.lines[seq].decode("utf-8"),
        "format": PROOF_FORMAT,
        "leaf_hash": tree.leaf(seq).hex(),
        "proof": [h.hex() for h in tree.inclusion_proof(seq)],
        "seq": seq,
        "tree_size": size,
    }


def check_proof(proof_doc: Any, where: str = "proof", public_key: Any = None) -> dict:
    """Verify an inclusion proof offline from the proof and its checkpoint; CheckFailed when it does not hold."""
    fix = "pass the JSON printed by `mlops audit prove --seq N`"
    if not isinstance(proof_doc, dict) or proof_doc.get("format") != PROOF_FORMAT:
        raise BadInput(where, f"is not an {PROOF_FORMAT} document", fix)
    for key, kind in (("checkpoint", dict), ("entry", str), ("proof", list), ("seq", int), ("tree_size", int)):
        if not isinstance(proof_doc.get(key), kind) or isinstance(proof_doc.get(key), bool):
            raise BadInput(f"{where}: {key}", f"missing or not a {kind.__name__}", fix)
    ck = proof_doc["checkpoint"]
    try:
        _parse_checkpoint(jsonio.canonical(ck), f"{where}: checkpoint")
        hashes = [bytes.fromhex(h) for h in proof_doc["proof"]]
        root = bytes.fromhex(ck["root"])
    except (ValueError, TypeError, AttributeError) as exc:
        raise BadInput(f"{where}: proof", f"malformed ({exc})", fix) from None
    seq, size = proof_doc["seq"], proof_doc["tree_size"]
    if size != ck["size"]:
        raise CheckFailed(f"{where}: tree_size {size} is not the checkpoint's size {ck['size']}")
    entry = proof_doc["entry"].encode("utf-8")
    problem = check_entry_line(entry, seq)
    if problem:
        raise CheckFailed(f"{where}: the entry {problem}")
    leaf = leaf_hash(entry)
    try:
        verify_inclusion(seq, size, leaf, hashes, root)
    except ProofError as exc:
        raise CheckFailed(f"{where}: entry seq {seq} is not included in the checkpoint of size {size}: {exc}") from None
    signature = "not checked (no public key given)" if "signature" in ck else "unsigned"
    if public_key is not None:
        bad = check_signature(ck, public_key)
        if bad:
            raise CheckFailed(f"{where}: the checkpoint {bad}")
        signature = "valid"
    return {"seq": seq, "tree_size": size, "root": ck["root"], "signature": signature, "leaf_hash": leaf.hex()}


def compare_with_log(repo: Repo, checkpoint: dict, where: str = "proof") -> str:
    """Compare a proof's checkpoint with this repository's committed one of the same size.

    Without a signature, check_proof() only shows that the entry is in *a* tree: a forger who edits the entry
    can recompute the root the proof carries. The checkpoint this repository committed for that tree size
    cannot be recomputed that way, so a proof checked inside a checkout must carry exactly that checkpoint.
    """
    path = repo.audit_dir / CHECKPOINTS
    where_log = repo.rel(path)
    if not path.exists():
        return f"not compared with a log: no {where_log} here"
    lines, _torn = _split_lines(path.read_bytes())
    same_size: list[tuple[int, dict]] = []
    for k, line in enumerate(lines):
        try:
            ck = json.loads(line, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError):
            continue  # a broken line is `mlops audit verify`'s finding, not this proof's
        if isinstance(ck, dict) and ck.get("size") == checkpoint.get("size"):
            if _canonical(ck) == _canonical(checkpoint):
                return f"matches checkpoint #{k} in {where_log}"
            same_size.append((k, ck))  # `keygen` re-signs a tree head: one size can have two checkpoints
    if same_size:
        k, ck = same_size[0]
        mine, theirs = str(checkpoint.get("root"))[:12], str(ck.get("root"))[:12]
        raise CheckFailed(
            f"{where}: its checkpoint (size {checkpoint.get('size')}, root {mine}…) is not checkpoint #{k} "
            f"in {where_log} (root {theirs}…) or any other of that size: the proof or the entry was altered"
        )
    return f"not compared with a log: {where_log} has no checkpoint of size {checkpoint.get('size')}"


# ---------------------------------------------------------------------------------------------- repair, keys


def repair_torn_tail(repo: Repo) -> list[str]:
    """Remove an incomplete final line from the last segment and from checkpoints.jsonl, nothing else."""
    audit_dir = repo.audit_dir
    if not audit_dir.is_dir():
        return []
    from filelock import FileLock

    done = []
    with FileLock(str(audit_dir / LOCK)):
        segs = sorted(p.name for p in audit_dir.iterdir() if SEGMENT_RE.match(p.name))
        if segs:
            _refuse_to_cut_a_checkpointed_entry(repo, segs[-1])
        for name in ([segs[-1]] if segs else []) + [CHECKPOINTS]:
            path = audit_dir / name
            if not path.exists():
                continue
            data = path.read_bytes()
            keep = data.rfind(b"\n") + 1
            if keep == len(data):
                continue
            with open(path, "r+b") as fh:
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())
            done.append(f"{repo.rel(path)}: removed an incomplete final line of {len(data) - keep} bytes")
        if done:
            (audit_dir / STATE_CACHE).unlink(missing_ok=True)
    return done


def _refuse_to_cut_a_checkpointed_entry(repo: Repo, last_segment: str) -> None:
    """An interrupted append never leaves a checkpointed entry without its newline: such a line was tampered with."""
    audit_dir = repo.audit_dir
    data = (audit_dir / last_segment).read_bytes()
    if not data or data.endswith(b"\n"):
        return
    complete_lines = data.count(b"\n")
    seq = int(SEGMENT_RE.match(last_segment).group(1)) + complete_lines
    where = f"{repo.rel(audit_dir / last_segment)} line {complete_lines + 1}"
    ck_path = audit_dir / CHECKPOINTS
    complete = ck_path.read_bytes().rpartition(b"\n")[0] if ck_path.exists() else b""
    if not complete:
        return
    line_no = complete.count(b"\n") + 1
    try:
        covered = json.loads(complete.rpartition(b"\n")[2])["size"]
    except (ValueError, KeyError, TypeError):
        covered = None
    if not isinstance(covered, int) or isinstance(covered, bool):
        raise CheckFailed(
            f"{repo.rel(ck_path)} line {line_no}: is not a checkpoint, so whether the incomplete {where} was "
            "committed cannot be told; nothing removed; run `mlops audit verify`"
        )
    if seq < covered:
        raise CheckFailed(
            f"{where}: entry seq {seq} has no newline but "
            f"checkpoint #{line_no - 1} covers it (size {covered}), so it was committed and then cut, not torn by a "
            "crash; nothing removed; restore the file from git (`git checkout -- metadata/audit`)"
        )


def keygen(repo: Repo, *, force: bool = False) -> tuple[str, Path]:
    """Create an ed25519 key pair: writes checkpoint-key.pub, signs the current head, returns the private key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = repo.audit_dir / PUBLIC_KEY
    if path.exists() and not force:
        raise BadInput(repo.rel(path), "already exists", "pass --force to replace it (old signatures stop verifying)")
    key = Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    if any(repo.audit_dir.glob("entries-*.jsonl")):
        # Sign the current tree head now, so the latest checkpoint is signed as soon as the key is committed.
        with AuditWriter(repo, signing_key=key) as w:
            w.checkpoint(force=True)
    jsonio.atomic_write_bytes(path, pem)
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return _b64(seed), path
