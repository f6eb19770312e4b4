"""Cold install of the core (no extras) in a fresh virtual environment: uv against pip, on the same lock.

Both start from an empty venv and an empty download cache, and install the same pins with hash
checking: uv with `uv pip install --verify-hashes -c requirements-lock.txt -e .` (what the workflows
run), pip with `pip install --require-hashes -r <the lock's lines for those same packages>` then the
package itself without dependencies (pip refuses hashes in a constraints file). Both read the same
registry: pip's own configuration (index, extra indexes, wheel folders), handed to uv through its
environment variables. Prints each time, the ratio, and the size of the core venv without the
`report` extra (Evidently). Goals (issue 17): uv <= 1/3 of pip's time; core <= 700 MB.

    .venv/bin/python benchmarks/install.py
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements-lock.txt"


def pip_config(key: str) -> str:
    out = subprocess.run([sys.executable, "-m", "pip", "config", "get", key], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else ""


def uv_env(cache: Path) -> dict[str, str]:
    """uv reads no pip config: the same extra indexes and wheel folders as pip, an empty cache."""
    env = {**os.environ, "UV_CACHE_DIR": str(cache), "UV_INDEX_STRATEGY": "unsafe-best-match"}
    if extra := pip_config("global.extra-index-url"):
        env["UV_EXTRA_INDEX_URL"] = extra
    if links := pip_config("global.find-links"):
        env["UV_FIND_LINKS"] = links
    return env


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def lock_entries(names: set[str]) -> str:
    """The lock's requirement blocks (pin, markers, hashes) for `names` (normalized)."""
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text())
    keep = []
    for block in blocks:
        name = re.match(r"([A-Za-z0-9._-]+)==", block)
        if name and re.sub(r"[-_.]+", "-", name.group(1)).lower() in names:
            keep.append(re.sub(r"\n\s*#.*", "", block).rstrip())
    return "\n".join(keep) + "\n"


def main() -> int:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        raise SystemExit("uv is not installed: `make install` installs it (dev extra)")
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-install-"))
    try:
        a, b = tmp / "venv-uv", tmp / "venv-pip"
        for venv in (a, b):
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        env = uv_env(tmp / "uv-cache")
        uv_cmd = [uv, "pip", "install", "--python", str(a / "bin/python"), "--verify-hashes",
                  "-c", str(LOCK), "-e", "."]  # fmt: skip
        uv_s = timed(uv_cmd, env)
        frozen = subprocess.run([uv, "pip", "freeze", "--python", str(a / "bin/python")], capture_output=True,
                                text=True, check=True, env=env).stdout  # fmt: skip
        names = {re.sub(r"[-_.]+", "-", line.split("==")[0]).lower() for line in frozen.splitlines() if "==" in line}
        (tmp / "core-lock.txt").write_text(lock_entries(names))
        pip = [str(b / "bin/python"), "-m", "pip", "install", "--quiet", "--no-cache-dir"]
        pip_s = timed([*pip, "--require-hashes", "-r", str(tmp / "core-lock.txt")])
        pip_s += timed([*pip, "--no-deps", "-e", "."])
        site = next((a / "lib").glob("python3*/site-packages"))
        core_mb = size_mb(a)
        evidently = (site / "evidently").exists()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"cold install of the core (no extras) in a fresh venv, {len(names)} packages, empty caches:")
    print(f"  uv  (uv pip install --verify-hashes -c requirements-lock.txt -e .)   {uv_s:7.1f} s")
    print(f"  pip (pip install --require-hashes -r <same pins>; --no-deps -e .)   {pip_s:7.1f} s")
    print(f"  uv / pip: {uv_s / pip_s:5.2f} (goal <= 0.33)")
    print(f"  core venv without the report extra: {core_mb:7.1f} MB (goal <= 700 MB); evidently installed: {evidently}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
