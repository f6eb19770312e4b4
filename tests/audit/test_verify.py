"""`mlops audit verify` (mlops/audit/verify.py): every kind of tampering is named, and --against a git ref."""

from __future__ import annotations

import json
import re

import pytest

from mlops import audit, jsonio
from mlops.audit.verify import state_sha256
from mlops.errors import CheckFailed
from mlops.merkle import MerkleTree
from mlops.repo import Repo
from tests.audit.support import CKPTS, SEG0, cli, git, lines, logged, write_lines
from tests.support.repo import make_repo


def test_intact_log_verifies(repo, capsys):
    logged(repo)
    rc, out, err = cli(repo, "verify", capsys=capsys)
    assert (rc, err) == (0, "")
    assert "audit log ok: 5 entries in 1 segments, 5 checkpoints (0 signed), root " in out


def test_every_single_byte_edit_of_every_entry_is_detected(repo, capsys):
    r = logged(repo, 3)
    path = repo / SEG0
    original = path.read_bytes()
    starts = [0] + [i + 1 for i, c in enumerate(original) if c == 0x0A][:-1]
    for pos in range(len(original)):
        seq = max(i for i, s in enumerate(starts) if s <= pos)
        path.write_bytes(original[:pos] + bytes([original[pos] ^ 0x01]) + original[pos + 1 :])
        # The API behind `mlops audit verify` (the CLI is exercised on a sample below, it is the same call).
        with pytest.raises(CheckFailed) as exc:
            audit.verify(r)
        # The checkpoint covering the edited entry fails first and names that entry by seq.
        named = re.findall(r"entr(?:y|ies) seq (\d+)", str(exc.value))
        assert f"(checkpoint #{seq})" in str(exc.value) and named and int(named[0]) == seq, (pos, str(exc.value))
        if pos % 37 == 0:
            rc, _, err = cli(repo, "verify", capsys=capsys)
            assert rc == 1 and err == f"error: {exc.value}\n"
    path.write_bytes(original)
    assert cli(repo, "verify", capsys=capsys)[0] == 0


def test_payload_edit_names_the_entry_and_its_line(repo, capsys):
    logged(repo)
    items = lines(repo)
    items[2] = items[2].replace(b'"model":"m2"', b'"model":"m9"')  # still canonical JSON
    write_lines(repo, items)
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1
    assert f"{CKPTS} line 3 (checkpoint #2): root" in err
    assert f"entry seq 2 ({SEG0} line 3) were edited, or the checkpoint was forged" in err


def test_whitespace_edit_is_named_as_non_canonical(repo, capsys):
    logged(repo)
    items = lines(repo)
    items[1] = items[1].replace(b'"i":1', b'"i": 1')
    write_lines(repo, items)
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and f"entry seq 1 ({SEG0} line 2) is not in canonical form" in err


def test_deletion_is_detected(repo, capsys):
    logged(repo)
    items = lines(repo)
    del items[1]
    write_lines(repo, items)
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and f"entry seq 1 ({SEG0} line 2) has seq 2 where seq 1 belongs" in err


def test_reordering_is_detected(repo, capsys):
    logged(repo)
    items = lines(repo)
    items[2], items[3] = items[3], items[2]
    write_lines(repo, items)
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and "(checkpoint #2)" in err and f"entry seq 2 ({SEG0} line 3) has seq 3 where seq 2" in err


def test_truncation_is_detected(repo, capsys):
    logged(repo)
    write_lines(repo, lines(repo)[:3])
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1
    assert "(checkpoint #3): covers 4 entries but the log holds only 3; entries seq 3..3 are missing" in err


def test_duplicated_last_entry_is_detected(repo, capsys):
    logged(repo)
    items = lines(repo)
    write_lines(repo, items + items[-1:])
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and f"entry seq 5 ({SEG0} line 6) has seq 4 where seq 5 belongs" in err
    assert "not yet covered by a checkpoint" in err


def _renote(ck: dict, **changes) -> dict:
    """The (unsigned) checkpoint line with `changes` made and its note rewritten to match, as a forger would."""
    import base64

    out = {**ck, **changes}
    origin = ck["note"].split("\n")[0]
    out["note"] = f"{origin}\n{out['size']}\n{base64.b64encode(bytes.fromhex(out['root'])).decode()}\n"
    return out


