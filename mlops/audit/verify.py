"""`mlops audit verify [--against REF]`: re-hash the log, check every checkpoint, and prove append-only history.

verify_data() raises CheckFailed naming the first bad entry or checkpoint. Its cost is the hashing: one leaf
hash per entry plus the tree's node hashes (MerkleTree.extend), then O(log n) per checkpoint; entries are
parsed only after the latest checkpoint or to name the one a failed check points at.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops import jsonio
from mlops.audit.checkpoint import (
    NOTE,
    check_signature,
    is_signed,
    load_public_key,
    note_of,
    parse_checkpoint,
    public_raw,
    read_vkey,
)
from mlops.audit.entries import (
    CHECKPOINTS,
    PUBLIC_KEY,
    REPAIR_COMMAND,
    SEGMENT_RE,
    VKEY,
    check_entry_line,
    parse_line,
)
from mlops.audit.log import LogData, read_dir, read_log
from mlops.errors import BadInput, CheckFailed
from mlops.merkle import EMPTY_ROOT, MerkleTree, ProofError, leaf_hash, verify_consistency
from mlops.repo import Repo


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
    last: dict | None = field(default=None, repr=False)  # the newest checkpoint line, parsed
    notes: int = 0  # checkpoints in the C2SP note format


@dataclass
class _Chain:
    """Where the walk over the checkpoints has got to."""

    size: int = 0
    root: bytes = EMPTY_ROOT
    signed: int = 0
    last: dict | None = None
    origin: str | None = None  # of the notes, once the first one is seen
    notes: int = 0
    legacy_signed: int = 0


def _first_bad_entry(data: LogData, lo: int, hi: int) -> str | None:
    for seq in range(lo, min(hi, len(data.lines))):
        problem = check_entry_line(data.lines[seq], seq)
        if problem:
            return f"entry seq {seq} ({data.locate(seq)}) {problem}"
    return None


def _check_tree_head(data: LogData, tree: MerkleTree, chain: _Chain, ck: dict, at: str) -> bytes:
    """The checkpoint's place in the chain and its root against the entries; returns that root."""
    size, prev_size, prev_root = ck["size"], chain.size, chain.root
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
    return root


def _check_format(data: LogData, chain: _Chain, ck: dict, at: str) -> None:
    """Legacy JSON checkpoints, then (from the recorded switch event on) C2SP notes of one origin; never back."""
    if NOTE not in ck:
        if chain.notes:
            raise CheckFailed(f"{at}: is a legacy JSON checkpoint after C2SP note checkpoints (a format downgrade)")
        return
    origin = note_of(ck, at)[0].origin
    if chain.origin is not None and origin != chain.origin:
        raise CheckFailed(f"{at}: its note has origin {origin!r}, but the log's notes so far have {chain.origin!r}")
    if chain.origin is None and chain.last is not None:
        # The first note after legacy checkpoints: the switch must be recorded among the entries it adds.
        switch = _switch_event(data, chain.size, ck["size"])
        if switch is None:
            raise CheckFailed(
                f"{at}: is the first C2SP note after legacy checkpoints, but entries seq "
                f"{chain.size}..{ck['size'] - 1} hold no checkpoint_format event recording the switch"
            )
        want = {"origin": origin, "previous_size": chain.size, "previous_root": chain.root.hex()}
        if {k: switch["payload"].get(k) for k in want} != want:
            raise CheckFailed(
                f"{at}: the checkpoint_format event (seq {switch['seq']}) records origin/previous tree head "
                f"{switch['payload'].get('origin')!r}/{switch['payload'].get('previous_size')}, not this note's "
                f"{origin!r}/{chain.size}"
            )
    chain.origin = origin
    chain.notes += 1


def _switch_event(data: LogData, lo: int, hi: int) -> dict | None:
    for seq in range(lo, min(hi, len(data.lines))):
        if b'"type":"checkpoint_format"' in data.lines[seq]:
            try:
                entry = parse_line(data.lines[seq])
            except (ValueError, UnicodeDecodeError):
                continue  # not an entry: _first_bad_entry names it
            is_switch = isinstance(entry, dict) and entry.get("type") == "checkpoint_format"
            if is_switch and isinstance(entry.get("payload"), dict):
                return entry
    return None


