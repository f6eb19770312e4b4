"""Witnesses: cosigning checkpoints (c2sp.org/tlog-cosignature) and requiring cosignatures in verify.

A witness keeps, per origin, the last checkpoint it cosigned (a JSON file in its state folder). Shown a new
checkpoint signed by the log's key and a consistency proof from the size it remembers, it cosigns only if the
proof shows the new tree extends the old one; a different root at the same size, or a smaller tree, is a fork
and is refused. So a repository owner who rewrites history and re-signs cannot get the new head cosigned.

The cosigned note is kept in metadata/audit/checkpoint (WITNESSED): the newest checkpoint's note with the
log's signature and every witness's cosignature line. `verify --witness VKEY --min-witnesses N` requires N
valid cosignatures there, on the newest checkpoint.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import mlops.audit.note as notes
from mlops import jsonio
from mlops.audit.checkpoint import NOTE, note_of, parse_checkpoint
from mlops.audit.entries import CHECKPOINTS, VKEY, WITNESS_KEY_ENV, WITNESSED
from mlops.audit.log import read_dir
from mlops.errors import BadInput, CheckFailed
from mlops.merkle import MerkleTree, ProofError, verify_consistency
from mlops.repo import Repo


@dataclass
class Cosigned:
    note: notes.Note  # the checkpoint with the log's signature and the new cosignature
    size: int
    previous_size: int | None  # what the witness had seen (None: first sight of this origin)


def _state_path(state_dir: Path, origin: str) -> Path:
    return state_dir / f"{hashlib.sha256(origin.encode()).hexdigest()[:32]}.json"


def read_state(state_dir: Path, origin: str) -> dict | None:
    path = _state_path(state_dir, origin)
    if not path.exists():
        return None
    state = jsonio.read_json(path, "witness state", str(path))
    if not isinstance(state, dict) or state.get("origin") != origin or not isinstance(state.get("size"), int):
        raise BadInput(str(path), "is not this witness's state for " + origin, "restore it from the witness's backup")
    return state


def cosign(
    state_dir: Path,
    note_text: str,
    log_key: notes.Verifier,
    proof: list[bytes],
    signer: notes.Signer,
    now: int,
) -> Cosigned:
    """Cosign the checkpoint `note_text` if it extends what this witness last cosigned for its origin.

    BadInput for a malformed note or key; CheckFailed (nothing written) when the log's signature does not
    verify, the tree is smaller than or forks from the one remembered, or the consistency proof fails.
    The check and the new state are one step under the state folder's lock (tlog-witness: otherwise two
    requests could roll the remembered size back).
    """
    from filelock import FileLock

    state_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(state_dir / ".lock")):
        return _cosign_locked(state_dir, note_text, log_key, proof, signer, now)


def _cosign_locked(
    state_dir: Path, note_text: str, log_key: notes.Verifier, proof: list[bytes], signer: notes.Signer, now: int
) -> Cosigned:
    note = notes.parse_note(note_text, "checkpoint")
    notes.open_note(note, [log_key], "checkpoint")
    ck = notes.parse_checkpoint_body(note.text, "checkpoint")
    if ck.origin != log_key.name:
        raise CheckFailed(f"checkpoint: origin {ck.origin!r} is not the log key's name {log_key.name!r}")
    state = read_state(state_dir, ck.origin)
    old_size = None
    if state is not None:
        if state.get("log_key") != log_key.vkey():
            raise CheckFailed(
                f"checkpoint: {ck.origin} is signed by {log_key.vkey()}, but this witness knows it by "
                f"{state.get('log_key')}; refusing to cosign under another key"
            )
        old_size, old_root = state["size"], notes.b64decode(state["root"])
        if ck.size < old_size:
            raise CheckFailed(
                f"checkpoint: {ck.origin} size {ck.size} is smaller than the size {old_size} this witness cosigned; "
                "refusing a rolled-back tree"
            )
        if ck.size == old_size and ck.root != old_root:
            raise CheckFailed(
                f"checkpoint: {ck.origin} size {ck.size} has root {notes.b64(ck.root)}, but this witness cosigned "
                f"root {state['root']} at that size: a fork; refusing"
            )
        if 0 < old_size < ck.size:
            try:
                verify_consistency(old_size, ck.size, proof, old_root, ck.root)
            except ProofError as exc:
                raise CheckFailed(
                    f"checkpoint: {ck.origin} size {ck.size} does not extend the size {old_size} this witness "
                    f"cosigned ({exc}): history was rewritten; refusing"
                ) from None
    line = notes.cosign_note(note.text, signer, now)
    kept = [s for s in note.signatures if (s.name, s.id) != (line.name, line.id)]
    new_state = {"log_key": log_key.vkey(), "origin": ck.origin, "root": notes.b64(ck.root), "size": ck.size}
    jsonio.atomic_write_bytes(_state_path(state_dir, ck.origin), jsonio.canonical(new_state) + b"\n")
    return Cosigned(notes.Note(note.text, [*kept, line]), ck.size, old_size)


def load_witness_key(text: str | None, where: str = "--key") -> notes.Signer:
    """The witness's private key from --key (the key itself, or a file holding it) or $MLOPS_AUDIT_WITNESS_KEY."""
    if not text:
        text, where = os.environ.get(WITNESS_KEY_ENV, ""), WITNESS_KEY_ENV
    if not text.strip():
        raise BadInput(where, "no witness key given", f"pass --key FILE or set {WITNESS_KEY_ENV}")
    path = Path(text)
    if not text.startswith("PRIVATE+KEY+") and path.is_file():
        text, where = path.read_text(encoding="utf-8"), str(path)
    signer = notes.parse_skey(text, where)
    if signer.alg != notes.ALG_COSIGNATURE:
        raise BadInput(where, "is a note key (type 0x01), not a witness key", "create one with keygen --witness NAME")
    return signer


