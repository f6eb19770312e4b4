"""The production prediction log and ground-truth feedback (DESIGN.md, "Production data").

A prediction record:   {"request_id", "time", "model_version", "role", "features": {...}, "score", "prediction"}
A feedback record:     {"request_id", "label", "time"}

`role` is production, canary or shadow; `score` is the positive-class probability; `prediction`
is 1 for the positive class and 0 otherwise; `label` is 0/1 or one of the model's class labels
(monitoring refuses any other value); feature values are single values (null = missing); times
are `YYYY-MM-DDTHH:MM:SSZ`.

Files live under the configured location (default `datasets/production/`, git-ignored), one file
per UTC day and kind: `predictions-YYYYMMDD.jsonl`, `feedback-YYYYMMDD.jsonl`; Parquet files
(`.parquet`, `features` as a struct column) are read the same way. Any location pyarrow can open
(`s3://bucket/logs/predictions-*`) works for reading.

A line that is not a JSON object with the required fields is malformed: by default the read
refuses with the file and line number (exit 2); with `on_malformed: "skip"` in
config/monitoring.json it is skipped and reported. A last line without a newline is a write in
progress and is ignored.

Every append (predictions, feedback, the router's serving errors) goes through `append_lines`, under
one file lock per folder (`.append.lock`, fcntl.flock: threads of `mlops serve` and separate
processes such as `mlops predict` alike). Under that lock no other writer is mid-line, so a
last line without a newline is what a killed writer left: the append moves it into `<log>.torn`
(a JSON line with the time it was found) and truncates the log back to its last newline before
writing. The log keeps only whole lines; readers skip `*.torn` files.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops import jsonio
from mlops.errors import BadInput
from mlops.repo import Repo

ROLES = ("production", "canary", "shadow")
PREDICTION_FIELDS = ("request_id", "time", "model_version", "role", "features", "score", "prediction")
FEEDBACK_FIELDS = ("request_id", "label", "time")


def _folder(repo_or_dir: Repo | str | os.PathLike[str]) -> Path:
    return repo_or_dir.production_logs if isinstance(repo_or_dir, Repo) else Path(repo_or_dir)


def _missing_field(rec: Any, fields: tuple[str, ...]) -> str | None:
    """The first problem of a record that is not an object holding every one of `fields`."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    return next((f"missing {key!r}" for key in fields if key not in rec), None)


def _check_prediction(rec: Any) -> str | None:
    problem = _missing_field(rec, PREDICTION_FIELDS)
    if problem:
        return problem
    if rec["role"] not in ROLES:
        return f"role {rec['role']!r} is not one of {', '.join(ROLES)}"
    if not isinstance(rec["features"], dict):
        return "'features' is not an object"
    for name, value in rec["features"].items():
        if not _scalar(value):
            return f"feature {name!r} is a {type(value).__name__}, not a single value"
    if not isinstance(rec["score"], (int, float)) or isinstance(rec["score"], bool) or not 0 <= rec["score"] <= 1:
        return "'score' is not a probability in [0, 1]"
    if not _zero_or_one(rec["prediction"]):
        return "'prediction' is not 0 or 1"
    return _check_time(rec["time"])


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _zero_or_one(value: Any) -> bool:
    return isinstance(value, (int, float)) and value in (0, 1)  # True/False included


def _check_feedback(rec: Any) -> str | None:
    problem = _missing_field(rec, FEEDBACK_FIELDS)
    if problem:
        return problem
    label = rec["label"]
    if label is None or not _scalar(label) or (isinstance(label, float) and label != label):
        return "'label' is not a class value (0 or 1, or one of the model's class labels)"
    return _check_time(rec["time"])


def _check_time(value: Any) -> str | None:
    try:
        jsonio.parse_utc(str(value))
    except BadInput:
        return f"'time' {value!r} is not an ISO-8601 UTC time"
    return None


# The record checks, public for the log store (mlops.logstore), which writes and reads the same shapes.
check_prediction = _check_prediction
check_feedback = _check_feedback


def _append(folder: Path, prefix: str, records: list[dict], check: Any) -> list[Path]:
    by_day: dict[str, list[str]] = {}
    for i, rec in enumerate(records):
        problem = check(rec)
        if problem:
            raise BadInput(f"{prefix} record {i}", problem, "fix the record before logging it")
        day = jsonio.parse_utc(str(rec["time"])).strftime("%Y%m%d")
        by_day.setdefault(day, []).append(jsonio.dumps_line(rec))
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for day, lines in sorted(by_day.items()):
        path = folder / f"{prefix}-{day}.jsonl"
        append_lines(path, lines)
        written.append(path)
    return written


