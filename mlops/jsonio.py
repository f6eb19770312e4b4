"""Machine-written JSON: sorted keys, 2-space indent, trailing newline, no NaN, atomic writes."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from mlops.errors import BadInput


def utc_now() -> _dt.datetime:
    """The current time, UTC, truncated to the second.

    MLOPS_NOW pins it (reproducible runs); `MLOPS_NOW=@FILE` reads the time from FILE at every call, a clock
    that a drill or simulation advances under a long-running process such as `mlops serve`.
    """
    fixed = os.environ.get("MLOPS_NOW")
    if fixed and fixed.startswith("@"):
        try:
            fixed = Path(fixed[1:]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise BadInput(f"MLOPS_NOW={fixed}", f"cannot read the clock file ({exc.strerror})", "create it") from None
    if fixed:
        return parse_utc(fixed, "MLOPS_NOW")
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0)


def format_utc(when: _dt.datetime) -> str:
    return when.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str, where: str = "time") -> _dt.datetime:
    try:
        when = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(where, f"{text!r} is not an ISO-8601 time", "write it like 2026-11-22T06:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    return when.astimezone(_dt.UTC)


def _clean(value: Any) -> Any:
    """Make a value JSON-safe: numpy scalars to Python, NaN/inf refused loudly."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, _dt.datetime):
        return format_utc(value)
    if isinstance(value, Path):
        return value.as_posix()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"refusing to write non-finite float {value!r} to JSON")
    return value


def dumps(data: Any) -> str:
    """The repo's stable JSON text: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(_clean(data), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def dumps_line(data: Any) -> str:
    """One line of an append-only JSON Lines log (the prediction log): sorted keys, no NaN, no newline.

    Encoded as written since the log began (json's default separators, ASCII escapes); numpy
    scalars become Python numbers. Records are checked by their writer before they get here."""
    return json.dumps(data, sort_keys=True, allow_nan=False, default=_scalar)


def _scalar(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def canonical(data: Any) -> bytes:
    """Compact canonical JSON bytes (sorted keys, no insignificant whitespace, UTF-8)."""
    return json.dumps(_clean(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write via a temp file in the same folder, fsync, rename: a crash leaves old or new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; committed files should be 0644
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_all(fd: int, payload: bytes) -> None:
    """os.write until every byte is written (a write may take only part of a large payload)."""
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(folder: Path) -> None:
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def check_output_file(path: Path, where: str) -> None:
    """Refuse, before anything is written, an output path that cannot become a file."""
    path = Path(path)
    if path.is_dir():
        raise BadInput(where, f"{path} is a directory", f"name a file, e.g. {path / 'out.json'}")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise BadInput(where, f"{parent} is a file, so {path} cannot be created", "name a path inside a folder")


def write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(Path(path), dumps(data).encode("utf-8"))


def write_text(path: Path, text: str) -> None:
    atomic_write_bytes(Path(path), text.encode("utf-8"))


def loads(data: str | bytes, **kwargs: Any) -> Any:
    """json.loads whose every parse failure is a json.JSONDecodeError, nesting too deep for the
    parser (a RecursionError) included, so callers need one except clause."""
    try:
        return json.loads(data, **kwargs)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", data if isinstance(data, str) else "", 0) from None


def read_json(path: Path, what: str = "file", shown: str | None = None) -> Any:
    """Read a JSON file, turning every failure into one BadInput line naming the file (as `shown`, if given)."""
    path = Path(path)
    where = shown or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(where, f"{what} does not exist", "create it or fix the path") from None
    except IsADirectoryError:
        article = "an" if what[:1] in "aeiou" else "a"
        raise BadInput(where, f"is a directory, not {article} {what}", "name the file itself") from None
    except OSError as exc:
        raise BadInput.unreadable(where, exc, "fix the path") from None
    except UnicodeDecodeError as exc:
        raise BadInput(where, f"not valid UTF-8 at byte {exc.start}", "save the file as UTF-8") from None
    try:
        return loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise BadInput(
            where, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", "fix the JSON syntax"
        ) from None


def _reject_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not valid JSON", name, 0)
