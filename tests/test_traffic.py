"""`mlops simulate-traffic`: numbers are range-checked where the command line is parsed.

The scored windows themselves are exercised end to end in tests/test_monitor.py.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from mlops import traffic
from tests.support.cli import run
from tests.support.repo import make_repo


def whole_tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--seed", "-1"], "argument --seed: -1 is not a seed in 0..4294967295"),
        (["--seed", "4294967296"], "argument --seed: 4294967296 is not a seed in 0..4294967295"),
        (["--hours", "inf"], "argument --hours: inf is not a number of hours in (0, 8784]"),
        (["--hours", "nan"], "argument --hours: nan is not a number of hours in (0, 8784]"),
        (["--hours", "0"], "argument --hours: 0 is not a number of hours in (0, 8784]"),
        (["--rows", "0"], "argument --rows: 0 is not a positive number of rows"),
        (["--features", "-1"], "argument --features: -1 is not a count"),
        (["--shift=-inf"], "argument --shift: -inf is not a finite number"),
        (["--label-noise", "1.5"], "argument --label-noise: 1.5 is not a probability"),
        (["--seed", "1.5"], "argument --seed: '1.5' is not an integer"),
    ],
)
def test_a_number_out_of_range_is_one_line_exit_2_and_nothing_changes(tmp_path, args, problem):
    repo = make_repo(tmp_path / "repo")
    before = whole_tree(repo)
    result = run(repo, "simulate-traffic", "--rows", "10", *args)
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert line.startswith(f"mlops simulate-traffic: {problem}"), line
    assert whole_tree(repo) == before


def test_logged_feature_values_are_plain_python_with_none_for_non_finite():
    frame = pd.DataFrame({"x": [1.5, math.inf, math.nan], "n": pd.array([1, 2, None], dtype="Int64")})
    rows = traffic._plain_rows(frame)
    assert rows == [{"x": 1.5, "n": 1}, {"x": None, "n": 2}, {"x": None, "n": None}]
    assert all(type(r["n"]) is int for r in rows[:2])
