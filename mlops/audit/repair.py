"""`mlops audit repair --truncate-torn-tail`: remove the incomplete final line an interrupted append leaves.

Nothing else is ever repaired: any other failure of verify is tampering or a bad merge, fixed from git.
"""

from __future__ import annotations

import os

from mlops.audit.entries import CHECKPOINTS, LOCK, SEGMENT_RE, STATE_CACHE, parse_line
from mlops.errors import CheckFailed
from mlops.repo import Repo


def repair_torn_tail(repo: Repo) -> list[str]:
    """Remove an incomplete final line from the last segment and from checkpoints.jsonl, nothing else."""
    audit_dir = repo.audit_dir
    if not audit_dir.is_dir():
        return []
    from filelock import FileLock

    done = []
    with FileLock(str(audit_dir / LOCK)):
        segs = sorted(p.name for p in audit_dir.iterdir() if SEGMENT_RE.match(p.name))
        if segs:
            _refuse_to_cut_a_checkpointed_entry(repo, segs[-1])
        for name in ([segs[-1]] if segs else []) + [CHECKPOINTS]:
            path = audit_dir / name
            if not path.exists():
                continue
            data = path.read_bytes()
            keep = data.rfind(b"\n") + 1
            if keep == len(data):
                continue
            with open(path, "r+b") as fh:
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())
            done.append(f"{repo.rel(path)}: removed an incomplete final line of {len(data) - keep} bytes")
        if done:
            (audit_dir / STATE_CACHE).unlink(missing_ok=True)
    return done


def _refuse_to_cut_a_checkpointed_entry(repo: Repo, last_segment: str) -> None:
    """An interrupted append never leaves a checkpointed entry without its newline: such a line was tampered with."""
    audit_dir = repo.audit_dir
    data = (audit_dir / last_segment).read_bytes()
    if not data or data.endswith(b"\n"):
        return
    complete_lines = data.count(b"\n")
    seq = int(SEGMENT_RE.match(last_segment).group(1)) + complete_lines
    where = f"{repo.rel(audit_dir / last_segment)} line {complete_lines + 1}"
    ck_path = audit_dir / CHECKPOINTS
    complete = ck_path.read_bytes().rpartition(b"\n")[0] if ck_path.exists() else b""
    if not complete:
        return
    line_no = complete.count(b"\n") + 1
    try:
        covered = parse_line(complete.rpartition(b"\n")[2])["size"]
    except (ValueError, KeyError, TypeError):
        covered = None
    if not isinstance(covered, int) or isinstance(covered, bool):
        raise CheckFailed(
            f"{repo.rel(ck_path)} line {line_no}: is not a checkpoint, so whether the incomplete {where} was "
            "committed cannot be told; nothing removed; run `mlops audit verify`"
        )
    if seq < covered:
        raise CheckFailed(
            f"{where}: entry seq {seq} has no newline but "
            f"checkpoint #{line_no - 1} covers it (size {covered}), so it was committed and then cut, not torn by a "
            "crash; nothing removed; restore the file from git (`git checkout -- metadata/audit`)"
        )
