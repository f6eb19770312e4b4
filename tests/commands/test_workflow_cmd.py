"""mlops workflow dispatch / dispatch-deploy against the fake GitHub server."""

from __future__ import annotations

import json

import pytest

from mlops.commands import workflow_cmd
from mlops.commands.workflow_cmd import parse_inputs
from mlops.errors import BadInput
from tests.commands.support import actions, options, parse, usage_error
from tests.support.cli import run
from tests.support.fake_github import DEFAULT_TOKEN
from tests.support.repo import make_repo

VERSION = "20261122T020000Z-logistic_regression-0123abcd"


def _with_model(tmp_path, deploy_after: bool):
    repo = make_repo(tmp_path / "repo", training={"promotion": {"deploy_after_promotion": deploy_after}})
    folder = repo / "models" / "current"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"version": VERSION}))
    return repo


def _token_env(monkeypatch, fake):
    monkeypatch.setenv("GITHUB_TOKEN", DEFAULT_TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/model")
    monkeypatch.setenv("GITHUB_API_URL", fake.url)


def test_dispatch_deploy_follows_the_config_switch(tmp_path, fake, monkeypatch):
    _token_env(monkeypatch, fake)
    off = run(_with_model(tmp_path / "off", False), "workflow", "dispatch-deploy", "--version", VERSION)
    assert off.code == 0 and "promotion.deploy_after_promotion is false" in off.out
    assert fake.repo().dispatches == []
    monkeypatch.setenv("GITHUB_REF_NAME", "main")
    on = run(_with_model(tmp_path / "on", True), "workflow", "dispatch-deploy", "--version", VERSION)
    assert on.code == 0, on.err
    assert fake.repo().dispatches == [{"workflow": "deploy.yml", "ref": "main",
                                       "inputs": {"mode": "auto", "version": VERSION}}]  # fmt: skip


def test_dispatch_deploy_refuses_an_unknown_version(tmp_path, fake, monkeypatch):
    _token_env(monkeypatch, fake)
    r = run(_with_model(tmp_path, True), "workflow", "dispatch-deploy", "--version", VERSION.replace("0123", "9999"))
    assert r.code == 2
    assert "no such model in models/current, models/candidates or models/archived" in r.err
    assert fake.repo().dispatches == []


def test_dispatch_without_token_is_a_dry_run(tmp_path, fake):
    r = run(_with_model(tmp_path, True), "workflow", "dispatch", "--workflow", "deploy.yml", "--input", "mode=full")
    assert r.code == 0
    assert "dry run (no GITHUB_TOKEN): would dispatch deploy.yml on main with mode=full" in r.out
    assert fake.requests == []


def test_dispatch_of_a_missing_workflow_fails_with_the_fix(tmp_path, fake, monkeypatch):
    _token_env(monkeypatch, fake)
    r = run(_with_model(tmp_path, True), "workflow", "dispatch", "--workflow", "nope.yml")
    assert r.code == 1
    assert "dispatch of nope.yml on main failed: HTTP 404" in r.err and "actions: write" in r.err


def test_inputs_parse_and_refuse_malformed_pairs():
    assert parse_inputs(["mode=canary", "note=a=b"]) == {"mode": "canary", "note": "a=b"}
    with pytest.raises(BadInput, match=r"--input: 'mode' is not KEY=VALUE; write it like --input mode=canary"):
        parse_inputs(["mode"])
    with pytest.raises(BadInput, match="at most 10"):
        parse_inputs([f"k{i}=v" for i in range(11)])


def test_state_outputs_are_empty_before_any_deployment(tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    r = run(_with_model(tmp_path, False), "workflow", "state")
    assert r.code == 0, r.err
    assert out.read_text() == "production=\ncanary=\ncanary_traffic=\nshadow=\nauto_mode=full\n"
    assert "canary: -" in r.out


# The module's own wiring: actions, flags, defaults and usage errors (added when the file moved to tests/commands/).


def test_help_lists_the_three_actions_and_their_flags():
    assert actions("workflow") == ["dispatch", "dispatch-deploy", "state"]
    assert options("workflow", "dispatch") == {"--help", "--workflow", "--input", "--ref"}
    assert options("workflow", "dispatch-deploy") == {"--help", "--version", "--mode", "--workflow", "--ref"}
    assert options("workflow", "state") == {"--help"}


def test_each_action_dispatches_with_its_defaults():
    d = parse("workflow", "dispatch", "--workflow", "deploy.yml", "--input", "a=1", "--input", "b=2")
    assert (d.func, d.workflow, d.input, d.ref) == (workflow_cmd.run_dispatch, "deploy.yml", ["a=1", "b=2"], None)
    dd = parse("workflow", "dispatch-deploy", "--version", VERSION)
    assert (dd.func, dd.version, dd.mode, dd.workflow, dd.ref) == (
        workflow_cmd.run_dispatch_deploy, VERSION, "auto", "deploy.yml", None,
    )  # fmt: skip
    assert parse("workflow", "state").func is workflow_cmd.run_state


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["workflow"], "mlops workflow: the following arguments are required: ACTION; see 'mlops workflow --help'"),
        (
            ["workflow", "dispatch"],
            "mlops workflow dispatch: the following arguments are required: --workflow; "
            "see 'mlops workflow dispatch --help'",
        ),
        (
            ["workflow", "dispatch-deploy", "--version", VERSION, "--mode", "blue"],
            "mlops workflow dispatch-deploy: argument --mode: invalid choice: 'blue' (choose from 'auto', "
            "'shadow', 'canary', 'full'); see 'mlops workflow dispatch-deploy --help'",
        ),
    ],
)
def test_bad_usage_is_one_line_exit_2(argv, line):
    assert usage_error(None, *argv) == line


def test_dispatch_refuses_a_workflow_that_is_not_a_file_name(tmp_path):
    line = usage_error(_with_model(tmp_path, True), "workflow", "dispatch", "--workflow", "../deploy.yml")
    assert line == "error: --workflow: '../deploy.yml' is not a workflow file name; e.g. deploy.yml"
