"""The audit log: entries, storage, tampering detection via the CLI, signing, git history, locking, kill -9."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops import audit, jsonio
from mlops.audit import append as audit_append
from mlops.cli import main
from mlops.errors import BadInput, CheckFailed
from mlops.merkle import MerkleTree, leaf_hash
from mlops.repo import Repo
from tests.support.cli import run as run_cli
from tests.support.repo import ROOT, make_repo, tree_snapshot

SEG0 = "metadata/audit/entries-000000000000.jsonl"
CKPTS = "metadata/audit/checkpoints.jsonl"


def cli(root: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["--repo", str(root), "audit", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def logged(root: Path, n: int = 5) -> Repo:
    repo = Repo.at(root)
    for i in range(n):
        audit.record(repo, "training_run", {"i": i, "model": f"m{i}"})
    return repo


def lines(root: Path, rel: str = SEG0) -> list[bytes]:
    return (root / rel).read_bytes().split(b"\n")[:-1]


def write_lines(root: Path, items: list[bytes], rel: str = SEG0) -> None:
    (root / rel).write_bytes(b"".join(x + b"\n" for x in items))


# ---------------------------------------------------------------------------------------------- entries


def test_record_stores_exactly_the_canonical_bytes_it_hashes(repo, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    monkeypatch.setenv("GITHUB_SHA", "a" * 40)
    monkeypatch.setenv("MLOPS_NOW", "2026-11-22T06:00:00Z")
    r = Repo.at(repo)
    payload = {"z": [1, 2.5, None, True], "a": {"ü": "naïve ✓", "b": "line\nbreak"}, "when": dt.datetime(2026, 1, 2)}
    entry = audit.record(r, "promotion", payload)
    assert entry == {
        "actor": "octocat",
        "commit": "a" * 40,
        "payload": {
            "a": {"b": "line\nbreak", "ü": "naïve ✓"},
            "when": "2026-01-02T00:00:00Z",
            "z": [1, 2.5, None, True],
        },
        "run_id": "4242",
        "seq": 0,
        "time": "2026-11-22T06:00:00Z",
        "type": "promotion",
    }
    (line,) = lines(repo)
    assert line == jsonio.canonical(entry)  # the hand-spliced envelope is the canonical encoding
    ck = json.loads((repo / CKPTS).read_bytes())
    assert ck["root"] == leaf_hash(line).hex() and ck["size"] == 1 and ck["prev_size"] == 0
    second = audit.record(r, "rollback", {}, actor="alice")
    assert (second["seq"], second["actor"]) == (1, "alice")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=5) | st.integers(), JSON, max_size=6))
def test_fast_payload_encoding_is_the_canonical_encoding(payload):
    assert audit.encode_payload(payload) == jsonio.canonical(payload)


SCALAR = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats()  # NaN and infinity included: the batch must refuse them like jsonio.canonical
    | st.sampled_from([1e-07, 1e16, 1e22, 1.5e-05, 0.0001, -0.0, 5e-324, 1.7976931348623157e308, 1e15])
    | st.text()
    | st.text(alphabet=st.characters(codec=None, categories=["Cs", "Cc", "Zl", "So"]), max_size=3)
    | st.sampled_from(["},{", '"},{"', "\\", "\n", "é✓🙂", "\u2028"])
)
PAYLOADS = st.dictionaries(
    st.text(max_size=5) | st.integers(), JSON | SCALAR | st.lists(st.dictionaries(st.text(max_size=2), SCALAR))
)


@st.composite
def batches(draw):
    """Batches as callers build them: either one flat shape (the columnar path) or anything (the other paths)."""
    if draw(st.booleans()):
        keys = draw(st.lists(st.text(max_size=6) | st.integers(-3, 3), min_size=1, max_size=5, unique=True))
        rows = draw(st.lists(st.tuples(*[SCALAR] * len(keys)), min_size=1, max_size=8))
        payloads = [dict(zip(keys, row, strict=True)) for row in rows]
    else:
        payloads = draw(st.lists(PAYLOADS, min_size=1, max_size=6))
    return [(draw(st.sampled_from(audit.EVENT_TYPES)), p) for p in payloads]


def _bare_writer(actor: str, run_id: str | None, size: int) -> audit.AuditWriter:
    """A writer that only encodes (no lock, no files): enough to compare its bytes with jsonio.canonical."""
    w = audit.AuditWriter(Repo.at(ROOT))
    w.encoder = audit.EntryEncoder(actor, "f" * 40, run_id)
    w.size = size
    return w


@settings(max_examples=300, deadline=None)
@given(
    batches(),
    st.sampled_from(["ci-bot", "bøt ✓", 'q"uote']),
    st.sampled_from(["12345678901", None]),
    st.integers(0, 10**9),
)
def test_batch_encoding_is_byte_identical_to_jsonio_canonical(events, actor, run_id, size):
    """A batch's lines are exactly jsonio.canonical(entry), or the batch is refused with BadInput."""
    when = "2026-11-22T06:00:00Z"
    w = _bare_writer(actor, run_id, size)
    expected = []
    try:
        for i, (kind, payload) in enumerate(events):
            entry = {"actor": actor, "commit": "f" * 40, "payload": payload, "run_id": run_id, "seq": size + i}
            line = jsonio.canonical({**entry, "time": when, "type": kind})
            assert len(line) <= audit.MAX_ENTRY_BYTES
            expected.append(line)
    except (ValueError, TypeError):  # NaN, infinity, a lone surrogate: refused, nothing encoded
        with pytest.raises(BadInput):
            w.encode(events, time=when)
        return
    assert w.encode(events, time=when) == expected


