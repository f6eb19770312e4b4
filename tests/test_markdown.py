"""The one Markdown table helper: plain cells, a custom formatter, and escaping that keeps a row one row."""

from mlops import gha, markdown


def test_plain_cells_round_floats_and_escape_pipes_and_newlines():
    md = markdown.table(["a", "b"], [(1.5, "x|y"), (None, True), (3, "l\nm")])
    assert md.splitlines() == ["| a | b |", "|---|---|", "| 1.5000 | x\\|y |", "| None | True |", "| 3 | l m |"]
    assert gha.md_table(["a", "b"], [(1.5, "x|y")]) == markdown.table(["a", "b"], [(1.5, "x|y")])


def test_a_formatter_decides_the_text_and_its_output_is_escaped_too():
    md = markdown.table(["v"], [[None], ["p|q"]], fmt=lambda v: "n/a" if v is None else f"{v}\n!")
    assert md.splitlines()[2:] == ["| n/a |", "| p\\|q ! |"]