@pytest.mark.parametrize(
    ("forge", "message"),
    [
        (lambda ck: _renote(ck, root="0" * 64), r"line 3 \(checkpoint #2\): root 0000000000000000… does not match"),
        (
            lambda ck: {**ck, "root": "0" * 64},
            r"\(checkpoint #2\): its note is for size 3 root .*the checkpoint was edited",
        ),
        (lambda ck: {**ck, "prev_root": "1" * 64}, r"\(checkpoint #2\): names previous checkpoint size 2 root 1111"),
        (lambda ck: _renote(ck, size=9), r"\(checkpoint #2\): covers 9 entries but the log holds only 5"),
        (lambda ck: {**ck, "note": ck["note"].replace("\n3\n", "\n03\n")}, r"tree size '03' is not a decimal"),
        (lambda ck: {**ck, "prev_size": 1}, r"\(checkpoint #2\): names previous checkpoint size 1"),
        (lambda ck: {**ck, "time": "yesterday"}, r"\(checkpoint #2\): time 'yesterday' is not YYYY"),
        (lambda ck: {**ck, "extra": 1}, r"\(checkpoint #2\): has keys \['extra'"),
    ],
)
def test_forged_checkpoint_is_detected(repo, capsys, forge, message):
    logged(repo)
    cks = lines(repo, CKPTS)
    cks[2] = jsonio.canonical(forge(json.loads(cks[2])))
    write_lines(repo, cks, CKPTS)
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and re.search(message, err), err


def test_removed_or_non_canonical_checkpoint_is_detected(repo, capsys):
    logged(repo)
    cks = lines(repo, CKPTS)
    write_lines(repo, cks[:1] + cks[2:], CKPTS)
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and "line 2 (checkpoint #1): names previous checkpoint size 2" in err
    write_lines(repo, [cks[0], cks[1].replace(b'"size":2', b'"size": 2')] + cks[2:], CKPTS)
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and "(checkpoint #1): is not in canonical form" in err


def test_verify_against_a_git_ref(tmp_path, capsys):
    root = make_repo(tmp_path / "g", git=True)
    rc, out, _ = cli(root, "verify", "--against", "HEAD", capsys=capsys)
    assert rc == 0 and "append-only since HEAD (0 entries" in out  # no log at the ref yet
    r = logged(root, 3)
    git(root, "add", "metadata")
    git(root, "commit", "-qm", "log")
    for i in range(4):
        audit.record(r, "deployment_change", {"n": i})
    rc, out, _ = cli(root, "verify", "--against", "HEAD", capsys=capsys)
    assert rc == 0 and "append-only since HEAD (3 entries, proof of" in out
    # Rewrite history consistently (entry edited, every checkpoint recomputed): plain verify passes, --against not.
    items = lines(root)
    items[1] = items[1].replace(b'"m1"', b'"mX"')
    write_lines(root, items)
    tree = MerkleTree()
    tree.extend(items)
    cks, prev = [], (0, tree.root(0).hex())
    for size in range(1, 8):
        ck = {"prev_root": prev[1], "prev_size": prev[0], "root": tree.root(size).hex(), "size": size}
        cks.append(jsonio.canonical({**ck, "time": "2026-11-22T06:00:00Z"}))
        prev = (size, ck["root"])
    write_lines(root, cks, CKPTS)
    assert cli(root, "verify", capsys=capsys)[0] == 0
    rc, _, err = cli(root, "verify", "--against", "HEAD", capsys=capsys)
    assert rc == 1 and f"entry seq 1 ({SEG0} line 2) differs from the one at HEAD" in err
    # Dropping entries that were committed is caught too.
    git(root, "checkout", "-q", "--", "metadata")
    write_lines(root, lines(root)[:2])
    write_lines(root, lines(root, CKPTS)[:2], CKPTS)
    rc, _, err = cli(root, "verify", "--against", "HEAD", capsys=capsys)
    assert rc == 1 and "the log at HEAD holds 3 entries but the work tree only 2" in err
    rc, _, err = cli(root, "verify", "--against", "no-such-ref", capsys=capsys)
    assert rc == 2 and "--against: 'no-such-ref' is not a commit in this repository" in err
    # GitHub's `before` of a branch-creating push: nothing to compare with.
    rc, out, _ = cli(root, "verify", "--against", "0" * 40, capsys=capsys)
    assert rc == 0 and "append-only since 0000000000000000000000000000000000000000 (0 entries" in out