def load_vkeys(values: list[str], where: str) -> list[notes.Verifier]:
    """Verifier keys given on the command line, each the vkey itself or a file holding it."""
    out = []
    for value in values:
        path = Path(value)
        text, at = (
            (path.read_text(encoding="utf-8"), str(path)) if "+" not in value and path.is_file() else (value, where)
        )
        out.append(notes.parse_vkey(text, at))
    return out


def merged(existing: bytes | None, new: notes.Note) -> notes.Note:
    """`new` plus the cosignatures already in metadata/audit/checkpoint for the same checkpoint text."""
    if not existing:
        return new
    try:
        old = notes.parse_note(existing, WITNESSED)
    except BadInput:
        return new
    if old.text != new.text:
        return new
    have = {(s.name, s.id) for s in new.signatures}
    return notes.Note(new.text, [*new.signatures, *(s for s in old.signatures if (s.name, s.id) not in have)])


def check_witnessed(
    witnessed: bytes | None, newest: dict | None, witnesses: list[notes.Verifier], minimum: int, where: str
) -> list[str]:
    """CheckFailed unless `minimum` of `witnesses` validly cosigned the newest checkpoint (in `witnessed`, the
    file metadata/audit/checkpoint); returns the names of the witnesses whose cosignature verified."""
    if any(w.alg != notes.ALG_COSIGNATURE for w in witnesses):
        raise BadInput("--witness", "is a note key (type 0x01), not a witness key (0x04)", "pass a witness's vkey")
    if newest is None or "note" not in newest:
        raise CheckFailed(f"{where}: the log has no C2SP checkpoint yet, so nothing can be cosigned")
    body, _ = note_of(newest, "newest checkpoint")
    if witnessed is None:
        raise CheckFailed(f"{where}: does not exist: no witness has cosigned the newest checkpoint (size {body.size})")
    try:
        note = notes.parse_note(witnessed, where)
    except BadInput as exc:
        raise CheckFailed(str(exc)) from None
    if note.text != body.body():
        seen = notes.parse_checkpoint_body(note.text, where)
        raise CheckFailed(
            f"{where}: is cosigned checkpoint size {seen.size}, not the newest (size {body.size}); ask the "
            "witnesses to cosign again (`mlops audit cosign`)"
        )
    good: list[str] = []
    for w in witnesses:
        try:
            notes.open_note(note, [w], where)
        except CheckFailed as exc:
            if "does not verify" in str(exc):
                raise
            continue
        good.append(w.name)
    if len(good) < minimum:
        names = ", ".join(good) or "none"
        raise CheckFailed(
            f"{where}: {len(good)} of the required {minimum} witness cosignatures verify on the newest checkpoint "
            f"(size {body.size}; valid: {names})"
        )
    return good


