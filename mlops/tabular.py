"""A hardened CSV reader: `pyarrow.csv.read_csv` (which parses on several threads itself), plus
checks on the raw bytes pyarrow lets through.

pyarrow.csv accepts duplicate header names, reads a ';'-separated file as one column, and
turns invalid UTF-8 into a binary column instead of failing. Each of those (and an empty
file, a header without rows, a path that is missing, a directory or unreadable) becomes one
BadInput line naming the file and the problem. The checks cost one read of the header line
on the happy path; the slow searches for a line number run only once something is already
known to be wrong.
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
_BLOCK_BYTES = 8 << 20
_PROBE_BYTES = 1 << 20  # pyarrow's own block size, what its streaming reader infers from


def check_openable(path: Path, where: str) -> None:
    """Refuse a path that is missing or a directory before anything reads it."""
    if path.is_dir():
        raise os_error(where, IsADirectoryError(str(path)))
    if not path.exists():
        raise os_error(where, FileNotFoundError(str(path)))
    if not path.is_file():  # a FIFO or a device: reading it could block or never end
        raise BadInput(where, "is not a regular file", "point at a CSV or Parquet file")


def os_error(where: str, exc: OSError) -> BadInput:
    """The one line for a data file the OS will not read: gone (or vanished while being read), a
    directory, no permission, or the OS's own reason."""
    if isinstance(exc, FileNotFoundError):
        return BadInput(where, "the data file does not exist", "fix the path or fetch the data again")
    if isinstance(exc, IsADirectoryError):
        return BadInput(where, "is a directory, not a data file", "point at the CSV or Parquet file inside it")
    return BadInput.unreadable(where, exc, "check the path and the disk")


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
        raise os_error(where, exc) from None
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
    check_openable(path, where)
    names = check_header(path, where)
    types = {name: pa.string() for name in text_columns if name in names}
    convert = pcsv.ConvertOptions(strings_can_be_null=True, column_types=types)
    try:
        table = _read(path, convert)
    except pa.ArrowInvalid as exc:
        raise _explain_arrow_error(path, where, str(exc), convert) from None
    except OSError as exc:
        raise os_error(where, exc) from None
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


def _read(path: Path, convert: Any) -> Any:
    """`pyarrow.csv.read_csv(path, convert_options=convert)` in 8 MiB blocks, with the column types
    pyarrow's own inference gives the first block.

    read_csv infers each column's type over the whole file, so it keeps every block's parse
    buffers until the end (its peak is about twice the table); with every type given it frees
    each block once converted (about 1.2x). The types come from `pyarrow.csv.open_csv` on the
    first block (what its streaming reader infers); when a later value does not fit them (an
    integer column with a decimal further down), the typed read fails and the file is read again
    with read_csv's own inference. Either way the table is the one read_csv returns: inference
    only ever widens a type, so a type that every block converts to is the one it would pick.
    A column empty in the first block keeps read_csv's inference. 8 MiB blocks instead of
    pyarrow's 1 MiB: the same values and types in an eighth of the chunks, and the validation
    checks, which loop over chunks, cost less (docs/validation.md)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    blocks = pcsv.ReadOptions(block_size=_BLOCK_BYTES)
    try:
        types = _first_block_types(path, convert)
        typed = pcsv.ConvertOptions(strings_can_be_null=convert.strings_can_be_null, column_types=types)
        table = pcsv.read_csv(path, read_options=blocks, convert_options=typed)
    except pa.ArrowInvalid:
        table = pcsv.read_csv(path, read_options=blocks, convert_options=convert)
    # The parse buffers go back to the OS rather than stay in the pool's cache: the checks that
    # follow allocate mostly with numpy, outside the pool (1.5 ms on the benchmark's 1M rows).
    pa.default_memory_pool().release_unused()
    return table


def _first_block_types(path: Path, convert: Any) -> dict[str, Any]:
    """{column: type} as pyarrow's streaming reader infers them from the first block (columns
    empty there left out). The reader is dropped on return: it holds its read-ahead buffers
    (~35 MB) until then, not only until it is closed."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    options = pcsv.ReadOptions(block_size=_PROBE_BYTES, use_threads=False)
    with pcsv.open_csv(path, read_options=options, convert_options=convert) as probe:
        schema = probe.schema
    return {f.name: f.type for f in schema if not pa.types.is_null(f.type)}


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
