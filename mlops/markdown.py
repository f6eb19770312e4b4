"""GitHub-flavoured Markdown tables: the one helper behind step summaries, reports, issue bodies and model cards."""

from __future__ import annotations

from collections.abc import Callable, Iterable


def plain(value: object) -> str:
    """A cell as most reports show it: floats to four decimals, anything else as `str()`."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def table(headers: list[str], rows: Iterable[Iterable[object]], fmt: Callable[[object], str] = plain) -> str:
    """A pipe table; `fmt` turns each cell into text, then pipes are escaped and newlines flattened."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_escape(fmt(v)) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _escape(text: str) -> str:
    # A pipe would end the cell and a newline the row.
    return text.replace("|", "\\|").replace("\n", " ")
