"""mlops.commands.config_cmd: `config check` wiring, usage errors and its step summary.

What the check accepts and refuses is tested in tests/test_config.py."""

from __future__ import annotations

import pytest

from mlops.commands import config_cmd
from tests.commands.support import actions, options, parse, usage_error
from tests.support.cli import run

FILES = ("alerts", "dataset", "deployment", "gitops", "model-card", "monitoring", "store", "training",
         "training-schedule", "validation")  # fmt: skip


def test_help_lists_check_alone():
    assert actions("config") == ["check"]
    assert options("config", "check") == {"--help"}
    assert parse("config", "check").func is config_cmd.run_check


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["config"], "mlops config: the following arguments are required: ACTION; see 'mlops config --help'"),
        (
            ["config", "show"],
            "mlops config: argument ACTION: invalid choice: 'show' (choose from 'check'); see 'mlops config --help'",
        ),
        (["config", "check", "--all"], "mlops: unrecognized arguments: --all; see 'mlops --help'"),
    ],
)
def test_bad_usage_is_one_line_exit_2(argv, line):
    assert usage_error(None, *argv) == line


def test_check_on_a_fresh_repo_names_every_file_and_writes_the_summary(repo, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    r = run(repo, "config", "check")
    assert (r.code, r.err) == (0, "")
    assert r.out == "config ok: " + ", ".join(f"config/{name}.json" for name in FILES) + "\n"
    text = summary.read_text()
    assert text.startswith("### Config\n")
    assert all(f"| config/{name}.json | valid |" in text for name in FILES), text
