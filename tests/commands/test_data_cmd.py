"""mlops.commands.data_cmd: `data validate|infer-schema` wiring and usage errors.

The checks, the contract and bad data files are tested in tests/test_validation.py and tests/test_tabular.py."""

from __future__ import annotations

import pytest

from mlops.commands import data_cmd
from tests.commands.support import actions, options, parse, usage_error
from tests.support.repo import tree_snapshot


def test_help_lists_both_actions_and_their_flags():
    assert actions("data") == ["validate", "infer-schema"]
    assert options("data", "validate") == {"--help", "--path", "--no-download", "--no-alerts", "--since", "--until"}
    assert options("data", "infer-schema") == {"--help", "--path", "--no-download", "--force", "--since", "--until"}


def test_each_action_dispatches_to_its_own_function():
    validate = parse("data", "validate", "--path", "d.csv", "--no-alerts")
    assert (validate.func, validate.path, validate.no_download, validate.no_alerts) == (
        data_cmd.run_validate, "d.csv", False, True,
    )  # fmt: skip
    infer = parse("data", "infer-schema", "--no-download", "--force")
    assert (infer.func, infer.path, infer.no_download, infer.force) == (data_cmd.run_infer_schema, None, True, True)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["data", "check"],
            "mlops data: argument ACTION: invalid choice: 'check' (choose from 'validate', 'infer-schema'); "
            "see 'mlops data --help'",
        ),
        (["data", "validate", "--force"], "mlops: unrecognized arguments: --force; see 'mlops --help'"),
    ],
)
def test_bad_usage_is_one_line_exit_2(argv, line):
    assert usage_error(None, *argv) == line


def test_no_action_is_one_line_exit_2(repo):
    # `data` has no required ACTION in argparse: its own default refuses, naming both actions.
    assert usage_error(repo, "data") == (
        "error: mlops data: no action given; use `mlops data validate` or `mlops data infer-schema`"
    )


def test_infer_schema_refuses_to_overwrite_a_contract_without_force(repo):
    contract = repo / "datasets" / "customer-churn.schema.json"
    contract.write_text("{}\n")
    before = tree_snapshot(repo)
    assert usage_error(repo, "data", "infer-schema", "--no-download") == (
        "error: datasets/customer-churn.schema.json: a schema contract already exists; "
        "edit it by hand, or pass --force to rewrite it"
    )
    assert contract.read_text() == "{}\n" and tree_snapshot(repo) == before
