"""`mlops demo` (what `make demo` runs): the whole loop in a scratch repository, end to end."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_the_whole_loop_and_says_where_to_look(tmp_path):
    work = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "mlops", "--repo", str(ROOT), "demo", "--workdir", str(work)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for title in ("validate week 1 data", "train week 1", "deploy the new champion as a 10% canary",
                  "production traffic through `mlops serve`", "canary analysis on the logged window",
                  "monitor the production window", "retention dry run",
                  "the audit log only grew since the last commit", "lineage of the champion"):  # fmt: skip
        assert f"==> {title}" in out, title
    manifest = json.loads((work / "models/current/manifest.json").read_text())
    version = manifest["version"]
    assert manifest["dataset"]["source"] == "synthetic" and manifest["dataset"]["rows"] >= 20000
    assert (work / "metadata/cards" / f"{version}.md").is_file()
    assert (work / "metadata/cards" / f"{version}.json").is_file()
    state = json.loads((work / "models/deployment.json").read_text())
    assert state["canary"]["version"] == version
    # the traffic went through the server's write-ahead log into the store, where monitoring read it
    assert "write-ahead log shipped to the store" in out and "decision: promote" in out
    assert list((work / "datasets/production/store/kind=predictions").rglob("*.parquet"))
    assert list((work / "datasets/production/store/kind=feedback").rglob("*.parquet"))
    assert "drift: 6000 rows" in out
    # the drifted window raised a drift alert, kept in the dry-run outbox (no token)
    outbox = [json.loads(p.read_text()) for p in (work / "metadata/alerts").rglob("*.json")]
    assert any(a["alert"]["kind"] == "drift" and "drift-alert" in a["labels"] for a in outbox), outbox
    tail = out[out.index("Where to look:") :]
    for label in ("model card", "audit checkpoint", "reports", "outbox issues", "MLflow UI"):
        assert label in tail
    # everything the demo committed still verifies from a fresh process
    verify = subprocess.run([sys.executable, "-m", "mlops", "--repo", str(work), "audit", "verify"],
                            capture_output=True, text=True)  # fmt: skip
    assert verify.returncode == 0 and "audit log ok" in verify.stdout