def _check_signed(data: LogData, chain: _Chain, ck: dict, at: str) -> None:
    """The signature, and no unsigned checkpoint after a signed one (a downgrade)."""
    seen_signed = chain.signed > 0
    if NOTE in ck and (data.vkey is not None or data.public_key is not None):
        problem = None if not is_signed(ck) and not seen_signed else check_signature(ck, data.public_key, data.vkey)
        if problem:
            raise CheckFailed(f"{at}: {problem}" + ("; a signed checkpoint precedes it" if seen_signed else ""))
    elif NOTE in ck:
        if seen_signed and not is_signed(ck):
            raise CheckFailed(
                f"{at}: is not signed but a signed checkpoint precedes it (a signing downgrade; was {VKEY} removed?)"
            )
    elif data.public_key is not None:
        problem = None if "signature" not in ck and not seen_signed else check_signature(ck, data.public_key)
        if problem:
            raise CheckFailed(f"{at}: {problem}" + ("; a signed checkpoint precedes it" if seen_signed else ""))
    elif seen_signed and "signature" not in ck:
        # Without the public key the signatures cannot be checked, but this needs no key: removing
        # checkpoint-key.pub must not turn off signing for whoever appends next.
        raise CheckFailed(
            f"{at}: is not signed but a signed checkpoint precedes it (a signing downgrade; was {PUBLIC_KEY} removed?)"
        )


def _check_checkpoints(data: LogData, tree: MerkleTree) -> _Chain:
    chain = _Chain()
    for k, line in enumerate(data.checkpoint_lines):
        at = f"{data.where}/{CHECKPOINTS} line {k + 1} (checkpoint #{k})"
        ck = parse_checkpoint(line, at)
        root = _check_tree_head(data, tree, chain, ck, at)
        _check_format(data, chain, ck, at)
        _check_signed(data, chain, ck, at)
        chain.signed += is_signed(ck)
        chain.legacy_signed += "signature" in ck
        chain.size, chain.root, chain.last = ck["size"], root, ck
    committed = data.public_key is not None or data.vkey is not None
    if committed and chain.last is not None and not is_signed(chain.last):
        # Otherwise stripping every signature would pass as "a log from before the key".
        k = len(data.checkpoint_lines) - 1
        raise CheckFailed(
            f"{data.where}/{CHECKPOINTS} line {k + 1} (checkpoint #{k}): the latest checkpoint is not signed but "
            f"{PUBLIC_KEY if data.public_key is not None else VKEY} is committed; signatures were stripped, or run "
            "`mlops audit keygen --force` to re-key"
        )
    return chain


def _check_tail(data: LogData, tree: MerkleTree, tail_start: int) -> None:
    """Entries after the latest checkpoint, and a torn final line of either file."""
    bad = _first_bad_entry(data, tail_start, tree.size)
    if bad:
        raise CheckFailed(bad + " (not yet covered by a checkpoint)")
    if data.torn_checkpoint:
        raise CheckFailed(
            f"{data.where}/{CHECKPOINTS} line {len(data.checkpoint_lines) + 1}: the final checkpoint is incomplete "
            f"({data.torn_checkpoint} bytes without a newline: a write was interrupted); run `{REPAIR_COMMAND}` "
            "to remove only that incomplete line"
        )
    if data.torn_entry:
        name, nbytes = data.torn_entry
        raise CheckFailed(
            f"{data.where}/{name} line {data.segments[-1].count + 1}: the final entry (seq {tree.size}) is "
            f"incomplete ({nbytes} bytes without a newline: an append was interrupted); run `{REPAIR_COMMAND}` "
            "to remove only that incomplete line"
        )


