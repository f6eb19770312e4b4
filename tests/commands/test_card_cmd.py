"""mlops.commands.card_cmd: `card build|render|check`, `lineage` and `reproduce` wiring, usage errors, and
`card check --all` / `card render --all` with no cards. Cards themselves are tested in tests/test_cards.py."""

from __future__ import annotations

import pytest

from mlops.commands import card_cmd
from tests.commands.support import actions, options, parse, usage_error
from tests.support.cli import run
from tests.support.repo import tree_snapshot

NOPE = "20990101T000000Z-nope-00000000"


def test_help_lists_the_card_actions_and_the_lineage_and_reproduce_flags():
    assert actions("card") == ["build", "render", "check"]
    for action in ("build", "render", "check"):
        assert options("card", action) == {"--help", "--all"}
    assert options("lineage") == {"--help", "--proof-out", "--json"}
    assert options("reproduce") == {"--help", "--keep", "--json"}


def test_each_command_dispatches_to_its_own_function():
    build = parse("card", "build", "--all")
    assert (build.func, build.versions, build.all) == (card_cmd.run_build, [], True)
    check = parse("card", "check", "v1", "v2")
    assert (check.func, check.versions, check.all) == (card_cmd.run_check, ["v1", "v2"], False)
    assert parse("card", "render", "v1").func is card_cmd.run_render
    lineage = parse("lineage", "v1", "--proof-out", "p.json", "--json")
    assert (lineage.func, lineage.version, lineage.proof_out, lineage.json) == (
        card_cmd.run_lineage,
        "v1",
        "p.json",
        True,
    )
    reproduce = parse("reproduce", "v1", "--keep", "scratch")
    assert (reproduce.func, reproduce.version, reproduce.keep, reproduce.json) == (
        card_cmd.run_reproduce, "v1", "scratch", False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["card"], "mlops card: the following arguments are required: ACTION; see 'mlops card --help'"),
        (
            ["card", "show"],
            "mlops card: argument ACTION: invalid choice: 'show' (choose from 'build', 'render', 'check'); "
            "see 'mlops card --help'",
        ),
        (["lineage"], "mlops lineage: the following arguments are required: VERSION; see 'mlops lineage --help'"),
        (
            ["reproduce"],
            "mlops reproduce: the following arguments are required: VERSION; see 'mlops reproduce --help'",
        ),
    ],
)
def test_bad_usage_is_one_line_exit_2(argv, line):
    assert usage_error(None, *argv) == line


def test_lineage_of_an_unknown_version_is_one_line_exit_2(repo):
    assert usage_error(repo, "lineage", NOPE) == (
        f"error: version {NOPE}: no such model in models/current, models/candidates or models/archived; "
        "list them with `ls models/candidates models/archived` or `cat models/current/manifest.json`"
    )


def test_check_all_with_no_cards_is_ok(repo, tmp_path, monkeypatch):
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    r = run(repo, "card", "check", "--all")
    assert (r.code, r.out, r.err) == (0, "cards ok: 0 card(s) match their JSON\n", "")
    assert outputs.read_text() == "cards_checked=0\n"


def test_render_all_with_no_cards_prints_nothing_and_writes_nothing(repo):
    before = tree_snapshot(repo)
    r = run(repo, "card", "render", "--all")
    assert (r.code, r.out, r.err) == (0, "", "")
    assert tree_snapshot(repo) == before
