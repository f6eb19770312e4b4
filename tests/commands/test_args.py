import argparse
import math

import pytest

from mlops.commands import args


@pytest.mark.parametrize(
    ("parse", "good", "bad", "message"),
    [
        (args.seed, ["0", str(2**32 - 1)], "-1", "-1 is not a seed in 0..4294967295; pass --seed 0, for example"),
        (args.seed, [], str(2**32), f"{2**32} is not a seed in 0..4294967295; pass --seed 0, for example"),
        (args.rows, ["1"], "0", "0 is not a positive number of rows; pass --rows 1 or more"),
        (args.demo_rows, ["100"], "99", "99 is too few rows for the synthetic set; pass --rows 100 or more"),
        (args.count, ["0"], "-2", "-2 is not a count; pass 0 or more"),
        (args.finite, ["-1.5"], "inf", "inf is not a finite number; pass a number of standard deviations"),
        (args.probability, ["0", "1", "0.25"], "1.01", "1.01 is not a probability; pass a number in [0, 1]"),
        (args.hours, ["0.5", "8784"], "inf", "inf is not a number of hours in (0, 8784]; pass --hours 6, for example"),
        (args.hours, [], "nan", "nan is not a number of hours in (0, 8784]; pass --hours 6, for example"),
        (args.hours, [], "0", "0 is not a number of hours in (0, 8784]; pass --hours 6, for example"),
        (args.port, ["0", "65535"], "65536", "65536 is not a TCP port in 0..65535; pass 0 to pick a free one"),
        (args.seed, [], "1.5", "'1.5' is not an integer"),
        (args.hours, [], "six", "'six' is not a number"),
    ],
)
def test_numbers_are_range_checked_where_parsed(parse, good, bad, message):
    for text in good:
        value = parse(text)
        assert math.isfinite(value) and value == float(text)
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse(bad)
    assert str(info.value) == message


def test_times_are_format_checked_and_normalised_to_utc():
    assert args.utc_time("2026-11-22T06:00:00Z") == "2026-11-22T06:00:00Z"
    assert args.utc_time("2026-11-22 07:30:00+01:30") == "2026-11-22T06:00:00Z"
    assert args.utc_time("2026-11-22") == "2026-11-22T00:00:00Z"  # no zone: UTC
    with pytest.raises(argparse.ArgumentTypeError, match=r"^'2026-13-01' is not an ISO-8601 time; write it like"):
        args.utc_time("2026-13-01")
