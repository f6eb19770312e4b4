"""Checkpoints (tree heads in checkpoints.jsonl) and their signatures, with the keys that make them.

A checkpoint is one canonical JSON line: size, root (hex), time, and the previous checkpoint's size and root,
so removing or forging one breaks the chain. Since issue 19 the line also carries `note`: the tree head as a
C2SP tlog-checkpoint inside a signed note (note.py), signed by the log's key when signing is on; the JSON keys
around it are the sidecar (time and the previous tree head have no place in the standard checkpoint).
Lines written before that (the legacy format) carry key_id and signature (over SIGNATURE_CONTEXT + the
canonical JSON of every other key) when signed. `mlops audit keygen` (keys.py) creates the keys.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import mlops.audit.note as notes
from mlops import jsonio
from mlops.audit.entries import ORIGIN_ENV, PUBLIC_KEY, SIGNING_KEY_ENV, TIME_RE, VKEY, parse_line
from mlops.errors import BadInput, CheckFailed
from mlops.merkle import EMPTY_ROOT
from mlops.repo import Repo

CHECKPOINT_KEYS = frozenset({"size", "root", "time", "prev_size", "prev_root"})
SIGNATURE_KEYS = frozenset({"key_id", "signature"})
NOTE = "note"
SIGNATURE_CONTEXT = b"mlops-audit-checkpoint/v1\n"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def parse_checkpoint(line: bytes, where: str) -> dict:
    """The checkpoint on a stored line; CheckFailed naming `where` when the line is not one, byte for byte."""
    try:
        ck = parse_line(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckFailed(f"{where}: is not valid JSON ({exc})") from None
    extra = set(ck) - CHECKPOINT_KEYS if isinstance(ck, dict) else set()
    if not isinstance(ck, dict) or not set(ck) >= CHECKPOINT_KEYS or extra not in (set(), SIGNATURE_KEYS, {NOTE}):
        keys = sorted(ck) if isinstance(ck, dict) else type(ck).__name__
        raise CheckFailed(
            f"{where}: has keys {keys}, expected {sorted(CHECKPOINT_KEYS)} (+ note, or key_id and signature)"
        )
    for k in ("size", "prev_size"):
        if type(ck[k]) is not int or ck[k] < 0:
            raise CheckFailed(f"{where}: {k} {ck[k]!r} is not a non-negative integer")
    for k in ("root", "prev_root"):
        if not isinstance(ck[k], str) or not _HEX64.match(ck[k]):
            raise CheckFailed(f"{where}: {k} {ck[k]!r} is not a lowercase hex SHA-256")
    if not isinstance(ck["time"], str) or not TIME_RE.match(ck["time"]):
        raise CheckFailed(f"{where}: time {ck['time']!r} is not YYYY-MM-DDTHH:MM:SSZ")
    if jsonio.canonical(ck) != line:
        raise CheckFailed(f"{where}: is not in canonical form, so its bytes were edited")
    if NOTE in ck:
        note_of(ck, where)
    return ck


def note_of(ck: dict, where: str) -> tuple[notes.Checkpoint, notes.Note | None]:
    """The tlog-checkpoint and signed note (None when unsigned) of a checkpoint line; CheckFailed when the note
    is malformed or names another size or root than the line."""
    text = ck.get(NOTE)
    if not isinstance(text, str):
        raise CheckFailed(f"{where}: note is not a string")
    try:
        note = notes.parse_note(text, f"{where}: note") if "\n\n" in text else None
    except BadInput as exc:
        raise CheckFailed(str(exc)) from None
    body = notes.parse_checkpoint_body(note.text if note else text, f"{where}: note")
    if body.extensions or not notes.valid_name(body.origin):
        raise CheckFailed(f"{where}: note has extension lines or an origin with a space or '+'")
    if (body.size, body.root.hex()) != (ck["size"], ck["root"]):
        raise CheckFailed(
            f"{where}: its note is for size {body.size} root {body.root.hex()[:16]}…, not size {ck['size']} "
            f"root {ck['root'][:16]}…; the checkpoint was edited"
        )
    return body, note


def next_checkpoint(prev: dict | None, size: int, root: bytes, origin: str, signer: Any = None) -> dict:
    """The checkpoint that follows `prev` for a tree of `size` leaves with `root`: a tlog-checkpoint note,
    signed by the log's key when one is given, in a JSON line with the time and the previous tree head."""
    body = notes.Checkpoint(origin, size, root).body()
    text = notes.Note(body, [notes.sign_note(body, signer)]).render() if signer is not None else body
    return {
        "note": text,
        "prev_root": prev["root"] if prev else EMPTY_ROOT.hex(),
        "prev_size": prev["size"] if prev else 0,
        "root": root.hex(),
        "size": size,
        "time": jsonio.format_utc(jsonio.utc_now()),
    }