def test_batch_encoding_of_plain_batches_and_refusals():
    w = _bare_writer("ci-bot", "1", 7)
    when = "2026-11-22T06:00:00Z"
    flat = [("monitoring_run", {"f1": 0.8731, "w": i, "n": "x" * 95, "ok": True, "gone": None}) for i in range(50)]
    nested = [("promotion", {"a": [1, {"b": "c"}], "d": {"e": 1e-07}}), ("rollback", {})]
    # A payload whose text holds "},{" (what a batch encoder splitting on it would have to get right).
    split_marker = [("rollback", {"a": [{}, {}]}), ("rollback", {})]
    for events in (flat, nested, split_marker):
        assert w.encode(events, time=when) == [
            jsonio.canonical(
                {"actor": "ci-bot", "commit": "f" * 40, "payload": p, "run_id": "1", "seq": 7 + i}
                | {"time": when, "type": t}
            )
            for i, (t, p) in enumerate(events)
        ]
    cycle: dict = {}
    cycle["self"] = cycle
    for bad, error in (([("rollback", cycle)], BadInput), ([("rollback", {}, 1)], ValueError), ([7], TypeError)):
        with pytest.raises(error):
            w.encode(bad)


def test_actor_falls_back_to_the_local_user(repo):
    import getpass

    assert audit.record(Repo.at(repo), "archive", {})["actor"] == getpass.getuser()


@pytest.mark.parametrize(
    ("event_type", "payload", "message"),
    [
        ("trained", {}, r"event_type: 'trained' is not an audit event type; use one of: dataset_validated"),
        ("promotion", [1], r"payload: must be a JSON object, got list; pass a dict"),
        ("promotion", {"x": float("nan")}, r"payload: cannot be stored as canonical JSON"),
        ("promotion", {"x": object()}, r"payload: cannot be stored as canonical JSON"),
    ],
)
def test_bad_events_are_refused_before_anything_is_written(repo, event_type, payload, message):
    r = logged(repo, 2)
    before = tree_snapshot(repo)
    with pytest.raises(BadInput, match=message):
        audit.record(r, event_type, payload)
    assert tree_snapshot(repo) == before