def test_rewritten_committed_checkpoint_is_caught_against_a_ref(tmp_path, capsys):
    root = make_repo(tmp_path / "g", git=True)
    logged(root, 3)
    git(root, "add", "metadata")
    git(root, "commit", "-qm", "log")
    cks = lines(root, CKPTS)
    ck = json.loads(cks[2])
    ck["time"] = "2030-01-01T00:00:00Z"
    write_lines(root, cks[:2] + [jsonio.canonical(ck)], CKPTS)
    rc, _, err = cli(root, "verify", "--against", "HEAD", capsys=capsys)
    assert rc == 1 and "line 3 (checkpoint #2) differs from the one at HEAD" in err


# ------------------------------------------------------------------------------- models/deployment.json


def _state(version: str) -> dict:
    return {"format": 1, "production": {"version": version, "model_sha256": "a" * 64, "since": "2026-11-22T06:00:00Z"},
            "canary": None, "shadow": None, "history": [], "updated_at": "2026-11-22T06:00:00Z"}  # fmt: skip


def _deployed(root, state: dict | None, **payload) -> None:
    """Write the state as a deployment would, and its deployment_change event."""
    path = root / "models/deployment.json"
    if state is None:
        path.unlink(missing_ok=True)
    else:
        jsonio.write_json(path, state)
    recorded = {"state_sha256": state_sha256(state)} | payload
    audit.record(Repo.at(root), "deployment_change", recorded)


def test_a_hand_edited_deployment_state_fails_verify_in_one_line(repo, capsys):
    _deployed(repo, _state("v1"))
    _deployed(repo, _state("v2"))
    logged(repo, 2)  # later events of other types do not matter
    rc, out, err = cli(repo, "verify", capsys=capsys)
    assert (rc, err) == (0, "") and "audit log ok" in out
    # Re-serialising the same state (other indentation) is the same state.
    path = repo / "models/deployment.json"
    path.write_text(json.dumps(json.loads(path.read_text())))
    assert cli(repo, "verify", capsys=capsys)[0] == 0
    edited = _state("v2")
    edited["production"]["version"] = "v1"
    jsonio.write_json(path, edited)
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and err.count("\n") == 1, err
    assert err.startswith("error: models/deployment.json: is not the state the audit log recorded: hashes to ")
    assert "recorded by the newest deployment event (audit entry seq 1, deployment_change at " in err
    assert "restore it (`git checkout -- models/deployment.json`)" in err
    path.unlink()
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and "the file is missing, but the newest deployment event" in err
    audit.record(Repo.at(repo), "rollback", {"state_sha256": 5})
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and "audit entry seq 4 (rollback): state_sha256 '5' is not a sha256 or null" in err


def test_a_removed_state_is_recorded_as_null(repo, capsys):
    _deployed(repo, _state("v1"))
    _deployed(repo, None)  # a first deployment rolled back: no state file
    assert cli(repo, "verify", capsys=capsys)[0] == 0
    jsonio.write_json(repo / "models/deployment.json", _state("v1"))
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and "removed the state, but the file exists" in err


def test_a_log_from_before_state_sha256_warns_and_a_downgrade_fails(repo, capsys):
    jsonio.write_json(repo / "models/deployment.json", _state("v1"))
    audit.record(Repo.at(repo), "deployment_change", {"version": "v1"})  # written by an older mlops
    rc, out, err = cli(repo, "verify", capsys=capsys)
    assert rc == 0 and "audit log ok" in out
    assert "models/deployment.json not checked against the audit log: its newest deployment event (seq 0)" in err
    _deployed(repo, _state("v2"))
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert (rc, err) == (0, "")  # once recorded, checked
    audit.record(Repo.at(repo), "rollback", {"to": "v1"})  # by hand, after the log began recording states
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and "audit entry seq 2 (rollback) records no state_sha256 but entry seq 1 before it does" in err


def test_verify_against_a_ref_checks_the_state_too(tmp_path, capsys):
    root = make_repo(tmp_path / "g", git=True)
    _deployed(root, _state("v1"))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "deploy")
    jsonio.write_json(root / "models/deployment.json", _state("v2"))
    rc, _, err = cli(root, "verify", "--against", "HEAD", capsys=capsys)
    assert rc == 1 and "models/deployment.json: is not the state the audit log recorded" in err