def verify_data(data: LogData) -> VerifyResult:
    """Every check of `mlops audit verify` on parsed data; raises CheckFailed naming the first problem."""
    tree = MerkleTree()
    tree.extend(data.lines)
    chain = _check_checkpoints(data, tree)
    _check_tail(data, tree, chain.size)
    warnings = []
    if tree.size > chain.size:
        warnings.append(
            f"{tree.size - chain.size} entries after the latest checkpoint (an append stopped before its "
            "checkpoint); the next append checkpoints them"
        )
    if data.public_key is None and data.vkey is None and chain.signed:
        warnings.append(
            f"{chain.signed} checkpoints are signed but no {VKEY} or {PUBLIC_KEY} is committed: signatures not checked"
        )
    elif data.public_key is None and chain.legacy_signed:
        warnings.append(f"{chain.legacy_signed} legacy checkpoints are signed but no {PUBLIC_KEY}: not checked")
    return VerifyResult(
        entries=tree.size,
        segments=len(data.segments),
        checkpoints=len(data.checkpoint_lines),
        signed=chain.signed,
        root=tree.root().hex(),
        checkpoint_root=chain.last["root"] if chain.last else None,
        unchecked_tail=tree.size - chain.size,
        warnings=warnings,
        tree=tree,
        last=chain.last,
        notes=chain.notes,
    )


def verify(repo: Repo) -> VerifyResult:
    """Verify the log in the work tree, and that models/deployment.json is the state its newest deployment
    event recorded; raises CheckFailed naming the first bad entry or checkpoint, or the state file."""
    data = read_dir(repo.audit_dir, repo.rel(repo.audit_dir))
    result = verify_data(data)
    result.warnings += check_deployment_state(repo, data.lines)
    return result


# ------------------------------------------------------------------------------------- deployment state

DEPLOYMENT_EVENTS = ("deployment_change", "rollback")
_DEPLOYMENT_MARKS = tuple(f'"type":"{t}"'.encode() for t in DEPLOYMENT_EVENTS)


def state_sha256(state: dict[str, Any] | None) -> str | None:
    """What a deployment event records of the state it wrote: sha256 of its canonical JSON (None: no state)."""
    return None if state is None else hashlib.sha256(jsonio.canonical(state)).hexdigest()


def _deployment_events(lines: list[bytes]) -> Any:
    """(seq, entry) of the deployment events, newest first. The joined log is searched backwards for the
    events' type bytes (C speed: a 100,000-entry log without one costs milliseconds); only hits are parsed."""
    blob = b"\n".join(lines)
    end = len(blob)
    while True:
        hit = max(blob.rfind(mark, 0, end) for mark in _DEPLOYMENT_MARKS)
        if hit < 0:
            return
        start = blob.rfind(b"\n", 0, hit) + 1
        stop = blob.find(b"\n", hit)
        entry = parse_line(blob[start : len(blob) if stop < 0 else stop])
        if entry.get("type") in DEPLOYMENT_EVENTS and isinstance(entry.get("payload"), dict):
            yield entry["seq"], entry
        end = start


def recorded_state(lines: list[bytes]) -> tuple[int, dict[str, Any]] | None:
    """(seq, entry) of the newest deployment event, or None when the log has none.

    CheckFailed when that event has no state_sha256 although an older one has (a downgrade: once the log
    records the state it must keep doing so). An event from before state_sha256 existed is returned as is.
    """
    events = _deployment_events(lines)
    newest = next(events, None)
    if newest is None or "state_sha256" in newest[1]["payload"]:
        return newest
    for seq, entry in events:
        if "state_sha256" in entry["payload"]:
            raise CheckFailed(
                f"audit entry seq {newest[0]} ({newest[1]['type']}) records no state_sha256 but entry seq {seq} "
                "before it does: a deployment event was written by hand or by an old mlops; change the state with "
                "`mlops deploy` or `mlops rollback`, which record it"
            )
    return newest


