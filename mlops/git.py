"""The one way the package runs git: `git -C root args...`, captured, never prompting.

Callers decide what a non-zero exit means for them (a BadInput naming their flag, a CheckFailed,
or a fallback), so this returns the completed process and raises only when git cannot start.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from mlops.errors import BadInput


def run(
    root: Path,
    *args: str,
    input: bytes | str | None = None,
    text: bool = True,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """Run git in `root` and return the completed process (stdout/stderr captured)."""
    full_env = {**os.environ, **(env or {})}
    full_env["GIT_TERMINAL_PROMPT"] = "0"  # a missing credential fails fast instead of waiting for a prompt
    try:
        return subprocess.run(
            ["git", *args], cwd=root, input=input, env=full_env, capture_output=True, text=text,
            timeout=timeout, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BadInput(str(root), f"cannot run git {args[0] if args else ''} ({exc})",
                       "install git and run inside a checkout") from None  # fmt: skip
