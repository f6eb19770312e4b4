"""A hardened CSV reader: pyarrow's speed, plus checks on the raw bytes pyarrow lets through.

pyarrow.csv accepts duplicate header names, reads a ';'-separated file as one column, and
turns invalid UTF-8 into a binary column instead of failing. Each of those (and an empty
file, a header without rows, an unreadable path) becomes one BadInput line naming the file
and the problem. The checks cost one read of the header line on the happy path; the slow
searches for a line number run only once something is already known to be wrong.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from mlops.errors import BadInput

# Magic numbers of formats people save with a .csv name by mistake.
_MAGIC = {
    b"\x1f\x8b": "gzip-compressed data",
    b"PK\x03\x04": "a zip archive (an .xlsx workbook or a zipped export)",
    b"PAR1": "a Parquet file",
    b"\xd0\xcf\x11\xe0": "an old Excel (.xls) workbook",
}
_OTHER_DELIMITERS = {";": "';'", "\t": "a tab", "|": "'|'"}
_HEADER_LIMIT = 4 << 20  # a header line longer than 4 MiB is not a header


def _open_error(path: Path, where: str) -> BadInput | None:
    if not path.exists():
        return BadInput(where, "the data file does not exist", "fix the path or fetch the data again")
    if path.is_dir():
        return BadInput(where, "is a directory, not a data file", "point at the CSV or Parquet file inside it")
    return None


def _header_line(path: Path, where: str) -> tuple[bytes, int]:
    """The first non-empty line's bytes (without BOM and line ending) and its 1-based line number."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64 << 10)
            if not head:
                raise BadInput(where, "the file is empty (0 bytes)", "export the data again with its header and rows")
            for magic, what in _MAGIC.items():
                if head.startswith(magic):
                    raise BadInput(where, f"is {what}, not a CSV text file", "export it as plain comma-separated CSV")
            buf = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
            line_no = 1
            while True:
                stripped = buf.lstrip(b"\r\n")
                line_no += buf[: len(buf) - len(stripped)].count(b"\n")
                buf = stripped
                end = buf.find(b"\n")
                if end >= 0 or len(buf) >= _HEADER_LIMIT:
                    break
                more = fh.read(64 << 10)
                if not more:
                    end = len(buf)
                    break
                buf += more
    except OSError as exc:
        raise BadInput.unreadable(where, exc, "check the path and the disk") from None
    if not buf.strip():
        raise BadInput(where, "holds only blank lines", "export the data again with a header row and data rows")
    if end < 0:
        raise BadInput(where, f"the first line is longer than {_HEADER_LIMIT >> 20} MiB", "is this really a CSV file?")
    return buf[:end].rstrip(b"\r"), line_no


def check_header(path: Path, where: str) -> list[str]:
    """Read and check only the header line; return the column names."""
    raw, line_no = _header_line(path, where)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(
            f"{where}: line {line_no}",
            f"the header is not valid UTF-8 (byte {exc.start} of the line is 0x{raw[exc.start]:02x})",
            "save the file as UTF-8",
        ) from None
    try:
        names = next(csv.reader([text]))
    except csv.Error as exc:  # e.g. a file with CR-only line endings reads as one header line
        raise BadInput(
            f"{where}: line {line_no}", f"the header cannot be parsed ({exc})", "save the file with LF or CRLF ends"
        ) from None
    if len(names) == 1:
        for delim, label in _OTHER_DELIMITERS.items():
            if delim in text:
                raise BadInput(
                    where,
                    f"the header has no ',' but contains {label}: the file looks delimited by {label}, not by commas",
                    "export it as comma-separated CSV",
                )
    seen: dict[str, int] = {}
    for i, name in enumerate(names, 1):
        if not name.strip():
            raise BadInput(f"{where}: header column {i}", "has an empty name", "give every column a name")
        if name in seen:
            raise BadInput(
                where,
                f"duplicate header name {name!r} (columns {seen[name]} and {i})",
                "rename one of them so every column name is unique",
            )
        seen[name] = i
    return names


