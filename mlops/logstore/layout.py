"""The store's layout: Hive-partitioned folders kind=<kind>/date=YYYY-MM-DD/hour=HH/ of immutable parts
named part-<UTC stamp>-<uuid>.parquet, and which partitions a time window overlaps."""

from __future__ import annotations

import datetime as dt
import re
import uuid

KINDS = ("predictions", "feedback")
PART_RE = re.compile(r"^part-\d{8}T\d{6}Z-[0-9a-f]{32}\.parquet$")
_DATE_RE = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_HOUR_RE = re.compile(r"^hour=(\d{2})$")


def kind_dir(kind: str) -> str:
    return f"kind={kind}"


def partition(kind: str, date: str, hour: int) -> str:
    return f"kind={kind}/date={date}/hour={hour:02d}"


def hour_of(when: dt.datetime) -> tuple[str, int]:
    """The (date, hour) partition of a UTC time."""
    when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%d"), when.hour


def part_name(now: dt.datetime) -> str:
    return f"part-{now.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex}.parquet"


def is_part(name: str) -> bool:
    """A finished part; temp files (.name.tmp) and anything else in a partition folder are not read."""
    return bool(PART_RE.match(name))


def date_of(folder: str) -> str | None:
    match = _DATE_RE.match(folder)
    if not match:
        return None
    try:
        dt.date.fromisoformat(match.group(1))
    except ValueError:
        return None
    return match.group(1)


def hour_in(folder: str) -> int | None:
    match = _HOUR_RE.match(folder)
    return int(match.group(1)) if match and int(match.group(1)) < 24 else None


def overlaps(date: str, hour: int | None, since: dt.datetime | None, until: dt.datetime | None) -> bool:
    """Whether the hour (or, with hour None, the whole day) intersects [since, until)."""
    start = dt.datetime.fromisoformat(date).replace(tzinfo=dt.UTC)
    if hour is None:
        end = start + dt.timedelta(days=1)
    else:
        start += dt.timedelta(hours=hour)
        end = start + dt.timedelta(hours=1)
    return (since is None or end > since) and (until is None or start < until)
