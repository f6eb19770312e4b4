"""Numbers from the command line, range-checked where argparse parses them.

A value out of range is argparse's one usage line with exit 2 ("argument --seed: -1 is not a
seed in 0..4294967295; ..."), before a command reads or writes anything.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

MAX_SEED = 2**32 - 1  # numpy's and scikit-learn's seed range
MAX_HOURS = 8784  # a leap year, as config/schemas/monitoring.schema.json bounds window_hours
MAX_PORT = 65535


def _number(text: str, kind: type) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None


def _checked(text: str, kind: type, ok: Any, problem: str) -> Any:
    """`text` as `kind`, refused with `problem` (formatted with the value and the text) unless ok(value)."""
    value = _number(text, kind)
    if not ok(value):  # NaN fails every comparison, so it is refused too
        raise argparse.ArgumentTypeError(problem.format(value=value, text=text))
    return value


def rows(text: str) -> int:
    return _checked(text, int, lambda v: v >= 1, "{value} is not a positive number of rows; pass --rows 1 or more")


def demo_rows(text: str) -> int:
    # config/schemas/dataset.schema.json: /synthetic/rows has minimum 100
    return _checked(
        text, int, lambda v: v >= 100, "{value} is too few rows for the synthetic set; pass --rows 100 or more"
    )


def count(text: str) -> int:
    return _checked(text, int, lambda v: v >= 0, "{value} is not a count; pass 0 or more")


def seed(text: str) -> int:
    return _checked(
        text, int, lambda v: 0 <= v <= MAX_SEED, f"{{value}} is not a seed in 0..{MAX_SEED}; pass --seed 0, for example"
    )


def finite(text: str) -> float:
    return _checked(text, float, math.isfinite, "{text} is not a finite number; pass a number of standard deviations")


def probability(text: str) -> float:
    return _checked(text, float, lambda v: 0 <= v <= 1, "{text} is not a probability; pass a number in [0, 1]")


def hours(text: str) -> float:
    return _checked(
        text, float, lambda v: 0 < v <= MAX_HOURS,
        f"{{text}} is not a number of hours in (0, {MAX_HOURS}]; pass --hours 6, for example",
    )  # fmt: skip


def port(text: str) -> int:
    return _checked(
        text,
        int,
        lambda v: 0 <= v <= MAX_PORT,
        f"{{value}} is not a TCP port in 0..{MAX_PORT}; pass 0 to pick a free one",
    )


def utc_time(text: str) -> str:
    """An ISO-8601 time (no zone: UTC), returned as YYYY-MM-DDTHH:MM:SSZ; `--since 2026-13-01` is refused here."""
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time; write it like 2026-11-22T06:00:00Z"
        ) from None
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