def read_csv_checked(path: Path, where: str, text_columns: tuple[str, ...] = ()) -> Any:
    """Read a CSV into a pyarrow Table; bad input of any kind is one BadInput line naming the file.

    `text_columns` present in the header are read as text, not inferred ("007" stays "007").
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    path = Path(path)
    error = _open_error(path, where)
    if error:
        raise error
    names = check_header(path, where)
    types = {name: pa.string() for name in text_columns if name in names}
    convert = pcsv.ConvertOptions(strings_can_be_null=True, column_types=types)
    try:
        table = _read(path, convert)
    except pa.ArrowInvalid as exc:
        raise _explain_arrow_error(path, where, str(exc), convert) from None
    except OSError as exc:
        raise BadInput(where, f"cannot be read ({exc})", "check the path and the disk") from None
    if table.column_names != names:  # e.g. a quoted newline inside a header name
        raise BadInput(where, "the header could not be parsed consistently", "remove line breaks from column names")
    for i, field in enumerate(table.schema):
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            row = _first_invalid_utf8(table.column(i))
            raise BadInput(
                f"{where}: column {field.name!r}",
                f"invalid UTF-8 in data row {row} (CSV line {row + 1})",
                "save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
            )
    if table.num_rows == 0:
        raise BadInput(where, "has a header but no data rows", "export the data again with its rows")
    return table


# Files of at least two ranges are read as byte ranges cut at line breaks, on two threads.
_RANGE_BYTES = 8 << 20
_READ_THREADS = 2
_FIRST_RANGE_BYTES = 1 << 20


def _read(path: Path, convert: Any) -> Any:
    """Read the CSV with pyarrow: the first byte range infers the types, the other ranges are
    parsed on two threads with those types, one range in memory at a time per thread (peak
    memory ~ the table plus two ranges, where read_csv holds the whole file's parse buffers).

    The result is what `pyarrow.csv.read_csv` returns: when any range fails (a later value that
    does not fit the first range's types, text below numbers, invalid UTF-8 further down, a
    ragged row) the file is read again with read_csv, which infers types over the whole file and
    raises the error the caller explains. Ranges are cut after a line break, as pyarrow cuts its
    own blocks (`newlines_in_values=False`)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    size = path.stat().st_size
    if size < 2 * _RANGE_BYTES:
        return pcsv.read_csv(path, convert_options=convert)
    try:
        with pa.OSFile(str(path)) as fh:
            # The first range is one pyarrow block (1 MiB, the window its streaming reader infers
            # types from) and is read alone; the others are read two at a time.
            cuts = [0]
            step = max(_RANGE_BYTES, size // 64)
            target = min(step, _FIRST_RANGE_BYTES)
            while target < size:
                window = fh.read_at(1 << 16, target)
                nl = window.find(b"\n")
                while nl < 0 and target + len(window) < size:  # a line longer than the window
                    more = fh.read_at(1 << 20, target + len(window))
                    nl = len(window) + more.find(b"\n") if b"\n" in more else -1
                    window += more
                if nl < 0:
                    break
                cut = target + nl + 1
                if cut >= size:
                    break
                cuts.append(cut)
                target = cut + step
            cuts.append(size)

            def read_range(i: int, types: Any = None, names: list[str] | None = None) -> Any:
                with pa.OSFile(str(path)) as own:  # one handle per range: seek + read is not shared
                    own.seek(cuts[i])
                    buf = own.read_buffer(cuts[i + 1] - cuts[i])
                opts = pcsv.ReadOptions(use_threads=False, block_size=max(1 << 20, len(buf) + 1),
                                        column_names=names)  # fmt: skip
                conv = convert
                if types is not None:
                    conv = pcsv.ConvertOptions(strings_can_be_null=convert.strings_can_be_null, column_types=types)
                part = pcsv.read_csv(pa.BufferReader(buf), read_options=opts, convert_options=conv)
                for col in part.columns:
                    if _is_text(col.type) and pc.any(pc.match_substring(col, "\n")).as_py():
                        # A line break inside a quoted value: a cut may have split that value
                        # (pyarrow keeps an unclosed quote's text), so read the file as one.
                        raise pa.ArrowInvalid("a quoted value holds a line break")
                return part

            first = read_range(0)
            if first.num_rows == 0:
                raise pa.ArrowInvalid("first range holds no rows")
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=_READ_THREADS) as pool:
                rest = list(
                    pool.map(lambda i: read_range(i, first.schema, first.column_names), range(1, len(cuts) - 1))
                )
            table = pa.concat_tables([first, *rest])
        # Hand the ranges' parse buffers back to the OS instead of keeping them in the pool:
        # the table is all that stays, and the checks that follow allocate outside the pool.
        pa.default_memory_pool().release_unused()
        return table
    except pa.ArrowInvalid:
        pass
    return pcsv.read_csv(path, convert_options=convert)


def _is_text(data_type: Any) -> bool:
    import pyarrow as pa

    return any(
        f(data_type)
        for f in (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)
    )


def _first_invalid_utf8(column: Any) -> int:
    offset = 0
    for chunk in column.chunks:
        for i, value in enumerate(chunk.to_pylist()):
            if value is None:
                continue
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                return offset + i + 1
        offset += len(chunk)
    return 0


def _explain_arrow_error(path: Path, where: str, message: str, convert: Any) -> BadInput:
    """Turn pyarrow's message into one line; find the offending line number when it does not say."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    if "Expected" in first and "columns" in first:
        found: list[Any] = []

        def handler(row: Any) -> str:
            if not found:
                found.append(row)
            return "skip"

        try:
            pcsv.read_csv(
                path,
                read_options=pcsv.ReadOptions(use_threads=False),
                parse_options=pcsv.ParseOptions(invalid_row_handler=handler),
                convert_options=convert,
            )
        except (pa.ArrowInvalid, OSError):
            pass
        if found:
            row = found[0]
            line = f"line {row.number}" if row.number is not None else "a line"
            return BadInput(
                f"{where}: {line}",
                f"has {row.actual_columns} field(s) where the header has {row.expected_columns}",
                "quote fields that contain commas and check the delimiter",
            )
    return BadInput(where, f"cannot be read as CSV ({first[:200]})", "fix the file's format")
