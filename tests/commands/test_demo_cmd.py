"""mlops.commands.demo_cmd: `demo` flags, defaults and the refusals that come before any step runs.

The whole loop runs once in tests/test_demo.py; nothing here trains."""

from __future__ import annotations

from mlops.commands import demo_cmd
from tests.commands.support import options, parse, usage_error


def test_help_lists_the_flags_and_the_defaults_are_documented_ones():
    assert options("demo") == {"--help", "--workdir", "--rows"}
    args = parse("demo")
    assert (args.func, args.workdir, args.rows) == (demo_cmd.run, ".demo", 24000)
    assert parse("demo", "--workdir", "scratch", "--rows", "500").rows == 500


def test_rows_that_are_not_an_integer_are_one_line_exit_2():
    assert usage_error(None, "demo", "--rows", "many") == (
        "mlops demo: argument --rows: 'many' is not an integer; see 'mlops demo --help'"
    )


def test_an_existing_folder_that_is_not_a_demo_is_refused_untouched(repo, tmp_path):
    work = tmp_path / "mine"
    work.mkdir()
    (work / "notes.txt").write_text("keep me\n")
    assert usage_error(repo, "demo", "--workdir", str(work)) == (
        f"error: {work}: exists and is not a demo folder; pick another --workdir or remove it"
    )
    assert [p.name for p in work.iterdir()] == ["notes.txt"]


def test_rows_below_the_schema_minimum_are_refused_before_the_scratch_repo_is_made(repo, tmp_path):
    work = tmp_path / "scratch"
    assert usage_error(repo, "demo", "--workdir", str(work), "--rows", "0") == (
        "mlops demo: argument --rows: 0 is too few rows for the synthetic set; pass --rows 100 or more; "
        "see 'mlops demo --help'"
    )
    assert not work.exists()
