"""mlops.commands.retention_cmd: `retention [--dry-run]` wiring, usage errors and an empty repo.

What retention keeps and deletes is tested in tests/test_retention.py."""

from __future__ import annotations

import pytest

from mlops.commands import retention_cmd
from tests.commands.support import options, parse, usage_error
from tests.support.cli import run
from tests.support.repo import tree_snapshot


def test_help_lists_dry_run_and_both_forms_dispatch_to_run():
    assert options("retention") == {"--help", "--dry-run"}
    assert (parse("retention").func, parse("retention").dry_run) == (retention_cmd.run, False)
    assert parse("retention", "--dry-run").dry_run is True


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["retention", "--force"], "mlops: unrecognized arguments: --force; see 'mlops --help'"),
        (
            ["retention", "--dry-run=yes"],
            "mlops retention: argument --dry-run: ignored explicit argument 'yes'; see 'mlops retention --help'",
        ),
        (["retention", "now"], "mlops: unrecognized arguments: now; see 'mlops --help'"),
    ],
)
def test_bad_usage_is_one_line_exit_2(argv, line):
    assert usage_error(None, *argv) == line


@pytest.mark.parametrize(
    ("argv", "out"),
    [
        (["--dry-run"], "retention: 0 model folder(s) would be deleted (dry run: nothing changed)\n"),
        ([], "retention: 0 model folder(s) deleted\n"),
    ],
)
def test_an_empty_repo_has_nothing_to_delete(repo, argv, out):
    before = tree_snapshot(repo)
    r = run(repo, "retention", *argv)
    assert (r.code, r.out, r.err) == (0, out, "")
    assert tree_snapshot(repo) == before
