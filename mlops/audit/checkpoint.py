"""Checkpoints (tree heads in checkpoints.jsonl) and their ed25519 signatures, with the keys that make them.

A checkpoint is one canonical JSON line: size, root, time, and the previous checkpoint's size and root, so
removing or forging one breaks the chain; when signed, also key_id and signature (over
SIGNATURE_CONTEXT + the canonical JSON of every other key). `mlops audit keygen` (keys.py) creates the keys.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path
from typing import Any

from mlops import jsonio
from mlops.audit.entries import PUBLIC_KEY, SIGNING_KEY_ENV, TIME_RE, parse_line
from mlops.errors import BadInput, CheckFailed
from mlops.merkle import EMPTY_ROOT
from mlops.repo import Repo

CHECKPOINT_KEYS = frozenset({"size", "root", "time", "prev_size", "prev_root"})
SIGNATURE_KEYS = frozenset({"key_id", "signature"})
SIGNATURE_CONTEXT = b"mlops-audit-checkpoint/v1\n"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def parse_checkpoint(line: bytes, where: str) -> dict:
    """The checkpoint on a stored line; CheckFailed naming `where` when the line is not one, byte for byte."""
    try:
        ck = parse_line(line)
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
    if not isinstance(ck["time"], str) or not TIME_RE.match(ck["time"]):
        raise CheckFailed(f"{where}: time {ck['time']!r} is not YYYY-MM-DDTHH:MM:SSZ")
    if jsonio.canonical(ck) != line:
        raise CheckFailed(f"{where}: is not in canonical form, so its bytes were edited")
    return ck


def next_checkpoint(prev: dict | None, size: int, root: bytes, signing_key: Any = None) -> dict:
    """The checkpoint that follows `prev` for a tree of `size` leaves with `root`, signed when a key is given."""
    ck = {
        "prev_root": prev["root"] if prev else EMPTY_ROOT.hex(),
        "prev_size": prev["size"] if prev else 0,
        "root": root.hex(),
        "size": size,
        "time": jsonio.format_utc(jsonio.utc_now()),
    }
    return sign_checkpoint(ck, signing_key) if signing_key is not None else ck


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


def check_signature(checkpoint: dict, public_key: Any) -> str | None:
    """Why a checkpoint's signature does not verify under public_key, or None when it does."""
    from cryptography.exceptions import InvalidSignature

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


def signing_key_for(audit_dir: Path) -> Any:
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
    if pub_path.exists() and public_raw(load_public_key(pub_path)) != public_raw(key.public_key()):
        raise BadInput(SIGNING_KEY_ENV, f"does not match the committed {PUBLIC_KEY}", "set the matching key")
    return key


def check_can_record(repo: Repo) -> None:
    """BadInput now if record() would refuse for want of the signing key, so a caller can check before it acts."""
    signing_key_for(repo.audit_dir)
