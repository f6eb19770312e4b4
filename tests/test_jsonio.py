import json
import math
import os

import pytest

from mlops import jsonio
from mlops.errors import BadInput


def test_dumps_is_sorted_indented_with_trailing_newline():
    assert jsonio.dumps({"b": 1, "a": [1.5, "é"]}) == '{\n  "a": [\n    1.5,\n    "é"\n  ],\n  "b": 1\n}\n'
    assert jsonio.canonical({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_non_finite_numbers_are_refused():
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="non-finite"):
            jsonio.dumps({"x": bad})


def test_write_json_is_atomic_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "sub" / "state.json"
    jsonio.write_json(path, {"a": 1})
    jsonio.write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]
    with pytest.raises(ValueError):
        jsonio.write_json(path, {"a": math.nan})
    assert json.loads(path.read_text()) == {"a": 2}  # the old file survives a failed write
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]


def test_utc_now_honours_mlops_now(monkeypatch):
    monkeypatch.setenv("MLOPS_NOW", "2026-11-22T06:00:00Z")
    assert jsonio.format_utc(jsonio.utc_now()) == "2026-11-22T06:00:00Z"
    with pytest.raises(BadInput, match="'yesterday' is not an ISO-8601 time"):
        jsonio.parse_utc("yesterday", "--since")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"{,}",
            "f.json: malformed JSON at line 1 column 2: Expecting property name enclosed in double quotes; "
            "fix the JSON syntax",
        ),
        (b'{"a": NaN}', "f.json: malformed JSON at line 1 column 1: NaN is not valid JSON; fix the JSON syntax"),
        (b"\xff", "f.json: not valid UTF-8 at byte 0; save the file as UTF-8"),
        (b"[" * 100000, "f.json: malformed JSON at line 1 column 1: nested too deeply; fix the JSON syntax"),
    ],
)
def test_read_json_failures_are_one_line(tmp_path, content, message):
    path = tmp_path / "f.json"
    path.write_bytes(content)
    with pytest.raises(BadInput) as info:
        jsonio.read_json(path, "file", "f.json")
    assert str(info.value) == message


def test_read_json_os_errors_are_one_line(tmp_path):
    with pytest.raises(BadInput, match=r"^f.json: proof file does not exist; create it or fix the path$"):
        jsonio.read_json(tmp_path / "missing.json", "proof file", "f.json")
    with pytest.raises(BadInput, match=r"^f.json: is a directory, not a proof file; name the file itself$"):
        jsonio.read_json(tmp_path, "proof file", "f.json")
    if os.geteuid() != 0:  # root reads any file
        locked = tmp_path / "locked.json"
        locked.write_text("{}")
        locked.chmod(0)
        with pytest.raises(BadInput, match="permission denied"):
            jsonio.read_json(locked, "file", "f.json")


def test_check_output_file_refuses_a_directory_or_a_file_as_folder(tmp_path):
    jsonio.check_output_file(tmp_path / "new" / "deeper" / "out.json", "-o")  # folders are created later
    with pytest.raises(BadInput, match=rf"^-o: {tmp_path} is a directory; name a file"):
        jsonio.check_output_file(tmp_path, "-o")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BadInput, match=r"is a file, so .* cannot be created; name a path inside a folder$"):
        jsonio.check_output_file(blocker / "out.json", "-o")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_utc_now_reads_a_clock_file_at_every_call(monkeypatch, tmp_path):
    clock = tmp_path / "clock"
    clock.write_text("2026-11-22T06:00:00Z\n")
    monkeypatch.setenv("MLOPS_NOW", f"@{clock}")
    assert jsonio.format_utc(jsonio.utc_now()) == "2026-11-22T06:00:00Z"
    clock.write_text("2026-11-29T12:00:00Z\n")
    assert jsonio.format_utc(jsonio.utc_now()) == "2026-11-29T12:00:00Z"
    clock.unlink()
    with pytest.raises(BadInput, match="cannot read the clock file"):
        jsonio.utc_now()
