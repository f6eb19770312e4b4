"""`mlops audit keygen`: a new Ed25519 key for signing checkpoints (the log's) or cosigning them (a witness's).

Keys are in the C2SP signed-note form: the private key `PRIVATE+KEY+<name>+<id>+<base64>` goes in the secret,
the verifier key `<name>+<id>+<base64>` (checkpoint.vkey) is committed. Loading keys and signing live in
checkpoint.py and note.py; this module sits above the writer because a new key also re-signs the current head.
"""

from __future__ import annotations

from pathlib import Path

import mlops.audit.note as notes
from mlops import jsonio
from mlops.audit.append import AuditWriter
from mlops.audit.checkpoint import log_origin
from mlops.audit.entries import CHECKPOINTS, PUBLIC_KEY, VKEY, parse_line
from mlops.audit.log import last_line
from mlops.errors import BadInput
from mlops.repo import Repo


def keygen(repo: Repo, *, force: bool = False) -> tuple[str, Path]:
    """Create the log's key (name = the log's origin): writes checkpoint.vkey (and the same key as PEM in
    checkpoint-key.pub, for older mlops), signs the current head, returns the private key to keep secret."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = repo.audit_dir / VKEY
    for existing in (path, repo.audit_dir / PUBLIC_KEY):
        if existing.exists() and not force:
            raise BadInput(
                repo.rel(existing), "already exists", "pass --force to replace it (old signatures stop verifying)"
            )
    line = last_line(repo.audit_dir / CHECKPOINTS)
    try:
        last = parse_line(line) if line else None
    except ValueError:
        last = None
    origin = log_origin(repo, last if isinstance(last, dict) else None)
    signer = notes.generate(origin)
    pem = (
        Ed25519PrivateKey.from_private_bytes(signer.seed)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    if any(repo.audit_dir.glob("entries-*.jsonl")):
        # Sign the current tree head now, so the latest checkpoint is signed as soon as the key is committed.
        with AuditWriter(repo, signing_key=signer) as w:
            w.origin = origin
            w.checkpoint(force=True)
    jsonio.atomic_write_bytes(repo.audit_dir / PUBLIC_KEY, pem)
    jsonio.atomic_write_bytes(path, (signer.verifier.vkey() + "\n").encode())
    return signer.skey(), path


def witness_keygen(name: str) -> tuple[str, str]:
    """A witness's cosigning key (type 0x04): (private key, vkey). Nothing is written."""
    signer = notes.generate(name, notes.ALG_COSIGNATURE)
    return signer.skey(), signer.verifier.vkey()