def check_deployment_state(repo: Repo, lines: list[bytes]) -> list[str]:
    """CheckFailed (one line naming models/deployment.json) unless the file is the state the newest deployment
    event recorded; returns a warning when the log predates state_sha256 and so cannot tell."""
    rel = repo.rel(repo.deployment_state)
    exists = repo.deployment_state.exists()
    newest = recorded_state(lines)
    if newest is None or "state_sha256" not in newest[1]["payload"]:
        if not exists:
            return []
        what = "no deployment event" if newest is None else f"its newest deployment event (seq {newest[0]})"
        return [
            f"{rel} not checked against the audit log: {what} records a state_sha256 (written before it "
            "existed); the next `mlops deploy` or `mlops rollback` records one"
        ]
    seq, entry = newest
    want = entry["payload"]["state_sha256"]
    if want is not None and not (isinstance(want, str) and re.fullmatch(r"[0-9a-f]{64}", want)):
        raise CheckFailed(
            f"audit entry seq {seq} ({entry['type']}): state_sha256 {str(want)[:20]!r} is not a sha256 or null; "
            "it was not written by `mlops deploy` or `mlops rollback`"
        )
    have = state_sha256(jsonio.read_json(repo.deployment_state, "deployment state", rel)) if exists else None
    if have == want:
        return []
    event = f"the newest deployment event (audit entry seq {seq}, {entry['type']} at {entry['time']})"
    if want is None:
        found = f"{event} removed the state, but the file exists"
    elif have is None:
        found = f"the file is missing, but {event} wrote a state (state_sha256 {want[:12]}…)"
    else:
        found = f"hashes to {have[:12]}…, not the {want[:12]}… recorded by {event}"
    raise CheckFailed(
        f"{rel}: is not the state the audit log recorded: {found}; it was edited by hand (or a deployment stopped "
        f"before its audit event): restore it (`git checkout -- {rel}`) and change the deployment only with "
        "`mlops deploy` or `mlops rollback`"
    )


# ---------------------------------------------------------------------------------------------- against git


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
    wanted = [n for n in names if SEGMENT_RE.match(n) or n in (CHECKPOINTS, PUBLIC_KEY, VKEY)]
    blobs = _cat_files(repo, [f"{ref}:{rel}/{n}" for n in wanted])
    files = dict(zip(wanted, blobs, strict=True))
    data = read_log(set(files), files.__getitem__, f"{ref}:{repo.rel(repo.audit_dir)}")
    if PUBLIC_KEY in files:
        data.public_key = load_public_key(Path(f"{ref}:{repo.rel(repo.audit_dir)}/{PUBLIC_KEY}"), files[PUBLIC_KEY])
    if VKEY in files:
        where = Path(f"{ref}:{repo.rel(repo.audit_dir)}/{VKEY}")
        data.vkey = read_vkey(where, files[VKEY].decode("utf-8", errors="replace"))
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
    # Every log extends the empty one: there is no proof to check from size 0 (verify_consistency refuses it).
    proof = tree.consistency_proof(m, n) if m else []
    try:
        if m:
            verify_consistency(m, n, proof, old_root, tree.root())
    except ProofError as exc:
        first = next((i for i in range(m) if old.lines[i] != data.lines[i]), 0)
        raise CheckFailed(
            f"entry seq {first} ({data.locate(first)}) differs from the one at {ref}: the log is not an append-only "
            f"extension of {ref} ({exc}); history was rewritten"
        ) from None
    _check_key_and_checkpoints_kept(old, data, ref)
    new.warnings += check_deployment_state(repo, data.lines)
    return AgainstResult(ref, m, old_root.hex(), new, len(proof))


def _check_key_and_checkpoints_kept(old: LogData, data: LogData, ref: str) -> None:
    if old.vkey is not None and data.vkey != old.vkey:
        raise CheckFailed(
            f"{data.where}/{VKEY} is {'missing' if data.vkey is None else 'not the one'} committed at {ref}: the "
            "log's key was removed or swapped (re-keying is `mlops audit keygen --force`, reviewed)"
        )
    if old.public_key is not None and (
        data.public_key is None or public_raw(data.public_key) != public_raw(old.public_key)
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
