"""The Merkle-rooted audit log in metadata/audit/ (docs/audit.md): one module per concern, re-exported here.

- entries.py: file names, event types, entry lines (canonical JSON through `jsonio`) and their checks;
- checkpoint.py: checkpoint lines, ed25519 signatures, loading keys;
- log.py: reading segments and checkpoints from a folder;
- append.py: the locked writer and record();
- verify.py: `mlops audit verify [--against REF]`;
- proofs.py: `prove`, `check-proof`;
- keys.py: `keygen`;  repair.py: `repair --truncate-torn-tail`;
- note.py: C2SP signed notes, vkeys, tlog-checkpoint bodies, cosignatures;
- witness.py: `cosign` (a witness) and the cosignature check of `verify --witness`;
- tlog_proof.py: C2SP tlog-proof bundles for `prove` and `check-proof`.

Stages call ``audit.record(repo, event_type, payload)``. The submodules import one another directly, never
this package, so importing it has no cycle.
"""

from __future__ import annotations

from mlops.audit.append import AuditWriter, record, writer
from mlops.audit.checkpoint import check_can_record, load_private_key, load_public_key, sign_checkpoint
from mlops.audit.entries import (
    EVENT_TYPES,
    MAX_ENTRY_BYTES,
    ORIGIN_ENV,
    PUBLIC_KEY,
    SIGNING_KEY_ENV,
    STATE_CACHE,
    VKEY,
    WITNESS_KEY_ENV,
    WITNESSED,
    EntryEncoder,
    default_actor,
    encode_payload,
)
from mlops.audit.keys import keygen, witness_keygen
from mlops.audit.log import read_dir
from mlops.audit.proofs import check_proof, compare_with_log, prove
from mlops.audit.repair import repair_torn_tail
from mlops.audit.verify import AgainstResult, VerifyResult, verify, verify_against
from mlops.audit.witness import cosign_repo

# What stages, commands, tests and the benchmark use. The segment size is read by the writer from
# mlops.audit.append.SEGMENT_BYTES; it is not re-exported, since setting a copy here would change nothing.
__all__ = [
    "EVENT_TYPES",
    "MAX_ENTRY_BYTES",
    "ORIGIN_ENV",
    "PUBLIC_KEY",
    "SIGNING_KEY_ENV",
    "STATE_CACHE",
    "VKEY",
    "WITNESSED",
    "WITNESS_KEY_ENV",
    "AgainstResult",
    "AuditWriter",
    "EntryEncoder",
    "VerifyResult",
    "check_can_record",
    "check_proof",
    "compare_with_log",
    "cosign_repo",
    "default_actor",
    "encode_payload",
    "keygen",
    "load_private_key",
    "load_public_key",
    "prove",
    "read_dir",
    "record",
    "repair_torn_tail",
    "sign_checkpoint",
    "verify",
    "verify_against",
    "witness_keygen",
    "writer",
]
