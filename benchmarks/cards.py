"""Model cards for the four shipped model types, against the floor of drawing any PNG at all.

Trains the four model types on 4,000 synthetic rows without MLflow in a scratch repo, then measures, in one
run: the anchor (one empty 4.5x4 in figure saved as PNG, the least any plot costs), building and writing the
cards of all four versions (JSON + Markdown + MCT export + 6 plots each) and its ratio to 24 anchors,
rendering the Markdown alone, and the one-off matplotlib import. Goal: the cards of four candidates take a few
seconds at most, so they fit the demo's 3-minute budget.

    .venv/bin/python benchmarks/cards.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from scratch import scratch_repo

# What tests/support/trained.py trains on: 4,000 synthetic rows keep the run short and still validate.
FAST = {
    "dataset": {"synthetic": {"rows": 4000, "seed": 11}},
    "training": {"bootstrap_iterations": 50},
    "training-schedule": {"datasets": {"minimum_samples": 1000}},
}


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    began = time.perf_counter()
    import matplotlib  # noqa: F401
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    import_s = time.perf_counter() - began

    from mlops import cards, config
    from mlops.cli import main as cli
    from mlops.repo import Repo

    for key in [k for k in os.environ if k.startswith(("GITHUB_", "MLFLOW_", "MLOPS_"))]:
        del os.environ[key]
    scratch = Path(tempfile.mkdtemp(prefix="bench-cards-"))
    try:
        repo = scratch_repo(scratch / "repo", FAST)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = cli(["--repo", str(repo), "train", "--no-download", "--no-tracking"])
        if code != 0:
            print(f"training failed with exit {code}", file=sys.stderr)
            return 1
        cfg = config.load(Repo.at(repo))
        versions = cards.all_card_versions(cfg.repo)
        assert len(versions) == 4, versions

        def anchor() -> None:
            fig = Figure(figsize=(4.5, 4.0), dpi=100)
            FigureCanvasAgg(fig)
            fig.add_subplot(1, 1, 1)
            fig.savefig(io.BytesIO(), format="png", dpi=100, metadata={"Software": None})

        anchor()  # warm fonts and caches for both sides alike
        anchor_s = best(anchor, args.repeat * 4)
        write_s = best(lambda: [cards.write_card(cfg, v) for v in versions], args.repeat)
        loaded = [cards.load_card(cfg.repo, v) for v in versions]
        md_s = best(lambda: [cards.render_markdown(c) for c in loaded], args.repeat)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    plots = len(cards.PLOTS) * len(versions)
    print(f"anchor: one empty PNG figure             {anchor_s * 1000:8.1f} ms")
    print(f"matplotlib import (once per process)     {import_s * 1000:8.1f} ms")
    print(
        f"cards for {len(versions)} versions ({plots} plots)         {write_s * 1000:8.1f} ms"
        f"  = {write_s / (plots * anchor_s):.2f}x {plots} anchors  (goal: a few seconds at most)"
    )
    print(
        f"Markdown only, {len(versions)} versions               {md_s * 1000:8.1f} ms"
        f"  = {md_s / anchor_s:.3f}x one anchor"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