def test_oversized_entry_is_refused(repo):
    r = logged(repo, 1)
    before = tree_snapshot(repo)
    with pytest.raises(BadInput, match=r"over the 65536-byte limit; store large evidence in a file"):
        audit.record(r, "promotion", {"blob": "x" * 70000})
    assert tree_snapshot(repo) == before


def test_segments_roll_at_the_size_bound_and_verify(repo, monkeypatch, capsys):
    monkeypatch.setattr(audit_append, "SEGMENT_BYTES", 600)  # the writer reads its own module's setting
    r = logged(repo, 12)
    with audit.writer(r) as w:
        w.append_batch([("monitoring_run", {"n": i}) for i in range(30)])
    segs = sorted(p.name for p in r.audit_dir.glob("entries-*.jsonl"))
    assert len(segs) > 4
    assert all((r.audit_dir / s).stat().st_size <= 600 for s in segs)
    rc, out, _ = cli(repo, "verify", capsys=capsys)
    assert rc == 0 and f"audit log ok: 42 entries in {len(segs)} segments, 13 checkpoints" in out
    # A whole segment removed is named.
    (r.audit_dir / segs[2]).unlink()
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and re.search(rf"{segs[3]}: segment starts at seq \d+ but the segments before it hold", err)


def test_bulk_and_single_appends_build_the_same_log(tmp_path):
    a, b = Repo.at(make_repo(tmp_path / "a")), Repo.at(make_repo(tmp_path / "b"))
    os.environ["MLOPS_NOW"] = "2026-11-22T06:00:00Z"
    try:
        for i in range(9):
            audit.record(a, "monitoring_run", {"i": i}, actor="x")
        with audit.writer(b, actor="x") as w:
            w.append_batch([("monitoring_run", {"i": i}) for i in range(9)])
    finally:
        del os.environ["MLOPS_NOW"]
    assert (a.audit_dir / "entries-000000000000.jsonl").read_bytes() == (
        b.audit_dir / "entries-000000000000.jsonl"
    ).read_bytes()
    assert audit.verify(a).root == audit.verify(b).root
    for line in lines(b.root, SEG0):
        assert line == jsonio.canonical(json.loads(line))


# ---------------------------------------------------------------------------------------------- tampering


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


