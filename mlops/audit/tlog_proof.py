"""Inclusion proofs as C2SP tlog-proof bundles (https://c2sp.org/tlog-proof): `prove` writes, `check-proof` reads.

    c2sp.org/tlog-proof@v1
    extra <base64 of the entry line>
    index <seq>
    <base64 hash>                      one per line, leaf's sibling first (RFC 6962 §2.1.1)

    <the newest checkpoint: origin, size, root, blank line, the log's signature, witness cosignatures>

The entry travels in `extra` (the spec's "additional data necessary to reconstruct the record hash"), so the
bundle is checkable offline with only the log's vkey (and witnesses' vkeys). The legacy JSON proof
(proofs.py) is still written by `prove --format json` and read by `check-proof`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import mlops.audit.note as notes
from mlops.audit.checkpoint import NOTE, is_signed, note_of, parse_checkpoint
from mlops.audit.entries import CHECKPOINTS, VKEY, check_entry_line
from mlops.audit.log import LogData, split_lines
from mlops.audit.proofs import prove
from mlops.audit.witness import merged
from mlops.errors import BadInput, CheckFailed
from mlops.merkle import ProofError, leaf_hash, verify_inclusion
from mlops.repo import Repo

HEADER = "c2sp.org/tlog-proof@v1"
_FIX = "pass a file written by `mlops audit prove`"


@dataclass
class Bundle:
    index: int
    extra: bytes | None
    hashes: list[bytes]
    note: notes.Note
    checkpoint: notes.Checkpoint


def encode(index: int, extra: bytes | None, hashes: list[bytes], note: notes.Note) -> str:
    head = [HEADER] + ([f"extra {notes.b64(extra)}"] if extra is not None else []) + [f"index {index}"]
    return "\n".join(head + [notes.b64(h) for h in hashes]) + "\n\n" + note.render()


def prove_tlog(repo: Repo, seq: int, data: LogData | None = None) -> str:
    """A tlog-proof of entry seq against the newest checkpoint, with any witness cosignatures of it."""
    from mlops.audit.log import read_dir

    doc = prove(repo, seq)
    ck = doc["checkpoint"]
    if NOTE not in ck or not is_signed(ck):
        raise BadInput(
            "--format",
            "tlog-proof needs the newest checkpoint to be a signed C2SP note, and it is not signed",
            "run `mlops audit keygen` and record an event, or pass --format json",
        )
    note = note_of(ck, "newest checkpoint")[1]
    assert note is not None
    data = data or read_dir(repo.audit_dir, repo.rel(repo.audit_dir))
    note = merged(data.witnessed, note)
    hashes = [bytes.fromhex(h) for h in doc["proof"]]
    return encode(seq, doc["entry"].encode("utf-8"), hashes, note)


def parse(text: str, where: str) -> Bundle:
    """The parts of a tlog-proof; BadInput naming the file when it is not one."""
    head, sep, rest = text.partition("\n\n")
    lines = head.split("\n")
    if not sep or lines[0] != HEADER:
        raise BadInput(where, f"is not a {HEADER} proof", _FIX)
    extra = None
    i = 1
    if len(lines) > i and lines[i].startswith("extra "):
        try:
            extra = notes.b64decode(lines[i][6:])
        except ValueError:
            raise BadInput(where, "its extra line is not base64", _FIX) from None
        i += 1
    m = re.fullmatch(r"index (0|[1-9][0-9]*)", lines[i]) if len(lines) > i else None
    if m is None:
        raise BadInput(where, "has no `index N` line after the header", _FIX)
    hashes = []
    for line in lines[i + 1 :]:
        try:
            h = notes.b64decode(line)
        except ValueError:
            h = b""
        if len(h) != 32:
            raise BadInput(where, f"proof line {line[:48]!r} is not base64 of a 32-byte hash", _FIX)
        hashes.append(h)
    note = notes.parse_note(rest, f"{where}: checkpoint")
    try:
        ck = notes.parse_checkpoint_body(note.text, f"{where}: checkpoint")
    except CheckFailed as exc:
        raise BadInput(where, str(exc), _FIX) from None
    return Bundle(int(m.group(1)), extra, hashes, note, ck)


def check(text: str, where: str, log_key: notes.Verifier | None) -> dict:
    """Verify a tlog-proof offline: the log's signature (under `log_key`, whose name is the expected origin),
    the entry in `extra`, and its inclusion. BadInput for a malformed bundle or one for another origin."""
    bundle = parse(text, where)
    ck = bundle.checkpoint
    if log_key is not None and ck.origin != log_key.name:
        raise BadInput(
            where,
            f"is a proof for the log {ck.origin!r}, not for {log_key.name!r}",
            f"check it against that log's vkey (--log-key), or use a proof from {log_key.name}",
        )
    signature = "not checked (no log key given)"
    if log_key is not None:
        notes.open_note(bundle.note, [log_key], f"{where}: checkpoint")
        signature = f"valid ({log_key.name}+{log_key.id.hex()})"
    if bundle.extra is None:
        raise BadInput(where, "has no extra line carrying the entry", "prove it again with `mlops audit prove`")
    entry = bundle.extra
    problem = check_entry_line(entry, bundle.index)
    if problem:
        raise CheckFailed(f"{where}: the entry in its extra line {problem}")
    leaf = leaf_hash(entry)
    try:
        verify_inclusion(bundle.index, ck.size, leaf, bundle.hashes, ck.root)
    except ProofError as exc:
        raise CheckFailed(
            f"{where}: entry seq {bundle.index} is not included in the checkpoint of size {ck.size}: {exc}"
        ) from None
    return {
        "seq": bundle.index,
        "tree_size": ck.size,
        "root": ck.root.hex(),
        "origin": ck.origin,
        "signature": signature,
        "note": bundle.note,
    }


def compare_with_log(repo: Repo, result: dict, where: str) -> str:
    """Compare the bundle's checkpoint with the committed checkpoint of the same size in this checkout."""
    path = repo.audit_dir / CHECKPOINTS
    rel = repo.rel(path)
    if not path.exists():
        return f"not compared with a log: no {rel} here"
    lines, _torn = split_lines(path.read_bytes())
    for k, line in enumerate(lines):
        try:
            ck = parse_checkpoint(line, f"{rel} line {k + 1}")
        except CheckFailed:
            continue  # a broken line is `mlops audit verify`'s finding
        if ck["size"] != result["tree_size"] or NOTE not in ck:
            continue
        body = note_of(ck, rel)[0]
        if body.root.hex() == result["root"] and body.origin == result["origin"]:
            return f"matches checkpoint #{k} in {rel}"
        raise CheckFailed(
            f"{where}: its checkpoint ({result['origin']}, size {result['tree_size']}, root {result['root'][:12]}…) "
            f"is not checkpoint #{k} in {rel} ({body.origin}, root {body.root.hex()[:12]}…): the proof or the entry "
            "was altered"
        )
    return f"not compared with a log: {rel} has no C2SP checkpoint of size {result['tree_size']}"


def committed_log_key(repo: Repo) -> notes.Verifier | None:
    from mlops.audit.checkpoint import read_vkey

    path = repo.audit_dir / VKEY
    return read_vkey(path) if path.exists() else None
