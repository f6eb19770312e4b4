"""Strict YAML/JSON loading: duplicate keys are errors (PyYAML and json keep the last one silently).

The reference design's monitoring workflow had two `if:` keys on one step; PyYAML loaded it and
GitHub refused it. `python -m mlops.yamlcheck FILE...` is the pre-commit hook; the workflow test
harness loads workflows with `load_yaml`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlops.errors import BadInput


def _loader() -> type:
    import yaml

    class StrictLoader(yaml.SafeLoader):
        """SafeLoader that refuses a mapping with the same key twice."""

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> dict:
        loader.flatten_mapping(node)
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return StrictLoader


def load_yaml(text: str, where: str = "YAML") -> Any:
    """Parse YAML, refusing duplicate keys; BadInput names the line."""
    import yaml

    try:
        return yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise BadInput(where, f"invalid YAML{line}: {problem}", "fix the file; every key once per mapping") from None


def _json_pairs(where: str):
    def hook(pairs: list[tuple[str, Any]]) -> dict:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise BadInput(where, f"duplicate key {key!r} in a JSON object", "keep one of them")
            out[key] = value
        return out

    return hook


def load_json(text: str, where: str = "JSON") -> Any:
    """Parse JSON, refusing duplicate keys."""
    try:
        return json.loads(text, object_pairs_hook=_json_pairs(where))
    except json.JSONDecodeError as exc:
        raise BadInput(where, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", "fix it") from None


def check_file(path: Path) -> None:
    """Raise BadInput when a .yml/.yaml/.json file does not parse strictly."""
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yml", ".yaml"):
        load_yaml(text, str(path))
    else:
        load_json(text, str(path))


def main(argv: Sequence[str] | None = None) -> int:
    """pre-commit hook: exit 1 listing every file with a syntax error or a duplicate key."""
    files = list(sys.argv[1:] if argv is None else argv)
    bad = 0
    for name in files:
        try:
            check_file(Path(name))
        except BadInput as exc:
            print(f"error: {exc}", file=sys.stderr)
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
