"""`pre-commit run --all-files` passes offline in a fresh clone of the committed tree (issue 8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.workflow_harness import ROOT

pytestmark = pytest.mark.slow


def test_every_hook_passes_offline_in_a_fresh_clone(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    # No network and no activated venv: only the interpreter's own bin/ knows where the tools are.
    env = {
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "pre-commit"), "run", "--all-files", "--color", "never"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    for hook in ("ruff (lint)", "zizmor", "mlops config check", "mlops audit verify", "GitHub workflows"):
        assert hook in proc.stdout
    # Manual stage only: pre-commit notes the hook's local repo but never runs (or builds) it.
    assert "actionlint (manual stage" not in proc.stdout
