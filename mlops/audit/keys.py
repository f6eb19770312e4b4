"""`mlops audit keygen`: a new ed25519 key pair for signing checkpoints.

Loading keys and signing live in checkpoint.py, which the writer uses; this module sits above the writer
because a new key also re-signs the current tree head.
"""

from __future__ import annotations

import base64
from pathlib import Path

from mlops import jsonio
from mlops.audit.append import AuditWriter
from mlops.audit.entries import PUBLIC_KEY
from mlops.errors import BadInput
from mlops.repo import Repo


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
    return base64.b64encode(seed).decode("ascii"), path
