"""mlops.commands.report_cmd: `report pr` wiring, usage errors and the --pr range check (before any training).

The report itself is tested in tests/test_pr_report.py."""

from __future__ import annotations

import pytest

from mlops.commands import report_cmd
from tests.commands.support import actions, options, parse, usage_error
from tests.support.repo import tree_snapshot


def test_help_lists_pr_and_its_flags():
    assert actions("report") == ["pr"]
    assert options("report", "pr") == {"--help", "--pr", "--model-types", "--no-download", "--track"}


def test_pr_dispatches_with_its_flags():
    args = parse("report", "pr", "--pr", "7", "--model-types", "a,b", "--no-download", "--track")
    assert (args.func, args.pr, args.model_types, args.no_download, args.track) == (
        report_cmd.run_pr, 7, "a,b", True, True,
    )  # fmt: skip
    plain = parse("report", "pr", "--pr", "7")
    assert (plain.model_types, plain.no_download, plain.track) == (None, False, False)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["report"], "mlops report: the following arguments are required: ACTION; see 'mlops report --help'"),
        (
            ["report", "issue"],
            "mlops report: argument ACTION: invalid choice: 'issue' (choose from 'pr'); see 'mlops report --help'",
        ),
        (["report", "pr"], "mlops report pr: the following arguments are required: --pr; see 'mlops report pr --help'"),
        (
            ["report", "pr", "--pr", "#7"],
            "mlops report pr: argument --pr: invalid int value: '#7'; see 'mlops report pr --help'",
        ),
    ],
)
def test_bad_usage_is_one_line_exit_2(argv, line):
    assert usage_error(None, *argv) == line


@pytest.mark.parametrize("number", ["0", "-3"])
def test_a_pr_number_below_1_is_refused_before_training(repo, number):
    before = tree_snapshot(repo)
    assert usage_error(repo, "report", "pr", "--pr", number, "--no-download") == (
        f"error: --pr: {number} is not a pull request number; pass the number, e.g. --pr 42"
    )
    assert tree_snapshot(repo) == before