def cosign_repo(repo: Repo, key: str | None, state_dir: Path, log_key_text: str | None) -> str:
    """`mlops audit cosign`: act as a witness for this repository's log. The log's side (the newest checkpoint
    and a consistency proof from the size the witness remembers) is read from the checkout; the witness's side
    (cosign()) trusts only its state, the log's key and the proof. Writes metadata/audit/checkpoint."""
    signer = load_witness_key(key)
    data = read_dir(repo.audit_dir, repo.rel(repo.audit_dir))
    if log_key_text:
        log_key = load_vkeys([log_key_text], "--log-key")[0]
        if log_key.alg != notes.ALG_ED25519:
            raise BadInput("--log-key", "is a witness key (type 0x04), not a log key", "pass the log's vkey")
    elif data.vkey is not None:
        log_key = data.vkey
    else:
        raise BadInput("--log-key", f"not given and no {VKEY} is committed", "pass the log's vkey, or run keygen")
    if not data.checkpoint_lines:
        raise BadInput(repo.rel(repo.audit_dir / CHECKPOINTS), "holds no checkpoint", "record an event first")
    k = len(data.checkpoint_lines) - 1
    newest = parse_checkpoint(data.checkpoint_lines[k], f"{data.where}/{CHECKPOINTS} line {k + 1}")
    if NOTE not in newest:
        raise BadInput(f"{data.where}/{CHECKPOINTS} line {k + 1}", "is a legacy checkpoint", "record an event first")
    body, _ = note_of(newest, "newest checkpoint")
    state = read_state(state_dir, body.origin)
    old = state["size"] if state else 0
    proof: list[bytes] = []
    if 0 < old < body.size <= len(data.lines):
        tree = MerkleTree()
        tree.extend(data.lines[: body.size])
        proof = tree.consistency_proof(old, body.size)
    now = int(jsonio.utc_now().timestamp())
    done = cosign(state_dir, newest[NOTE], log_key, proof, signer, now)
    path = repo.audit_dir / WITNESSED
    note = merged(path.read_bytes() if path.is_file() else None, done.note)
    jsonio.atomic_write_bytes(path, note.render().encode("utf-8"))
    seen = "first sight of this log" if done.previous_size is None else f"extends size {done.previous_size}"
    return (
        f"cosigned {body.origin} size {body.size} as {signer.name}+{signer.verifier.id.hex()} ({seen}); wrote "
        f"{repo.rel(path)}"
    )


def ask_witness(repo: Repo, url: str, witnesses: list[notes.Verifier], timeout: float = 30.0) -> str:
    """Ask a witness's c2sp.org/tlog-witness `add-checkpoint` endpoint at `url` to cosign the newest checkpoint,
    and keep its cosignatures (those that verify under `witnesses`) in metadata/audit/checkpoint."""
    if not url.startswith(("https://", "http://")):
        raise BadInput("--url", f"{url!r} is not an http(s) URL", "pass the witness's submission prefix")
    data = read_dir(repo.audit_dir, repo.rel(repo.audit_dir))
    newest = parse_checkpoint(data.checkpoint_lines[-1], "newest checkpoint") if data.checkpoint_lines else None
    if newest is None or NOTE not in newest or note_of(newest, "newest checkpoint")[1] is None:
        raise BadInput(repo.rel(repo.audit_dir / CHECKPOINTS), "has no signed C2SP checkpoint", "run keygen and record")
    body, note = note_of(newest, "newest checkpoint")
    assert note is not None
    tree = MerkleTree()
    tree.extend(data.lines[: body.size])
    old, status, text = 0, 0, ""
    for _ in range(2):  # the witness names the size it last cosigned (409, text/x.tlog.size): retry from there
        proof = tree.consistency_proof(old, body.size) if 0 < old < body.size else []
        request = f"old {old}\n" + "".join(notes.b64(h) + "\n" for h in proof) + "\n" + note.render()
        status, ctype, text = _post(url.rstrip("/") + "/add-checkpoint", request, timeout)
        if status == 409 and ctype.startswith("text/x.tlog.size") and text.strip().isdigit() and old == 0:
            old = int(text.strip())
            if old > body.size:
                raise CheckFailed(f"{url}: the witness has cosigned size {old}, beyond this log's {body.size}")
            continue
        break
    if status != 200:
        raise CheckFailed(f"{url}: the witness refused the checkpoint of size {body.size}: HTTP {status} {text[:200]}")
    try:
        answer = notes.parse_note(note.text + "\n" + text, f"{url} (response)")
        good = notes.open_note(answer, witnesses, f"{url} (response)")
    except BadInput as exc:
        raise CheckFailed(str(exc)) from None
    keys = {(w.name, w.id) for w in good}
    cosigned = notes.Note(note.text, [*note.signatures, *(s for s in answer.signatures if (s.name, s.id) in keys)])
    path = repo.audit_dir / WITNESSED
    jsonio.atomic_write_bytes(path, merged(path.read_bytes() if path.is_file() else None, cosigned).render().encode())
    names = ", ".join(sorted(w.name for w in good))
    return f"{names} cosigned {body.origin} size {body.size}; wrote {repo.rel(path)}"


def _post(url: str, body: str, timeout: float) -> tuple[int, str, str]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=body.encode(), method="POST", headers={"Content-Type": "text/plain"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (ask_witness checks the scheme)
            return resp.status, resp.headers.get("Content-Type", ""), resp.read(65536).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read(65536).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        raise CheckFailed(f"{url}: cannot reach the witness ({exc})") from None
