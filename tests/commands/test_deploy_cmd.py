"""mlops.commands.deploy_cmd: `deploy`, `rollback`, `canary analyze`, `predict` and `serve` wiring, usage errors
and the refusals on a repo with no model. Deployment itself is tested in tests/test_deploy.py and
tests/test_serving.py (which also cover --traffic ranges and the refusals of a live deployment)."""

from __future__ import annotations

import pytest

from mlops.commands import deploy_cmd
from tests.commands.support import actions, options, parse, usage_error
from tests.support.cli import run
from tests.support.repo import tree_snapshot


def test_help_lists_every_command_s_flags():
    assert options("deploy") == {"--help", "--mode", "--version", "--traffic", "--reason"}
    assert "--mode {auto,shadow,canary,full}" in run(None, "deploy", "--help").out
    assert options("rollback") == {"--help", "--to", "--reason"}
    assert actions("canary") == ["analyze"]
    assert options("canary", "analyze") == {"--help", "--apply", "--since"}
    assert options("predict") == {"--help", "--input", "--output"}
    assert options("serve") == {
        "--help", "--host", "--port", "--follow", "--branch", "--interval", "--workdir", "--trust-root",
    }  # fmt: skip


def test_each_command_dispatches_to_its_own_function():
    deploy = parse("deploy", "--mode", "canary", "--traffic", "0.25", "--version", "v2", "--reason", "try")
    assert (deploy.func, deploy.mode, deploy.traffic, deploy.version, deploy.reason) == (
        deploy_cmd.run_deploy, "canary", 0.25, "v2", "try",
    )  # fmt: skip
    rollback = parse("rollback", "--to", "v1")
    assert (rollback.func, rollback.to, rollback.reason) == (deploy_cmd.run_rollback, "v1", None)
    analyze = parse("canary", "analyze", "--apply", "--since", "2026-11-22T06:00:00Z")
    assert (analyze.func, analyze.apply, analyze.since) == (deploy_cmd.run_analyze, True, "2026-11-22T06:00:00Z")
    predict = parse("predict", "--input", "in.csv", "--output", "out.csv")
    assert (predict.func, predict.input, predict.output) == (deploy_cmd.run_predict, "in.csv", "out.csv")
    serve = parse("serve")
    assert (serve.func, serve.host, serve.port) == (deploy_cmd.run_serve, "127.0.0.1", 8000)
    follow = parse("serve", "--follow", "../fork.git", "--branch", "prod", "--interval", "2.5", "--workdir", "w")
    assert (follow.follow, follow.branch, follow.interval, follow.workdir) == ("../fork.git", "prod", 2.5, "w")


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["deploy"], "mlops deploy: the following arguments are required: --mode; see 'mlops deploy --help'"),
        (
            ["deploy", "--mode", "full", "--traffic", "a tenth"],
            "mlops deploy: argument --traffic: 'a tenth' is not a number; give a share like 0.1; "
            "see 'mlops deploy --help'",
        ),
        (
            ["canary", "promote"],
            "mlops canary: argument ACTION: invalid choice: 'promote' (choose from 'analyze'); "
            "see 'mlops canary --help'",
        ),
        (
            ["predict", "--input", "in.csv"],
            "mlops predict: the following arguments are required: --output; see 'mlops predict --help'",
        ),
        (
            ["serve", "--port", "http"],
            "mlops serve: argument --port: 'http' is not an integer; see 'mlops serve --help'",
        ),
    ],
)
def test_bad_usage_is_one_line_exit_2(argv, line):
    assert usage_error(None, *argv) == line


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["deploy", "--mode", "full"],
            "error: --version: no version given and no models/current/; run `mlops train` or pass --version",
        ),
        (
            ["rollback"],
            "error: models/deployment.json: there is no deployment to roll back; "
            "deploy first with `mlops deploy --mode full`",
        ),
        (
            ["canary", "analyze"],
            "error: models/deployment.json: there is no canary to analyze; start one with `mlops deploy --mode canary`",
        ),
    ],
)
def test_with_no_model_each_command_refuses_in_one_line_and_changes_nothing(repo, argv, line):
    before = tree_snapshot(repo)
    assert usage_error(repo, *argv) == line
    assert tree_snapshot(repo) == before


def test_canary_without_an_action_is_one_line_exit_2():
    assert usage_error(None, "canary") == (
        "mlops canary: the following arguments are required: ACTION; see 'mlops canary --help'"
    )


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_a_port_outside_0_65535_is_one_line_exit_2(repo, port):
    assert usage_error(repo, "serve", "--port", port) == (
        f"mlops serve: argument --port: {port} is not a TCP port in 0..65535; pass 0 to pick a free one; "
        "see 'mlops serve --help'"
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from tests.support.deployed import template

    return template(tmp_path_factory)


def test_mode_auto_is_full_for_a_first_deployment_then_canary_and_says_which(trained, tmp_path):
    import json

    from tests.support.deployed import copy_repo

    repo, v1, v2 = copy_repo(trained, tmp_path / "repo", tracking=False)
    current = json.loads((repo / "models/current/manifest.json").read_text())["version"]
    other = v1 if current == v2 else v2
    before = tree_snapshot(repo)
    refused = run(repo, "deploy", "--mode", "auto", "--traffic", "0.2")  # a first deployment takes no share
    assert refused.code == 2 and refused.err.strip().splitlines()[-1] == (
        "error: --traffic: --mode auto deploys full here (nothing is in production yet), "
        "and a traffic share only applies to canary; drop --traffic for this first deployment"
    )
    assert tree_snapshot(repo) == before
    first = run(repo, "deploy", "--mode", "auto", "--version", other)
    assert first.code == 0, first.err
    assert "--mode auto: full (nothing is in production yet)" in first.out and f"deployed {other} as full" in first.out
    second = run(repo, "deploy", "--mode", "auto", "--traffic", "0.2")
    assert second.code == 0, second.err
    assert "--mode auto: canary (a version is in production)" in second.out
    assert f"deployed {current} as canary at 20%" in second.out
    state = json.loads((repo / "models/deployment.json").read_text())
    assert state["production"]["version"] == other and state["canary"] == {**state["canary"], "version": current}
    assert [h["action"] for h in state["history"]][-2:] == ["deploy-full", "deploy-canary"]


def test_serve_on_a_port_in_use_is_one_line_exit_2(trained, tmp_path):
    import socket

    from tests.support.deployed import copy_repo

    repo, v1, _v2 = copy_repo(trained, tmp_path / "repo", tracking=False)
    assert run(repo, "deploy", "--mode", "full", "--version", v1).code == 0
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run(repo, "serve", "--port", str(port))
    assert r.code == 2 and r.out == ""
    assert r.err.strip().splitlines() == [
        f"error: mlops serve: --port {port}: 127.0.0.1:{port} is already in use; "
        "stop the process listening there or pass another --port (0 picks a free one)"
    ]