@pytest.mark.parametrize(
    ("forge", "message"),
    [
        (lambda ck: {**ck, "root": "0" * 64}, r"line 3 \(checkpoint #2\): root 0000000000000000… does not match"),
        (lambda ck: {**ck, "prev_root": "1" * 64}, r"\(checkpoint #2\): names previous checkpoint size 2 root 1111"),
        (lambda ck: {**ck, "size": 9}, r"\(checkpoint #2\): covers 9 entries but the log holds only 5"),
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


# ---------------------------------------------------------------------------------------------- signing


@pytest.fixture
def signed(repo, monkeypatch, capsys):
    rc, out, _ = cli(repo, "keygen", capsys=capsys)
    assert rc == 0 and (repo / "metadata/audit/checkpoint-key.pub").read_text().startswith("-----BEGIN PUBLIC KEY")
    monkeypatch.setenv(audit.SIGNING_KEY_ENV, out.strip())
    return repo


def test_signed_checkpoints_verify_and_forgeries_do_not(signed, monkeypatch, capsys):
    repo = signed
    logged(repo, 3)
    rc, out, _ = cli(repo, "verify", capsys=capsys)
    assert rc == 0 and "3 checkpoints (3 signed)" in out
    # A forger who rewrites an entry and recomputes the checkpoints, signing with another key, is caught.
    other, _ = audit.keygen(Repo.at(make_repo(repo.parent / "other")))
    items = lines(repo)
    items[1] = items[1].replace(b'"m1"', b'"mX"')
    tree = MerkleTree()
    tree.extend(items)
    cks, prev = [], (0, tree.root(0).hex())
    for size in (1, 2, 3):
        ck = {"prev_root": prev[1], "prev_size": prev[0], "root": tree.root(size).hex(), "size": size}
        ck = audit.sign_checkpoint({**ck, "time": "2026-11-22T06:00:00Z"}, audit.load_private_key(other))
        cks.append(jsonio.canonical(ck))
        prev = (size, ck["root"])
    write_lines(repo, items)
    write_lines(repo, cks, CKPTS)
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and "(checkpoint #0): is signed by key" in err and "not by the committed checkpoint-key.pub" in err


def test_unsigned_checkpoint_after_a_signed_one_and_bad_signature_fail(signed, monkeypatch, capsys):
    repo = signed
    logged(repo, 2)
    cks = lines(repo, CKPTS)
    unsigned = json.loads(cks[1])
    del unsigned["signature"], unsigned["key_id"]
    write_lines(repo, [cks[0], jsonio.canonical(unsigned)], CKPTS)
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and "(checkpoint #1): is not signed; a signed checkpoint precedes it" in err
    bad = json.loads(cks[1])
    bad["signature"] = bad["signature"][:-4] + ("AAA=" if not bad["signature"].endswith("AAA=") else "BBB=")
    write_lines(repo, [cks[0], jsonio.canonical(bad)], CKPTS)
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and "(checkpoint #1): has a signature that does not verify" in err


def test_keygen_on_an_existing_log_signs_its_head_and_stripped_signatures_fail(repo, monkeypatch, capsys):
    logged(repo, 3)
    rc, out, _ = cli(repo, "keygen", capsys=capsys)
    assert rc == 0
    rc, verified, _ = cli(repo, "verify", capsys=capsys)
    assert rc == 0 and "3 entries in 1 segments, 4 checkpoints (1 signed)" in verified
    monkeypatch.setenv(audit.SIGNING_KEY_ENV, out.strip())
    audit.record(Repo.at(repo), "promotion", {})
    stripped = []
    for line in lines(repo, CKPTS):
        ck = json.loads(line)
        ck.pop("signature", None)
        ck.pop("key_id", None)
        stripped.append(jsonio.canonical(ck))
    write_lines(repo, stripped, CKPTS)
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and "line 5 (checkpoint #4): the latest checkpoint is not signed but checkpoint-key.pub" in err


def test_committed_key_requires_a_signing_key(signed, monkeypatch):
    repo = signed
    monkeypatch.delenv(audit.SIGNING_KEY_ENV)
    before = tree_snapshot(repo)
    with pytest.raises(BadInput, match=r"MLOPS_AUDIT_SIGNING_KEY: is not set, but checkpoint-key.pub is committed"):
        audit.record(Repo.at(repo), "promotion", {})
    monkeypatch.setenv(audit.SIGNING_KEY_ENV, "not-a-key")
    with pytest.raises(BadInput, match=r"MLOPS_AUDIT_SIGNING_KEY: is not an ed25519 private key"):
        audit.record(Repo.at(repo), "promotion", {})
    other, _ = audit.keygen(Repo.at(make_repo(repo.parent / "other")))
    monkeypatch.setenv(audit.SIGNING_KEY_ENV, other)
    with pytest.raises(BadInput, match=r"does not match the committed checkpoint-key.pub"):
        audit.record(Repo.at(repo), "promotion", {})
    assert tree_snapshot(repo) == before


def test_keygen_refuses_to_replace_a_key(signed, capsys):
    rc, _, err = cli(signed, "keygen", capsys=capsys)
    assert rc == 2 and "checkpoint-key.pub: already exists; pass --force" in err


# ---------------------------------------------------------------------------------------------- proofs


def test_prove_and_check_proof_round_trip_and_tampering(signed, capsys, tmp_path):
    repo = signed
    logged(repo, 7)
    rc, out, _ = cli(repo, "prove", "--seq", "3", capsys=capsys)
    assert rc == 0
    doc = json.loads(out)
    assert doc["tree_size"] == 7 and len(doc["proof"]) == 3  # ceil(log2 7)
    path = tmp_path / "proof.json"
    path.write_text(out)
    rc, out, _ = cli(repo, "check-proof", str(path), capsys=capsys)
    assert rc == 0 and "proof ok: entry seq 3 is in the tree of size 7" in out and "signature: valid" in out
    for mutate, message in [
        (lambda d: d.update(entry=d["entry"].replace('"m3"', '"m4"')), "entry seq 3 is not included"),
        (lambda d: d.update(seq=4), "has seq 3 where seq 4 belongs"),
        (lambda d: d["proof"].pop(), "proof is shorter"),
        (lambda d: d["proof"].__setitem__(0, "f" * 64), "computed root does not match"),
        (lambda d: d["checkpoint"].update(root="0" * 64), "computed root does not match"),
        (lambda d: d["checkpoint"].update(time="2026-11-23T00:00:00Z"), "signature that does not verify"),
        (lambda d: d.update(tree_size=8), "tree_size 8 is not the checkpoint's size 7"),
    ]:
        bad = json.loads(path.read_text())
        mutate(bad)
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        rc, _, err = cli(repo, "check-proof", str(tmp_path / "bad.json"), capsys=capsys)
        assert rc == 1 and message in err, (message, err)
    (tmp_path / "junk.json").write_text('{"format": "x"}')
    rc, _, err = cli(repo, "check-proof", str(tmp_path / "junk.json"), capsys=capsys)
    assert rc == 2 and "is not an mlops-audit-inclusion-proof/v1 document" in err
    rc, _, err = cli(repo, "prove", "--seq", "7", capsys=capsys)
    assert rc == 2 and "--seq: 7 is not covered by the latest checkpoint (size 7); use 0..6" in err


def test_prove_on_an_empty_log_and_repair_without_a_flag_are_bad_usage(repo, capsys):
    before = tree_snapshot(repo)
    rc, _, err = cli(repo, "prove", "--seq", "0", capsys=capsys)
    assert rc == 2 and err == (
        "error: --seq: 0 is not covered: metadata/audit/checkpoints.jsonl holds no checkpoint yet; "
        "record an event first\n"
    )
    rc, _, err = cli(repo, "repair", capsys=capsys)
    assert rc == 2 and err == "error: mlops audit repair: no repair chosen; pass --truncate-torn-tail\n"
    assert tree_snapshot(repo) == before


def test_check_proof_of_a_directory_is_one_line_and_exit_2(repo, tmp_path):
    logged(repo, 2)
    folder = tmp_path / "proof.json"
    folder.mkdir()
    before = tree_snapshot(repo)
    r = run_cli(repo, "audit", "check-proof", str(folder))
    assert (r.code, r.out) == (2, "")
    assert r.err == f"error: {folder}: is a directory, not a proof file; name the file itself\n"
    assert tree_snapshot(repo) == before


def test_prove_to_an_existing_directory_is_one_line_and_exit_2_and_writes_nothing(repo):
    logged(repo, 2)
    folder = repo / "metadata" / "proofs"
    folder.mkdir()
    (folder / "kept.json").write_text("{}\n")
    before = tree_snapshot(repo)
    r = run_cli(repo, "audit", "prove", "--seq", "1", "-o", str(folder))
    assert (r.code, r.out) == (2, "")
    assert r.err == f"error: --output: {folder} is a directory; name the file to write the proof to\n"
    assert tree_snapshot(repo) == before and sorted(p.name for p in folder.iterdir()) == ["kept.json"]
    r = run_cli(repo, "audit", "prove", "--seq", "1", "-o", str(folder / "kept.json" / "proof.json"))
    assert r.code == 2 and r.err.count("\n") == 1 and "kept.json is a file, so" in r.err
    assert tree_snapshot(repo) == before


def test_every_inclusion_proof_of_a_log_verifies(repo):
    r = logged(repo, 11)
    for seq in range(11):
        res = audit.check_proof(audit.prove(r, seq))
        assert res["seq"] == seq and res["signature"] == "unsigned"


# ---------------------------------------------------------------------------------------------- git history


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        check=True,
        capture_output=True,
    )


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


# ---------------------------------------------------------------------------------------------- crashes


def test_entry_without_checkpoint_verifies_and_is_checkpointed_next(repo, capsys):
    r = logged(repo, 2)
    with audit.writer(r) as w:
        w.append_lines(w.encode([("alert_opened", {"x": 1})]))  # then "crash" before the checkpoint
    rc, out, err = cli(repo, "verify", capsys=capsys)
    assert rc == 0 and "1 entries after the latest checkpoint" in err
    audit.record(r, "alert_closed", {})
    res = audit.verify(r)
    assert (res.entries, res.checkpoints, res.unchecked_tail) == (4, 3, 0)


def test_torn_tail_is_named_and_repaired(repo, capsys):
    r = logged(repo, 3)
    good = (repo / SEG0).read_bytes()
    (repo / SEG0).write_bytes(good + b'{"actor":"ro')
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1
    assert f"{SEG0} line 4: the final entry (seq 3) is incomplete (12 bytes without a newline" in err
    assert "run `mlops audit repair --truncate-torn-tail` to remove only that incomplete line" in err
    with pytest.raises(
        CheckFailed, match=r"line 4: the final entry is incomplete .*mlops audit repair --truncate-torn-tail"
    ):
        audit.record(r, "promotion", {})
    rc, out, _ = cli(repo, "repair", "--truncate-torn-tail", capsys=capsys)
    assert rc == 0 and f"{SEG0}: removed an incomplete final line of 12 bytes" in out
    assert (repo / SEG0).read_bytes() == good
    assert cli(repo, "verify", capsys=capsys)[0] == 0
    rc, out, _ = cli(repo, "repair", "--truncate-torn-tail", capsys=capsys)
    assert "nothing to repair" in out


def test_repair_refuses_to_cut_a_checkpointed_entry_whose_newline_was_removed(repo, capsys):
    logged(repo, 3)
    (repo / SEG0).write_bytes((repo / SEG0).read_bytes()[:-1])  # not a crash: the entry is covered by checkpoint #2
    before = tree_snapshot(repo)
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and "(checkpoint #2): covers 3 entries but the log holds only 2" in err
    assert "repair" not in err  # the torn-tail advice is only for an append that was interrupted
    rc, out, err = cli(repo, "repair", "--truncate-torn-tail", capsys=capsys)
    assert rc == 1 and out == ""
    assert err == (
        f"error: {SEG0} line 3: entry seq 2 has no newline but checkpoint #2 covers it (size 3), so it was committed "
        "and then cut, not torn by a crash; nothing removed; "
        "restore the file from git (`git checkout -- metadata/audit`)\n"
    )
    assert tree_snapshot(repo) == before


def test_torn_checkpoint_is_named_and_repaired(repo, capsys):
    logged(repo, 2)
    with open(repo / CKPTS, "ab") as fh:
        fh.write(b'{"prev_root":"ab')
    rc, _, err = cli(repo, "verify", capsys=capsys)
    assert rc == 1 and f"{CKPTS} line 3: the final checkpoint is incomplete (16 bytes" in err
    assert cli(repo, "repair", "--truncate-torn-tail", capsys=capsys)[0] == 0
    assert cli(repo, "verify", capsys=capsys)[0] == 0


def test_stale_state_cache_is_not_trusted(repo):
    r = logged(repo, 3)
    cache = r.audit_dir / audit.STATE_CACHE
    cache.write_text(json.dumps({"size": 3, "peaks": ["00" * 32, "11" * 32]}))
    audit.record(r, "promotion", {})
    cache.write_text("garbage")
    audit.record(r, "promotion", {})
    assert audit.verify(r).entries == 5


def test_a_crash_at_every_byte_of_an_append_leaves_a_verifiable_or_repairable_log(repo, monkeypatch):
    """Emulate a kill after each possible number of bytes of one record() reached the disk."""
    monkeypatch.setenv("GITHUB_SHA", "c" * 40)
    r = logged(repo, 3)
    seg, ck = repo / SEG0, repo / CKPTS
    seg0, ck0 = seg.read_bytes(), ck.read_bytes()
    audit.record(r, "promotion", {"x": "y" * 40})
    seg1, ck1 = seg.read_bytes(), ck.read_bytes()
    states = [(seg1[:n], ck0) for n in range(len(seg0), len(seg1) + 1)]
    states += [(seg1, ck1[:n]) for n in range(len(ck0) + 1, len(ck1) + 1)]
    for i, (seg_bytes, ck_bytes) in enumerate(states):
        seg.write_bytes(seg_bytes)
        ck.write_bytes(ck_bytes)
        try:
            audit.verify(r)
        except CheckFailed as exc:
            assert re.search(
                r"the final (entry|checkpoint) .*is incomplete.*`mlops audit repair --truncate-torn-tail`", str(exc)
            )
            audit.repair_torn_tail(r)
        res = audit.verify(r)
        stored = audit.read_dir(r.audit_dir).lines
        assert stored[:3] == seg0.split(b"\n")[:3]  # committed entries survive every crash point
        assert res.entries == (4 if seg_bytes == seg1 else 3)
        if i % 25 == 0:  # and the log stays appendable
            audit.record(r, "rollback", {})
            assert audit.verify(r).entries == res.entries + 1


def _child_appends(root: str, ack_fd: int, seed: int) -> None:
    try:
        rng = random.Random(seed)
        audit_append.SEGMENT_BYTES = 50_000  # roll segments often so kills land mid-roll too
        os.environ["GITHUB_SHA"] = "c" * 40  # as in Actions: no git subprocess, so kills land in the writes
        repo = Repo.at(root)
        i = 0
        while True:
            pad = "x" * rng.choice([0, 40, 300, 8_000])
            entry = audit.record(repo, "monitoring_run", {"k": f"{seed}-{i}", "pad": pad})
            os.write(ack_fd, f"{entry['seq']} {seed}-{i}\n".encode())
            i += 1
    finally:
        os._exit(0)


def test_kill_9_at_random_points_never_loses_a_committed_entry(repo):
    """Fork a writer, SIGKILL it at a random instant, verify (repairing only a torn tail), 120 times."""
    import filelock  # noqa: F401 - imported before forking so the child starts appending at once

    rng = random.Random(1234)
    acked: dict[int, str] = {}
    torn_seen = 0
    for round_no in range(120):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            os.close(read_fd)
            _child_appends(str(repo), write_fd, round_no)
        os.close(write_fd)
        # Wait for 0-3 acknowledged appends (so a loaded machine still kills mid-stream), then a random instant.
        buf, target, deadline = b"", rng.randrange(4), time.monotonic() + 60
        while buf.count(b"\n") < target and time.monotonic() < deadline:
            if select.select([read_fd], [], [], 1.0)[0]:
                chunk = os.read(read_fd, 65536)
                if not chunk:
                    break
                buf += chunk
        time.sleep(rng.uniform(0.0, 0.006))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        with os.fdopen(read_fd, "rb") as fh:
            buf += fh.read()
        for line in buf.decode().splitlines():
            seq, key = line.split()
            acked[int(seq)] = key
        try:
            audit.verify(Repo.at(repo))
        except CheckFailed as exc:
            # The only acceptable failure: an incomplete final line, named with the repair command.
            assert re.search(
                r"the final (entry|checkpoint) .*is incomplete.*mlops audit repair --truncate-torn-tail", str(exc)
            )
            torn_seen += 1
            audit.repair_torn_tail(Repo.at(repo))
        res = audit.verify(Repo.at(repo))
        stored = [json.loads(x) for x in audit.read_dir(repo / "metadata/audit").lines]
        assert res.entries == len(stored)
        for seq, key in acked.items():
            assert stored[seq]["payload"]["k"] == key, f"committed entry {seq} lost in round {round_no}"
    assert len(acked) >= 120  # enough appends really happened for the kills to land mid-append
    print(f"{len(acked)} acknowledged entries, {torn_seen} torn tails repaired")


def test_two_processes_appending_at_once_do_not_corrupt_the_log(repo, tmp_path):
    go = tmp_path / "go"
    code = (
        "import os, sys, time; from mlops import audit; from mlops.repo import Repo\n"
        "r = Repo.at(sys.argv[1]); open(sys.argv[3] + sys.argv[2], 'w').close()\n"
        "while not os.path.exists(sys.argv[3]): time.sleep(0.001)\n"  # both start appending together
        "for i in range(60): audit.record(r, 'monitoring_run', {'w': sys.argv[2], 'i': i})\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GITHUB_SHA": "d" * 40}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(repo), w, str(go)], env=env) for w in ("a", "b")]
    deadline = time.monotonic() + 60
    while not all(Path(f"{go}{w}").exists() for w in "ab") and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    res = audit.verify(Repo.at(repo))
    assert (res.entries, res.checkpoints, res.unchecked_tail) == (120, 120, 0)
    stored = [json.loads(x) for x in audit.read_dir(repo / "metadata/audit").lines]
    assert [e["seq"] for e in stored] == list(range(120))
    for w in ("a", "b"):
        assert [e["payload"]["i"] for e in stored if e["payload"]["w"] == w] == list(range(60))
    # The appends really interleaved (lock handover is not fair, so typically a handful of turns, not 120).
    owners = [e["payload"]["w"] for e in stored]
    assert sum(a != b for a, b in zip(owners, owners[1:], strict=False)) >= 2