def is_signed(ck: dict) -> bool:
    return "signature" in ck or "\n\n" in ck.get(NOTE, "")


def check_note_signature(ck: dict, verifier: notes.Verifier, where: str) -> str | None:
    """Why a note-format checkpoint is not signed by the log's key `verifier`, or None when it is."""
    body, note = note_of(ck, where)
    if note is None:
        return "is not signed"
    if body.origin != verifier.name:
        return f"has origin {body.origin!r}, not the log's {verifier.name!r} (named by {VKEY})"
    try:
        notes.open_note(note, [verifier], "its note")
    except CheckFailed as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------------------------------------- signatures


def key_id(public_raw: bytes) -> str:
    """First 16 hex digits of SHA-256 over the raw public key: names the key a checkpoint was signed with."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def public_raw(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _signed_bytes(checkpoint: dict) -> bytes:
    body = {k: v for k, v in checkpoint.items() if k != "signature"}
    return SIGNATURE_CONTEXT + jsonio.canonical(body)


def sign_checkpoint(checkpoint: dict, private_key: Any) -> dict:
    signed = dict(checkpoint)
    signed["key_id"] = key_id(public_raw(private_key.public_key()))
    signed["signature"] = base64.b64encode(private_key.sign(_signed_bytes(signed))).decode("ascii")
    return signed


def check_signature(checkpoint: dict, public_key: Any, verifier: notes.Verifier | None = None) -> str | None:
    """Why a checkpoint's signature does not verify (legacy lines: under the PEM public_key; notes: under the
    log's vkey, or one made from public_key and the note's origin when no vkey is given), or None when it does."""
    from cryptography.exceptions import InvalidSignature

    if NOTE in checkpoint:
        if verifier is None and public_key is not None:
            origin = note_of(checkpoint, "checkpoint")[0].origin
            verifier = notes.Verifier(origin, notes.ALG_ED25519, public_raw(public_key))
        if verifier is None:
            return "cannot be checked: no key given"
        return check_note_signature(checkpoint, verifier, "checkpoint")
    sig = checkpoint.get("signature")
    if sig is None:
        return "is not signed"
    if checkpoint.get("key_id") != key_id(public_raw(public_key)):
        return f"is signed by key {checkpoint.get('key_id')!r}, not by the committed {PUBLIC_KEY}"
    try:
        public_key.verify(base64.b64decode(sig, validate=True), _signed_bytes(checkpoint))
    except (InvalidSignature, ValueError, TypeError):
        return "has a signature that does not verify"
    return None


# ---------------------------------------------------------------------------------------------- keys


def load_private_key(text: str, where: str = SIGNING_KEY_ENV) -> Any:
    """An ed25519 private key from a signed-note signer key, PEM (PKCS#8) or base64 of the 32-byte seed."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    text = text.strip()
    fix = "set it to the output of `mlops audit keygen` (base64 of a 32-byte ed25519 seed) or a PKCS#8 PEM key"
    try:
        if text.startswith("PRIVATE+KEY+"):
            key = Ed25519PrivateKey.from_private_bytes(notes.parse_skey(text, where).seed)
        elif text.startswith("-----BEGIN"):
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


def load_signer(text: str, origin: str, where: str = SIGNING_KEY_ENV) -> notes.Signer:
    """The log's note signer: a `PRIVATE+KEY+<origin>+…` key as keygen prints it, or a legacy key (seed or PEM)
    that signs under the name `origin`."""
    from cryptography.hazmat.primitives import serialization

    if text.strip().startswith("PRIVATE+KEY+"):
        signer = notes.parse_skey(text, where)
        if signer.alg != notes.ALG_ED25519:
            raise BadInput(where, "is a witness key (type 0x04), not the log's key", "set the log's signing key")
        if signer.name != origin:
            raise BadInput(where, f"is named {signer.name!r}, not the log's origin {origin!r}", f"set {ORIGIN_ENV}")
        return signer
    seed = load_private_key(text, where).private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return notes.Signer(origin, notes.ALG_ED25519, seed)


def read_vkey(path: Path, text: str | None = None) -> notes.Verifier:
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8") if text is None else text
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(where, f"cannot be read ({exc})", "regenerate it with `mlops audit keygen`") from None
    verifier = notes.parse_vkey(text, where)
    if verifier.alg != notes.ALG_ED25519:
        raise BadInput(where, "is a witness key (type 0x04), not a log key", "commit the log's checkpoint.vkey")
    return verifier


def signing_key_for(audit_dir: Path, origin: str) -> Any:
    """The log's signer; BadInput when a public key is committed but no matching signing key is set."""
    text = os.environ.get(SIGNING_KEY_ENV, "").strip()
    pub_path, vkey_path = audit_dir / PUBLIC_KEY, audit_dir / VKEY
    if not text:
        committed = PUBLIC_KEY if pub_path.exists() else VKEY if vkey_path.exists() else None
        if committed:
            raise BadInput(
                SIGNING_KEY_ENV,
                f"is not set, but {committed} is committed so every new checkpoint must be signed",
                f"set {SIGNING_KEY_ENV} to the signing key (the repository secret)",
            )
        return None
    signer = load_signer(text, origin)
    if vkey_path.exists():
        if read_vkey(vkey_path) != signer.verifier:
            raise BadInput(SIGNING_KEY_ENV, f"does not match the committed {VKEY}", "set the matching key")
    elif pub_path.exists() and public_raw(load_public_key(pub_path)) != signer.verifier.public:
        raise BadInput(SIGNING_KEY_ENV, f"does not match the committed {PUBLIC_KEY}", "set the matching key")
    return signer


def default_origin(repo: Repo) -> str:
    """$MLOPS_AUDIT_ORIGIN, else github.com/<owner>/<repo>/audit from $GITHUB_REPOSITORY or the git remote
    `origin`, else localhost/<folder name>/audit."""
    if os.environ.get(ORIGIN_ENV, "").strip():
        origin = os.environ[ORIGIN_ENV].strip()
        if not notes.valid_name(origin):
            raise BadInput(ORIGIN_ENV, f"{origin!r} has a space or '+'", "use a schema-less URL, e.g. example.com/log")
        return origin
    if os.environ.get("GITHUB_REPOSITORY"):
        host = re.sub(r"^https?://", "", os.environ.get("GITHUB_SERVER_URL") or "github.com").rstrip("/")
        return f"{host}/{os.environ['GITHUB_REPOSITORY']}/audit"
    try:
        out = subprocess.run(
            ["git", "remote", "get-url", "origin"], cwd=repo.root, capture_output=True, text=True, timeout=10
        )
        url = out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        url = ""
    m = re.match(r"^(?:[a-z+]+://)?(?:[^@/]+@)?([^/:]+)[:/](?:\d+/)?(.+?)(?:\.git)?/?$", url)
    if m and notes.valid_name(f"{m.group(1)}/{m.group(2)}"):
        return f"{m.group(1)}/{m.group(2)}/audit"
    name = re.sub(r"[^A-Za-z0-9._-]", "-", repo.root.name) or "repo"
    return f"localhost/{name}/audit"


def log_origin(repo: Repo, last: dict | None) -> str:
    """The origin new checkpoints carry: the newest note's, else the committed vkey's name, else the default."""
    if last is not None and NOTE in last:
        return note_of(last, "checkpoint")[0].origin
    vkey_path = repo.audit_dir / VKEY
    if vkey_path.exists():
        return read_vkey(vkey_path).name
    return default_origin(repo)


def check_can_record(repo: Repo) -> None:
    """BadInput now if record() would refuse for want of the signing key, so a caller can check before it acts."""
    path, last = repo.audit_dir / "checkpoints.jsonl", None
    if path.exists():
        with open(path, "rb") as fh:  # only the tail: checkpoints.jsonl grows without bound
            fh.seek(max(0, path.stat().st_size - 65536))
            lines = fh.read().split(b"\n")
        try:
            last = parse_line(lines[-2]) if len(lines) >= 2 else None
        except (ValueError, UnicodeDecodeError):
            last = None
    signing_key_for(repo.audit_dir, log_origin(repo, last if isinstance(last, dict) else None))
