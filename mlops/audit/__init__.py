"""The Merkle-rooted audit log in metadata/audit/ (docs/audit.md): one module per concern, re-exported here.

- entries.py: file names, event types, entry lines (canonical JSON through `jsonio`) and their checks;
- checkpoint.py: checkpoint lines, ed25519 signatures, loading keys;
- log.py: reading segments and checkpoints from a folder;
- append.py: the locked writer and record();
- verify.py: `mlops audit verify [--against REF]`;
- proofs.py: `prove`, `check-proof`;
- keys.py: `keygen`;  repair.py: `repair --truncate-torn-tail`.

Stages call ``audit.record(repo, event_type, payload)``. The submodules import one another directly, never
this package, so importing it has no cycle.
"""

from __future__ import annotations

from mlops.audit.append import SEGMENT_BYTES, AuditWriter, record, writer
from mlops.audit.checkpoint import (
    check_can_record,
    check_signature,
    load_private_key,
    load_public_key,
    parse_checkpoint,
    sign_checkpoint,
)
from mlops.audit.entries import (
    CHECKPOINTS,
    EVENT_TYPES,
    LOCK,
    MAX_ENTRY_BYTES,
    PUBLIC_KEY,
    SIGNING_KEY_ENV,
    STATE_CACHE,
    EntryEncoder,
    check_entry_line,
    default_actor,
    encode_payload,
)
from mlops.audit.keys import keygen
from mlops.audit.log import LogData, read_dir, read_log
from mlops.audit.proofs import PROOF_FORMAT, check_proof, compare_with_log, prove
from mlops.audit.repair import repair_torn_tail
from mlops.audit.verify import AgainstResult, VerifyResult, read_git, verify, verify_against, verify_data

__all__ = [
    "CHECKPOINTS",
    "EVENT_TYPES",
    "LOCK",
    "MAX_ENTRY_BYTES",
    "PROOF_FORMAT",
    "PUBLIC_KEY",
    "SEGMENT_BYTES",
    "SIGNING_KEY_ENV",
    "STATE_CACHE",
    "AgainstResult",
    "AuditWriter",
    "EntryEncoder",
    "LogData",
    "VerifyResult",
    "check_can_record",
    "check_entry_line",
    "check_proof",
    "check_signature",
    "compare_with_log",
    "default_actor",
    "encode_payload",
    "keygen",
    "load_private_key",
    "load_public_key",
    "parse_checkpoint",
    "prove",
    "read_dir",
    "read_git",
    "read_log",
    "record",
    "repair_torn_tail",
    "sign_checkpoint",
    "verify",
    "verify_against",
    "verify_data",
    "writer",
]