def test_removing_the_public_key_does_not_turn_signing_off(tmp_path, monkeypatch, capsys):
    root = make_repo(tmp_path / "g", git=True)
    r = logged(root, 3)
    rc, key, _ = cli(root, "keygen", capsys=capsys)
    assert rc == 0
    git(root, "add", "metadata")
    git(root, "commit", "-qm", "log and key")
    (root / "metadata/audit/checkpoint-key.pub").unlink()  # then append unsigned, as an attacker without the key
    monkeypatch.delenv(audit.SIGNING_KEY_ENV, raising=False)
    audit.record(r, "promotion", {"model_version": "evil"})
    rc, _, err = cli(root, "verify", capsys=capsys)
    assert rc == 1 and "is not signed but a signed checkpoint precedes it (a signing downgrade" in err
    rc, _, err = cli(root, "verify", "--against", "HEAD", capsys=capsys)
    assert rc == 1 and "signing downgrade" in err
    # the key file alone removed (no new entry) still breaks the append-only check against the commit
    git(root, "checkout", "--", "metadata")
    (root / "metadata/audit/checkpoint-key.pub").unlink()
    rc, _, err = cli(root, "verify", "--against", "HEAD", capsys=capsys)
    assert rc == 1 and "checkpoint-key.pub is missing committed at HEAD" in err


def test_a_genuine_proof_checks_after_keygen_re_signed_its_tree_head(repo, monkeypatch, capsys, tmp_path):
    logged(repo, 3)
    rc, key, _ = cli(repo, "keygen", capsys=capsys)  # a second, signed checkpoint of size 3
    monkeypatch.setenv(audit.SIGNING_KEY_ENV, key.strip())
    rc, out, _ = cli(repo, "prove", "--seq", "1", capsys=capsys)
    assert rc == 0 and json.loads(out)["checkpoint"]["signature"]
    path = tmp_path / "proof.json"
    path.write_text(out)
    rc, out, err = cli(repo, "check-proof", str(path), capsys=capsys)
    assert rc == 0 and "proof ok" in out and "matches checkpoint #3" in out, err
