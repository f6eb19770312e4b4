"""Entry lines (mlops/audit/entries.py): canonical bytes, batches, bad events refused before any write."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops import audit, jsonio
from mlops.errors import BadInput
from mlops.merkle import leaf_hash
from mlops.repo import Repo
from tests.audit.support import CKPTS, lines, logged
from tests.support.repo import ROOT, tree_snapshot


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
