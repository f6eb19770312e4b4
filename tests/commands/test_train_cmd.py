"""mlops.commands.train_cmd: `train` flags, usage errors and the refusals that come before any training.

Training, gating and promotion are tested in tests/test_train.py (which also covers --seed out of range)."""

from __future__ import annotations

import pytest

from mlops.commands import train_cmd
from tests.commands.support import options, parse, usage_error
from tests.support.repo import tree_snapshot


def test_help_lists_every_flag():
    assert options("train") == {
        "--help", "--model-types", "--seed", "--no-download", "--force-retrain", "--allow-invalid-data",
        "--no-tracking", "--since", "--until", "--hpo", "--no-hpo", "--trials", "--shard", "--out",
        "--candidates",  # named in --shard's help: the shards are gated by `mlops gate --candidates`
    }  # fmt: skip


def test_train_dispatches_with_its_flags_and_defaults():
    plain = parse("train")
    assert (plain.func, plain.model_types, plain.seed) == (train_cmd.run, None, None)
    assert not (plain.no_download or plain.force_retrain or plain.allow_invalid_data or plain.no_tracking)
    full = parse("train", "--model-types", "logistic_regression", "--seed", "5", "--no-download", "--force-retrain",
                 "--allow-invalid-data", "--no-tracking")  # fmt: skip
    assert (full.model_types, full.seed, full.no_download, full.force_retrain, full.allow_invalid_data) == (
        "logistic_regression", 5, True, True, True,
    )  # fmt: skip
    assert full.no_tracking is True
    assert (plain.since, plain.until) == (None, None)
    window = parse("train", "--since", "2026-11-22T00:00:00+01:00", "--until", "2026-11-22T06:00:00")
    assert (window.since, window.until) == ("2026-11-21T23:00:00Z", "2026-11-22T06:00:00Z")  # normalised to UTC


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["train", "--seed", "x"], "mlops train: argument --seed: invalid int value: 'x'; see 'mlops train --help'"),
        (
            ["train", "--model-types"],
            "mlops train: argument --model-types: expected one argument; see 'mlops train --help'",
        ),
        (["train", "--offline"], "mlops: unrecognized arguments: --offline; see 'mlops --help'"),
        (
            ["train", "--until", "noon"],
            "mlops train: argument --until: 'noon' is not an ISO-8601 time; write it like 2026-11-22T06:00:00Z; "
            "see 'mlops train --help'",
        ),
    ],
)
def test_bad_usage_is_one_line_exit_2(argv, line):
    assert usage_error(None, *argv) == line


def test_an_unknown_model_type_is_refused_before_training(repo):
    before = tree_snapshot(repo)
    assert usage_error(
        repo, "train", "--no-download", "--no-tracking", "--model-types", "logistic_regression,nope"
    ) == (
        "error: --model-types: unknown model type 'nope'; "
        "known types: extra_trees, hist_gradient_boosting, logistic_regression, random_forest"
    )
    assert tree_snapshot(repo) == before
