"""mlops.commands.audit_cmd: its sub-commands, their flags, usage errors, and verify/record on a fresh repo.

The log's hashing, proofs, repair and keys are tested in tests/audit/."""

from __future__ import annotations

import pytest

from mlops.commands import audit_cmd
from tests.commands.support import actions, options, parse, usage_error
from tests.support.cli import run
from tests.support.repo import tree_snapshot

EMPTY_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # sha256 of nothing


def test_help_lists_the_eight_actions_and_their_flags():
    assert actions("audit") == ["verify", "prove", "check-proof", "cosign", "ask-witness", "repair", "keygen", "record"]
    assert options("audit", "verify") == {"--help", "--against", "--witness", "--min-witnesses"}
    assert options("audit", "prove") == {"--help", "--seq", "--output", "--format"}
    assert options("audit", "check-proof") == {"--help", "--public-key", "--log-key"}
    assert options("audit", "cosign") == {"--help", "--key", "--state", "--log-key"}
    assert options("audit", "ask-witness") == {"--help", "--url", "--witness", "--timeout"}
    assert options("audit", "repair") == {"--help", "--truncate-torn-tail"}
    assert options("audit", "keygen") == {"--help", "--force", "--witness"}
    assert options("audit", "record") == {"--help", "--type", "--payload", "--actor"}


def test_each_action_dispatches_to_its_own_function():
    verify = parse("audit", "verify", "--against", "HEAD~1")
    assert (verify.func, verify.against) == (audit_cmd.run_verify, "HEAD~1")
    prove = parse("audit", "prove", "--seq", "3", "-o", "p.json")
    assert (prove.func, prove.seq, prove.output) == (audit_cmd.run_prove, 3, "p.json")
    check = parse("audit", "check-proof", "p.json")
    assert (check.func, check.file, check.public_key) == (audit_cmd.run_check_proof, "p.json", None)
    assert parse("audit", "repair", "--truncate-torn-tail").truncate_torn_tail is True
    assert parse("audit", "repair").func is audit_cmd.run_repair
    assert (parse("audit", "keygen").func, parse("audit", "keygen", "--force").force) == (audit_cmd.run_keygen, True)
    record = parse("audit", "record", "--type", "rollback")
    assert (record.func, record.event_type, record.payload, record.actor) == (
        audit_cmd.run_record,
        "rollback",
        "{}",
        None,
    )


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["audit"], "mlops audit: the following arguments are required: ACTION; see 'mlops audit --help'"),
        (
            ["audit", "prove"],
            "mlops audit prove: the following arguments are required: --seq; see 'mlops audit prove --help'",
        ),
        (
            ["audit", "prove", "--seq", "x"],
            "mlops audit prove: argument --seq: invalid int value: 'x'; see 'mlops audit prove --help'",
        ),
        (
            ["audit", "check-proof"],
            "mlops audit check-proof: the following arguments are required: FILE; see 'mlops audit check-proof --help'",
        ),
        (
            ["audit", "record"],
            "mlops audit record: the following arguments are required: --type; see 'mlops audit record --help'",
        ),
    ],
)
def test_bad_usage_is_one_line_exit_2(argv, line):
    assert usage_error(None, *argv) == line


def test_record_refuses_a_payload_that_is_not_json_and_writes_nothing(repo):
    before = tree_snapshot(repo)
    line = usage_error(repo, "audit", "record", "--type", "rollback", "--payload", "{bad")
    assert line == (
        "error: --payload: is not JSON (Expecting property name enclosed in double quotes); "
        'pass a JSON object, e.g. \'{"note": "x"}\''
    )
    assert tree_snapshot(repo) == before


def test_verify_of_an_empty_log_is_ok_with_the_empty_root(repo, tmp_path, monkeypatch):
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    r = run(repo, "audit", "verify")
    assert r.code == 0, r.err
    assert r.out == f"audit log ok: 0 entries in 0 segments, 0 checkpoints (0 signed), root {EMPTY_ROOT}\n"
    assert outputs.read_text() == f"audit_entries=0\naudit_root={EMPTY_ROOT}\naudit_checkpoints=0\n"


def test_record_then_verify_counts_the_entry(repo):
    r = run(repo, "audit", "record", "--type", "rollback", "--payload", '{"note": "x"}', "--actor", "me")
    assert (r.code, r.out) == (0, "recorded entry seq 0 (rollback)\n")
    verified = run(repo, "audit", "verify")
    assert verified.code == 0 and verified.out.startswith("audit log ok: 1 entries in 1 segments, "), verified.out