APPEND_LOCK = ".append.lock"  # one per log folder; a dot file, so no glob of the reader lists it
TORN_SUFFIX = ".torn"  # <log>.torn keeps the fragments a killed writer left; readers skip it


def append_lines(path: Path, lines: list[str]) -> None:
    """Append whole lines (no newline inside) to a JSON Lines log durably, under the folder's file lock.

    A torn last line (a writer killed mid-append) is first moved to `<log>.torn` and cut off, so the
    new lines never glue onto it. One write per call: the batch lands whole, or torn only at the end.
    """
    import fcntl

    if not lines:
        return
    payload = ("\n".join(lines) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    # fcntl.flock itself, not filelock as the audit log does: this runs on every request `mlops serve` answers,
    # and filelock costs ~0.9 ms per acquire against ~0.04 ms. The kernel releases it when its holder dies.
    lock = os.open(path.parent / APPEND_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            _cut_torn_tail(fd, path)
            jsonio.write_all(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            jsonio.fsync_dir(path.parent)
    finally:
        os.close(lock)  # closing the last descriptor releases the lock


def _cut_torn_tail(fd: int, path: Path) -> None:
    """Move an unterminated last line into `<log>.torn` (fsynced first), then truncate the log to its last newline.

    A crash between the two leaves the fragment in both places; the next append moves it again, so the
    sidecar may hold it twice but nothing is lost. Called only under the append lock.
    """
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    keep, step = size, 1 << 16
    while keep > 0:  # search backwards for the last newline, one chunk at a time
        start = max(0, keep - step)
        found = os.pread(fd, keep - start, start).rfind(b"\n")
        if found >= 0:
            keep = start + found + 1
            break
        keep = start
    fragment = os.pread(fd, size - keep, keep)
    note: dict[str, Any] = {"found": jsonio.format_utc(jsonio.utc_now()), "log": path.name, "offset": keep}
    try:
        note["fragment"] = fragment.decode("utf-8")
    except UnicodeDecodeError:  # cut inside a character: keep the exact bytes
        note["fragment_hex"] = fragment.hex()
    torn = path.with_name(path.name + TORN_SUFFIX)
    side = os.open(torn, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        jsonio.write_all(side, (jsonio.dumps_line(note) + "\n").encode("utf-8"))
        os.fsync(side)
    finally:
        os.close(side)
    os.ftruncate(fd, keep)
    os.fsync(fd)


def append_predictions(repo_or_dir: Repo | str | os.PathLike[str], records: list[dict]) -> list[Path]:
    """Append prediction records to predictions-YYYYMMDD.jsonl files (validated first)."""
    return _append(_folder(repo_or_dir), "predictions", list(records), _check_prediction)


def append_feedback(repo_or_dir: Repo | str | os.PathLike[str], records: list[dict]) -> list[Path]:
    """Append feedback records {request_id, label, time} to feedback-YYYYMMDD.jsonl files."""
    return _append(_folder(repo_or_dir), "feedback", list(records), _check_feedback)


def write_parquet(path: str | os.PathLike[str], records: list[dict]) -> None:
    """Write prediction or feedback records as one Parquet file (features as a struct column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(list(records)), buffer)
    jsonio.atomic_write_bytes(Path(path), buffer.getvalue().to_pybytes())


# ---------------------------------------------------------------------------- reading


@dataclass
class LogRead:
    """Records read from the log within a window, with what was skipped and from where."""

    records: list[dict]
    files: list[str]
    skipped: list[str] = field(default_factory=list)  # "file:line: problem"
    outside_window: int = 0


def list_files(repo: Repo, pattern: str) -> list[str]:
    """Files matching a glob: relative to the repo, absolute, or a pyarrow URI (s3://...)."""
    if "://" in pattern:
        from pyarrow import fs as pafs

        folder, _, name = pattern.rpartition("/")
        filesystem, base = pafs.FileSystem.from_uri(folder)
        infos = filesystem.get_file_info(pafs.FileSelector(base, allow_not_found=True))
        scheme = pattern.split("://", 1)[0]
        return sorted(
            f"{scheme}://{i.path}"
            for i in infos
            if i.type == pafs.FileType.File and fnmatch.fnmatch(i.base_name, name) and not i.path.endswith(TORN_SUFFIX)
        )
    path = Path(pattern)
    root = path.anchor if path.is_absolute() else repo.root
    rel = str(path.relative_to(path.anchor)) if path.is_absolute() else pattern
    return sorted(
        str(p)
        for p in Path(root).glob(rel)
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith(TORN_SUFFIX)
    )


def _open_bytes(location: str, shown: str) -> bytes:
    try:
        if "://" in location:
            from pyarrow import fs as pafs

            filesystem, path = pafs.FileSystem.from_uri(location)
            with filesystem.open_input_stream(path) as fh:
                return fh.read()
        return Path(location).read_bytes()
    except OSError as exc:
        raise BadInput.unreadable(shown, exc, "check the log location", what="the log file") from None


def _read_jsonl(location: str, check: Any, on_malformed: str, out: LogRead, shown: str) -> list[dict]:
    data = _open_bytes(location, shown)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        lines.pop()  # no trailing newline: a line still being written
    records = []
    for lineno, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            rec = jsonio.loads(raw)
            problem = check(rec)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            problem = f"malformed JSON ({exc.msg if hasattr(exc, 'msg') else exc})"
        if problem:
            if on_malformed != "skip":
                raise BadInput(
                    f"{shown}:{lineno}",
                    f"malformed log line: {problem}",
                    'fix or remove the line, or set "on_malformed": "skip" in config/monitoring.json',
                )
            out.skipped.append(f"{shown}:{lineno}: {problem}")
            continue
        records.append(rec)
    return records


def _read_parquet(location: str, check: Any, on_malformed: str, out: LogRead, shown: str) -> list[dict]:
    import io

    import pyarrow.parquet as pq

    raw = _open_bytes(location, shown)
    try:
        rows = pq.read_table(io.BytesIO(raw)).to_pylist()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a corrupt file
        raise BadInput(shown, f"not a readable Parquet file ({exc})", "replace or remove the file") from None
    records = []
    for i, rec in enumerate(rows, 1):
        problem = check(rec)
        if problem:
            if on_malformed != "skip":
                raise BadInput(f"{shown}: row {i}", f"malformed log row: {problem}", "fix or remove the row")
            out.skipped.append(f"{shown}: row {i}: {problem}")
            continue
        records.append(rec)
    return records


def read(
    repo: Repo,
    pattern: str,
    kind: str,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    on_malformed: str = "refuse",
) -> LogRead:
    """Read prediction ('predictions') or feedback ('feedback') records with since <= time < until."""
    check = _check_prediction if kind == "predictions" else _check_feedback
    files = list_files(repo, pattern)
    out = LogRead(records=[], files=files)
    lo = jsonio.format_utc(since) if since else None
    hi = jsonio.format_utc(until) if until else None
    for location in files:
        reader = _read_parquet if location.endswith(".parquet") else _read_jsonl
        shown = location if "://" in location else repo.rel(Path(location))  # reports are committed: no tmp paths
        for rec in reader(location, check, on_malformed, out, shown):
            when = jsonio.format_utc(jsonio.parse_utc(str(rec["time"])))
            if (lo and when < lo) or (hi and when >= hi):
                out.outside_window += 1
                continue
            rec["time"] = when
            out.records.append(rec)
    return out


def frame(records: list[dict], features: list[str], where: str, numeric: Iterable[str] = ()) -> Any:
    """A DataFrame with request_id, time, model_version, role, score, prediction and feature columns.

    A value in a `numeric` feature that is not a number (null is fine: it counts as missing) is
    bad input naming the feature, the number of rows and the first request id, never the value.
    """
    import pandas as pd

    meta = pd.DataFrame.from_records(
        [{k: r[k] for k in ("request_id", "time", "model_version", "role", "score", "prediction")} for r in records],
        columns=["request_id", "time", "model_version", "role", "score", "prediction"],
    )
    feats = pd.DataFrame.from_records([r["features"] for r in records])
    missing = [f for f in features if f not in feats.columns]
    if records and missing:
        raise BadInput(
            where,
            f"the prediction log has no values for feature(s) {', '.join(missing)}",
            "log every model feature under 'features', or retrain on the features the router logs",
        )
    feats = feats.reindex(columns=features)
    for name in numeric:
        column = feats[name]
        if column.dtype.kind in "fiu":
            continue
        as_number = pd.to_numeric(column.map(_number_or_none), errors="coerce")
        bad = column.notna() & as_number.isna()
        if bad.any():
            first = meta["request_id"][bad.to_numpy()].iloc[0]
            raise BadInput(
                where,
                f"numeric feature {name!r} holds a value that is not a number in {int(bad.sum())} row(s) "
                f"(first request_id {first!r})",
                "log numbers for numeric features (null for a missing value)",
            )
        feats[name] = as_number.astype(float)
    return pd.concat([meta, feats], axis=1)


def _number_or_none(value: Any) -> Any:
    """Numbers pass; booleans and everything else become a marker pd.to_numeric cannot read."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    return "not a number"
