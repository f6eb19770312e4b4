"""The hardened CSV reader: every kind of bad input is one line naming the file, exit 2, nothing written."""

from __future__ import annotations

import gzip

import pytest

from mlops.errors import BadInput
from mlops.tabular import read_csv_checked
from tests.support.cli import run
from tests.support.repo import make_repo, tree_snapshot

GOOD = b"a,b,label\n1.5,x,0\n2.5,y,1\n"


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "repo")


def test_good_csv_reads_with_types(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD)  # a UTF-8 BOM is fine
    table = read_csv_checked(path, "ok.csv")
    assert table.column_names == ["a", "b", "label"]
    assert table.num_rows == 2
    assert str(table.schema.field("a").type) == "double"


def test_empty_strings_are_missing(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_bytes(b"a,b\n1,\n2,y\n")
    assert read_csv_checked(path, "gaps.csv").column("b").null_count == 1


BAD = {
    "empty": (b"", r"the file is empty \(0 bytes\)"),
    "header_only": (b"a,b,label\n", "has a header but no data rows"),
    "blank_lines": (b"\n\n\n", "holds only blank lines"),
    "semicolons": (b"a;b;label\n1;2;0\n", "looks delimited by ';', not by commas"),
    "tabs": (b"a\tb\tlabel\n1\t2\t0\n", "looks delimited by a tab, not by commas"),
    "duplicate_header": (b"a,b,a\n1,2,3\n", r"duplicate header name 'a' \(columns 1 and 3\)"),
    "empty_header_name": (b"a,,c\n1,2,3\n", "header column 2: has an empty name"),
    "utf8_body": (b"a,b\n1,ok\n2,caf\xe9\n", r"column 'b': invalid UTF-8 in data row 2 \(CSV line 3\)"),
    "utf8_header": (b"a,\xff\xfe,c\n1,2,3\n", "line 1: the header is not valid UTF-8"),
    "ragged": (b"a,b,c\n1,2,3\n4,5\n", "line 3: has 2 field\\(s\\) where the header has 3"),
    "gzip": (gzip.compress(GOOD), "is gzip-compressed data, not a CSV text file"),
    "xlsx": (b"PK\x03\x04" + b"\x00" * 40, "is a zip archive"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_raises_one_line(tmp_path, case):
    content, message = BAD[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(content)
    with pytest.raises(BadInput, match=message) as info:
        read_csv_checked(path, f"data/{case}.csv")
    text = str(info.value)
    assert text.startswith(f"data/{case}.csv")
    assert "\n" not in text


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(BadInput, match="nope.csv: the data file does not exist"):
        read_csv_checked(tmp_path / "nope.csv", "nope.csv")
    with pytest.raises(BadInput, match="dir.csv: is a directory, not a data file"):
        (tmp_path / "dir.csv").mkdir()
        read_csv_checked(tmp_path / "dir.csv", "dir.csv")


CLI_CASES = {
    "unreadable_missing": (None, "the data file does not exist"),
    "unreadable_binary": (gzip.compress(GOOD), "is gzip-compressed data"),
    "wrong_delimiter": (b"a;b;label\n1;2;0\n", "looks delimited by ';'"),
    "invalid_utf8": (b"a,b\n1,ok\n2,caf\xe9\n", "invalid UTF-8 in data row 2"),
    "duplicate_headers": (b"a,b,a\n1,2,3\n", "duplicate header name 'a'"),
    "empty_file": (b"", "the file is empty"),
    "header_only": (b"a,b,label\n", "has a header but no data rows"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_bad_input_one_line_exit_2_nothing_written(repo, case):
    content, message = CLI_CASES[case]
    path = repo / "datasets" / f"{case}.csv"
    if content is not None:
        path.write_bytes(content)
    before = tree_snapshot(repo)
    for action in ("validate", "infer-schema"):
        r = run(repo, "data", action, "--path", str(path))
        assert r.code == 2, (action, r.err)
        lines = r.err.strip().splitlines()
        assert len(lines) == 1, r.err
        assert f"datasets/{case}.csv" in lines[0] and message in lines[0]
    assert tree_snapshot(repo) == before
    assert not (repo / f"datasets/{case}.schema.json").exists()


# Files with what trips readers further down: the hardened reader returns what
# pyarrow.csv.read_csv returns, and finds bad input below the first block.


def _plain(path):
    import pyarrow.csv as pcsv

    return pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(strings_can_be_null=True))


def _lines(n, row):
    return "".join(row(i) for i in range(n)).encode()


READ_CASES = {
    "good": b"a,b,label\n" + _lines(300, lambda i: f"{i * 0.5},x{i % 3},{i % 2}\n"),
    "int_then_float": b"a,b,label\n" + _lines(300, lambda i: f"{i if i < 250 else i + 0.5},y,{i % 2}\n"),
    "numbers_then_text": b"a,b,label\n" + _lines(300, lambda i: f"{i if i != 280 else 'n/a?'},y,{i % 2}\n"),
    "empty_then_values": b"a,b,label\n" + _lines(300, lambda i: f"{'' if i < 200 else i},y,{i % 2}\n"),
    "crlf_blank_lines": b"\xef\xbb\xbfa,b,label\r\n"
    + _lines(300, lambda i: f"{i},z,{i % 2}\r\n" + ("\r\n" * (i % 7 == 0))),
    # Every row spans two lines: a reader cutting the file at line breaks would see 348 rows, not 300.
    "all_text_quoted_breaks": b"a,b,c\n" + _lines(300, lambda i: f's{i},t{i},"u{i}\nv,w,x"\n'),
    "quoted_line_breaks": b"a,b,label\n" + _lines(300, lambda i: f'{i},"x{i},\n{i % 5},y\n",{i % 2}\n'),
    "one_late_quoted_break": b"a,b,label\n"
    + _lines(300, lambda i: f'{i},"{"w,1,2" if i != 250 else "w,1,2" + chr(10) + "v,3,4"}",{i % 2}\n'),
    "long_line": b"a,b,label\n" + _lines(50, lambda i: f"{i},{'w' * (70_000 if i == 20 else 3)},{i % 2}\n"),
}


@pytest.mark.parametrize("case", sorted(READ_CASES))
def test_reader_equals_read_csv(tmp_path, case):
    path = tmp_path / f"{case}.csv"
    path.write_bytes(READ_CASES[case])
    table = read_csv_checked(path, case)
    expected = _plain(path)
    assert table.schema.equals(expected.schema)
    assert table.equals(expected)


LATE_BAD = {
    "utf8_late": (
        lambda i: f"{i},{'caf' if i != 250 else 'caf'}\n",
        250,
        b"\xe9",
        r"column 'b': invalid UTF-8 in data row 251 \(CSV line 252\)",
    ),
    "ragged_late": (
        lambda i: f"{i},ok\n" if i != 260 else f"{i}\n",
        None,
        b"",
        r"line 262: has 1 field\(s\) where the header has 2",
    ),
}


@pytest.mark.parametrize("case", sorted(LATE_BAD))
def test_bad_input_later_in_the_file(tmp_path, case):
    row, at, extra, message = LATE_BAD[case]
    body = b"".join(row(i).encode().replace(b"\n", extra + b"\n") if i == at else row(i).encode() for i in range(300))
    path = tmp_path / f"{case}.csv"
    path.write_bytes(b"a,b\n" + body)
    with pytest.raises(BadInput, match=message) as info:
        read_csv_checked(path, f"data/{case}.csv")
    assert str(info.value).startswith(f"data/{case}.csv") and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "case", ["crlf_blank_lines", "empty_then_values", "good", "int_then_float", "numbers_then_text"]
)
def test_block_size_changes_chunks_not_values_or_types(tmp_path, monkeypatch, case):
    # The reader's larger blocks only regroup rows into chunks: pyarrow infers each column's type
    # over every block. Small blocks here, so a small file spans many of them.
    import mlops.tabular as tabular

    monkeypatch.setattr(tabular, "_BLOCK_BYTES", 256)
    path = tmp_path / f"{case}.csv"
    path.write_bytes(READ_CASES[case])
    table = read_csv_checked(path, case)
    assert table.column(0).num_chunks > 1
    expected = _plain(path)
    assert table.schema.equals(expected.schema) and table.equals(expected)


LATE_TYPES = {  # (the first rows' value, a value further down): each either fits the first type or widens it
    "int_float": ("1", "1.5"),
    "int_text": ("1", "x"),
    "int_overflow": ("1", "99999999999999999999"),
    "bool_one": ("true", "1"),
    "bool_text": ("true", "yes"),
    "date_timestamp": ("2024-01-01", "2024-01-01 10:00:00"),
    "seconds_fraction": ("2024-01-01 10:00:00", "2024-01-01 10:00:00.123"),
    "zone_no_zone": ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00"),
    "float_int": ("1.5", "2"),
    "int_null_word": ("1", "NaN"),
    "text_invalid_utf8": ("abc", "caf\udce9"),
}


@pytest.mark.parametrize("case", sorted(READ_CASES) + sorted(LATE_TYPES))
def test_types_from_the_first_block_give_what_read_csv_gives(tmp_path, monkeypatch, case):
    # The reader types every column by pyarrow's inference on the first block; a value further
    # down that does not fit makes it read the file again with read_csv's own inference. A tiny
    # first block here, so the later rows decide.
    import pyarrow.csv as pcsv

    import mlops.tabular as tabular

    monkeypatch.setattr(tabular, "_PROBE_BYTES", 64)
    if case in LATE_TYPES:
        first, later = LATE_TYPES[case]
        body = "".join(f"{i},{first if i != 150 else later}\n" for i in range(300))
        content = ("k,v\n" + body).encode("utf-8", "surrogateescape")
    else:
        content = READ_CASES[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(content)
    table = tabular._read(path, pcsv.ConvertOptions(strings_can_be_null=True))
    expected = _plain(path)
    assert table.schema.equals(expected.schema)
    assert table.equals(expected)


def test_every_column_typed_when_the_first_block_holds_their_types(tmp_path, monkeypatch):
    # Typed, read_csv frees each block once converted instead of keeping all for inference.
    import pyarrow.csv as pcsv

    import mlops.tabular as tabular

    seen = []
    real = pcsv.read_csv

    def spy(path, **kw):
        seen.append(dict(kw["convert_options"].column_types))
        return real(path, **kw)

    monkeypatch.setattr(pcsv, "read_csv", spy)
    path = tmp_path / "good.csv"
    path.write_bytes(READ_CASES["good"])
    read_csv_checked(path, "good.csv")
    assert [sorted(types) for types in seen] == [["a", "b", "label"]]
    seen.clear()
    monkeypatch.setattr(tabular, "_PROBE_BYTES", 64)
    path.write_bytes(READ_CASES["int_then_float"])
    assert str(read_csv_checked(path, "late.csv").schema.field("a").type) == "double"
    assert len(seen) == 2 and seen[1] == {}  # the typed read failed; read_csv inferred the types
