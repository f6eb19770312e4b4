"""requirements-lock.txt agrees with pyproject.toml (issue 17): made by the documented command, every
requirement of the core and of each extra pinned within its range, every pin with hashes, and this
environment installed from it."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
COMMAND = (
    "uv pip compile pyproject.toml --extra dev --extra report --universal --python-version 3.11 "
    "--generate-hashes --no-config -o requirements-lock.txt"
)


def pins() -> list[tuple[str, str, Marker | None, list[str]]]:
    """(name, version, marker, hashes) of every requirement block of the lock."""
    out = []
    for block in re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements-lock.txt").read_text()):
        m = re.match(r"([A-Za-z0-9._-]+)==([^\s;\\]+)\s*(?:;\s*([^\\\n]+?))?\s*\\?\n", block)
        if m:
            marker = Marker(m.group(3)) if m.group(3) else None
            out.append(
                (canonicalize_name(m.group(1)), m.group(2), marker, re.findall(r"--hash=sha256:[0-9a-f]{64}", block))
            )
    return out


def test_the_lock_is_made_by_the_documented_command():
    header = (ROOT / "requirements-lock.txt").read_text().splitlines()[:2]
    assert header[1].strip() == "#    " + COMMAND
    makefile = " ".join((ROOT / "Makefile").read_text().replace("\\\n", " ").split())
    assert COMMAND.replace("uv pip", "$(BIN)/uv pip") in makefile


def test_every_requirement_of_pyproject_is_pinned_within_its_range_and_every_pin_has_hashes():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra]
    locked = pins()
    assert len(locked) > 150
    assert all(hashes for *_rest, hashes in locked), [n for n, _v, _m, h in locked if not h]
    for python in ("3.11", "3.12", "3.13"):
        env = {"python_version": python, "python_full_version": f"{python}.0", "sys_platform": "linux",
               "platform_machine": "x86_64", "platform_python_implementation": "CPython", "extra": ""}  # fmt: skip
        here = {name: version for name, version, marker, _h in locked if marker is None or marker.evaluate(env)}
        for req in wanted:
            name = canonicalize_name(req.name)
            assert name in here, f"{req} is not in requirements-lock.txt for Python {python}: run `make lock`"
            assert req.specifier.contains(here[name], prereleases=True), (
                f"requirements-lock.txt pins {name}=={here[name]}, outside pyproject.toml's {req}: run `make lock`"
            )


def test_this_environment_is_installed_from_the_lock():
    from packaging.markers import default_environment

    env = {**default_environment(), "extra": ""}
    for name, version, marker, _hashes in pins():
        if marker is None or marker.evaluate(env):
            assert metadata.version(name) == version, f"{name}: installed {metadata.version(name)}, locked {version}"
