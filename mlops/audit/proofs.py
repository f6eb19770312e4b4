"""`mlops audit prove` and `check-proof`: an inclusion proof of one entry, checkable offline.

A proof document carries the entry's text, its leaf hash, the RFC 9162 audit path and the checkpoint it
leads to. Checked inside a checkout, its checkpoint is also compared with the committed one of that size.
"""

from __future__ import annotations

from typing import Any

from mlops import jsonio
from mlops.audit.checkpoint import check_signature, parse_checkpoint
from mlops.audit.entries import CHECKPOINTS, check_entry_line, parse_line
from mlops.audit.log import read_dir, split_lines
from mlops.errors import BadInput, CheckFailed
from mlops.merkle import MerkleTree, ProofError, leaf_hash, verify_inclusion
from mlops.repo import Repo

PROOF_FORMAT = "mlops-audit-inclusion-proof/v1"


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
    ck = parse_checkpoint(data.checkpoint_lines[k], f"{data.where}/{CHECKPOINTS} line {k + 1} (checkpoint #{k})")
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
        parse_checkpoint(jsonio.canonical(ck), f"{where}: checkpoint")
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
    lines, _torn = split_lines(path.read_bytes())
    same_size: list[tuple[int, dict]] = []
    for k, line in enumerate(lines):
        try:
            ck = parse_line(line)
        except (ValueError, UnicodeDecodeError):
            continue  # a broken line is `mlops audit verify`'s finding, not this proof's
        if isinstance(ck, dict) and ck.get("size") == checkpoint.get("size"):
            if jsonio.canonical(ck) == jsonio.canonical(checkpoint):
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
