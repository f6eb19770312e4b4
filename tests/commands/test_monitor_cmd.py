"""mlops.commands.monitor_cmd: `monitor` and `simulate-traffic` wiring, defaults, usage errors, and the refusals
on a repo with no model. Number ranges of simulate-traffic are tested in tests/test_traffic.py, monitoring
itself in tests/test_monitor.py."""

from __future__ import annotations

import pytest

from mlops.commands import monitor_cmd
from tests.commands.support import options, parse, usage_error
from tests.support.repo import tree_snapshot


def test_help_lists_every_flag():
    assert options("monitor") == {"--help", "--since", "--until", "--metrics-file"}
    assert options("simulate-traffic") == {
        "--help", "--rows", "--shift", "--features", "--seed", "--label-noise", "--hours", "--until", "--format",
        "--no-feedback",
    }  # fmt: skip


def test_each_command_dispatches_with_the_documented_defaults():
    mon = parse("monitor")
    assert (mon.func, mon.since, mon.until) == (monitor_cmd.run_monitor, None, None)
    sim = parse("simulate-traffic", "--rows", "10")
    assert (sim.func, sim.rows, sim.shift, sim.features, sim.seed, sim.label_noise, sim.hours, sim.until) == (
        monitor_cmd.run_simulate, 10, 0.0, 0, 0, 0.0, None, None,
    )  # fmt: skip
    assert (sim.format, sim.no_feedback) == ("jsonl", False)
    full = parse("simulate-traffic", "--rows", "5", "--shift", "-0.5", "--features", "3", "--seed", "4294967295",
                 "--label-noise", "1", "--hours", "8784", "--format", "parquet", "--no-feedback")  # fmt: skip
    assert (full.shift, full.features, full.seed, full.label_noise, full.hours, full.format, full.no_feedback) == (
        -0.5, 3, 4294967295, 1.0, 8784.0, "parquet", True,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["simulate-traffic"],
            "mlops simulate-traffic: the following arguments are required: --rows; see 'mlops simulate-traffic --help'",
        ),
        (
            ["simulate-traffic", "--rows", "ten"],
            "mlops simulate-traffic: argument --rows: 'ten' is not an integer; see 'mlops simulate-traffic --help'",
        ),
        (
            ["simulate-traffic", "--rows", "5", "--format", "csv"],
            "mlops simulate-traffic: argument --format: invalid choice: 'csv' (choose from 'jsonl', 'parquet'); "
            "see 'mlops simulate-traffic --help'",
        ),
        (
            ["simulate-traffic", "--rows", "5", "--shift", "up"],
            "mlops simulate-traffic: argument --shift: 'up' is not a number; see 'mlops simulate-traffic --help'",
        ),
        (["monitor", "--window", "6"], "mlops: unrecognized arguments: --window 6; see 'mlops --help'"),
    ],
)
def test_bad_usage_is_one_line_exit_2(argv, line):
    assert usage_error(None, *argv) == line


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["monitor"], "error: models/current: no current model to monitor; run `mlops train` first"),
        (
            ["monitor", "--since", "2026-11-22T07:00:00Z", "--until", "2026-11-22T06:00:00Z"],
            "error: --since: 2026-11-22T07:00:00Z is not before 2026-11-22T06:00:00Z; "
            "give a --since earlier than --until",
        ),
    ],
)
def test_monitor_refuses_in_one_line_and_changes_nothing(repo, argv, line):
    before = tree_snapshot(repo)
    assert usage_error(repo, *argv) == line
    assert tree_snapshot(repo) == before
