"""mlops.commands.alerts_cmd: its sub-commands, their flags, usage errors, and flush/dispatch-retrain dry runs.

Delivery, deduplication and the cool-down themselves are tested in tests/test_alerts.py."""

from __future__ import annotations

import pytest

from mlops.commands import alerts_cmd
from tests.commands.support import actions, options, parse, usage_error
from tests.support.cli import run
from tests.support.repo import tree_snapshot


def test_help_lists_the_four_actions_and_their_flags():
    assert actions("alerts") == ["flush", "raise", "resolve", "dispatch-retrain"]
    assert options("alerts", "flush") == {"--help", "--strict"}
    assert options("alerts", "raise") == {"--help", "--from-gate", "--from-json", "--strict"}
    assert options("alerts", "resolve") == {"--help", "--fingerprint", "--reason", "--strict"}
    assert options("alerts", "dispatch-retrain") == {"--help", "--reason", "--force"}


def test_each_action_dispatches_to_its_own_function():
    assert parse("alerts", "flush").func is alerts_cmd.run_flush
    gate = parse("alerts", "raise", "--from-gate", "g.json")
    assert (gate.func, gate.from_gate, gate.from_json) == (alerts_cmd.run_raise, "g.json", None)
    resolve = parse("alerts", "resolve", "--fingerprint", "fp", "--reason", "clean")
    assert (resolve.func, resolve.fingerprint, resolve.reason) == (alerts_cmd.run_resolve, "fp", "clean")
    retrain = parse("alerts", "dispatch-retrain", "--reason", "drift")
    assert (retrain.func, retrain.reason, retrain.force) == (alerts_cmd.run_dispatch_retrain, "drift", False)
    assert parse("alerts", "dispatch-retrain", "--reason", "drift", "--force").force is True


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["alerts"], "mlops alerts: the following arguments are required: ACTION; see 'mlops alerts --help'"),
        (
            ["alerts", "send"],
            "mlops alerts: argument ACTION: invalid choice: 'send' (choose from 'flush', 'raise', 'resolve', "
            "'dispatch-retrain'); see 'mlops alerts --help'",
        ),
        (
            ["alerts", "raise"],
            "mlops alerts raise: one of the arguments --from-gate --from-json is required; "
            "see 'mlops alerts raise --help'",
        ),
        (
            ["alerts", "raise", "--from-gate", "a.json", "--from-json", "b.json"],
            "mlops alerts raise: argument --from-json: not allowed with argument --from-gate; "
            "see 'mlops alerts raise --help'",
        ),
        (
            ["alerts", "resolve", "--fingerprint", "fp"],
            "mlops alerts resolve: the following arguments are required: --reason; see 'mlops alerts resolve --help'",
        ),
        (
            ["alerts", "dispatch-retrain"],
            "mlops alerts dispatch-retrain: the following arguments are required: --reason; "
            "see 'mlops alerts dispatch-retrain --help'",
        ),
    ],
)
def test_bad_usage_is_one_line_exit_2(argv, line):
    assert usage_error(None, *argv) == line


def test_flush_of_an_empty_outbox_says_so_and_changes_nothing(repo, tmp_path, monkeypatch):
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    before = tree_snapshot(repo)
    r = run(repo, "alerts", "flush")
    assert (r.code, r.out) == (0, "outbox: empty\n")
    assert outputs.read_text() == "delivered=0\nfailed=0\nqueued=0\n"
    assert tree_snapshot(repo) == before


def test_dispatch_retrain_without_a_token_is_a_dry_run(repo, tmp_path, monkeypatch):
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    r = run(repo, "alerts", "dispatch-retrain", "--reason", "drift")
    assert (r.code, r.out) == (0, "retrain dry-run: ml-training.yml on main\n")
    assert outputs.read_text() == "retrain_status=dry-run\ndispatched=false\n"
