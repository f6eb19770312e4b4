"""GitHub Actions plumbing: step summary, outputs, progress lines. No-ops outside Actions."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from mlops import markdown

T = TypeVar("T")


def set_outputs(**values: object) -> None:
    """Append key=value lines to $GITHUB_OUTPUT when it is set."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        for key, value in values.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            text = str(value)
            if "\n" in text:
                # Multi-line values use the heredoc form GitHub documents.
                fh.write(f"{key}<<MLOPS_EOF\n{text}\nMLOPS_EOF\n")
            else:
                fh.write(f"{key}={text}\n")


def add_summary(markdown: str) -> None:
    """Append Markdown to $GITHUB_STEP_SUMMARY when it is set."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(markdown.rstrip("\n") + "\n\n")


def md_table(headers: list[str], rows: Iterable[Iterable[object]]) -> str:
    """A Markdown table for a summary or report (floats to four decimals): `mlops.markdown.table`."""
    return markdown.table(headers, rows)


def info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    if os.environ.get("GITHUB_ACTIONS") == "true":
        print(f"::warning::{message}", file=sys.stderr, flush=True)
    else:
        print(f"warning: {message}", file=sys.stderr, flush=True)


def progress(items: Iterable[T], label: str, total: int | None = None) -> Iterator[T]:
    """Progress for long steps: a bar on a terminal, plain lines in CI or when piped."""
    items = list(items) if total is None else items
    total = len(items) if total is None else total  # type: ignore[arg-type]
    tty = sys.stderr.isatty() and not os.environ.get("CI")
    start = time.monotonic()
    for i, item in enumerate(items, 1):
        if tty:
            filled = int(20 * (i - 1) / max(total, 1))
            sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (20 - filled)}] {i}/{total}")
            sys.stderr.flush()
        else:
            info(f"{label}: {i}/{total}")
        yield item
    if tty:
        sys.stderr.write(f"\r{label} [{'#' * 20}] {total}/{total} {time.monotonic() - start:.1f}s\n")
