"""Numbers from the command line, range-checked where argparse parses them.

A value out of range is argparse's one usage line with exit 2 ("argument --seed: -1 is not a
seed in 0..4294967295; ..."), before a command reads or writes anything.
"""

from __future__ import annotations

import argparse
import math

MAX_SEED = 2**32 - 1  # numpy's and scikit-learn's seed range
MAX_HOURS = 8784  # a leap year, as config/schemas/monitoring.schema.json bounds window_hours
MAX_PORT = 65535


def _number(text: str, kind: type) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None


def rows(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number of rows; pass --rows 1 or more")
    return value


def demo_rows(text: str) -> int:
    value = _number(text, int)
    if value < 100:  # config/schemas/dataset.schema.json: /synthetic/rows minimum
        raise argparse.ArgumentTypeError(f"{value} is too few rows for the synthetic set; pass --rows 100 or more")
    return value


def count(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is not a count; pass 0 or more")
    return value


def seed(text: str) -> int:
    value = _number(text, int)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value} is not a seed in 0..{MAX_SEED}; pass --seed 0, for example")
    return value


def finite(text: str) -> float:
    value = _number(text, float)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number; pass a number of standard deviations")
    return value


def probability(text: str) -> float:
    value = _number(text, float)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a probability; pass a number in [0, 1]")
    return value


def hours(text: str) -> float:
    value = _number(text, float)
    if not 0 < value <= MAX_HOURS:  # NaN and inf fail too
        raise argparse.ArgumentTypeError(
            f"{text} is not a number of hours in (0, {MAX_HOURS}]; pass --hours 6, for example"
        )
    return value


def port(text: str) -> int:
    value = _number(text, int)
    if not 0 <= value <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port in 0..{MAX_PORT}; pass 0 to pick a free one")
    return value
