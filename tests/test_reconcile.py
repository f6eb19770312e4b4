"""`mlops serve --follow` (mlops/reconcile.py) against a real bare git remote, as a real process over loopback HTTP.

A valid deploy pushed to the remote is served; a rewritten audit log, a hand-edited models/deployment.json and a
model file that is not the pinned one are each refused while the previous state keeps answering /predict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops import jsonio
from mlops.merkle import MerkleTree
from mlops.reconcile import Follower, parse_trust_root
from tests.support.cli import run
from tests.support.deployed import copy_repo, feature_rows, template
from tests.support.http import call


def _post(url: str, body: object) -> tuple[int, dict]:
    return call(url, body, timeout=30)


def _get(url: str) -> tuple[int, dict]:
    return call(url, timeout=30)


SEG0 = "metadata/audit/entries-000000000000.jsonl"
CKPTS = "metadata/audit/checkpoints.jsonl"


def git(root: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def fork(tmp_path, tmp_path_factory):
    """(work repo with v1 in production, pushed to a bare remote; the remote; v1; v2)."""
    repo, v1, v2 = copy_repo(template(tmp_path_factory), tmp_path / "work", tracking=False)
    (repo / ".gitignore").write_text(".mlflow/\ndatasets/cache/\ndatasets/production/\n")
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "trained")
    r = run(repo, "deploy", "--mode", "full", "--version", v1)
    assert r.code == 0, r.err
    commit_all(repo, f"deploy {v1}")
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(remote)], check=True)
    git(repo, "remote", "add", "origin", str(remote))
    return repo, remote, v1, v2


def wait_status(base: str, ok, what: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    status: dict = {}
    while time.monotonic() < deadline:
        code, status = _get(f"{base}/status")
        if code == 200 and ok(status):
            return status
        time.sleep(0.2)
    raise AssertionError(f"/status never showed {what}: {json.dumps(status, indent=1)}")


def predict_versions(base: str, n: int = 40) -> set[str]:
    versions = set()
    for i, feats in enumerate(feature_rows(n, seed=21).to_dict("records")):
        code, body = _post(f"{base}/predict", {"request_id": f"r-{i}", "features": feats})
        assert code == 200, body
        versions.add(body["model_version"])
    return versions


def rewrite_audit_history(root: Path) -> None:
    """Edit one committed entry and recompute every checkpoint: the log verifies alone, but does not extend."""
    seg = root / SEG0
    items = seg.read_bytes().split(b"\n")[:-1]
    entry = json.loads(items[0])
    entry["payload"]["rewritten"] = True
    items[0] = jsonio.canonical(entry)
    seg.write_bytes(b"".join(x + b"\n" for x in items))
    tree = MerkleTree()
    tree.extend(items)
    cks, prev = [], (0, tree.root(0).hex())
    for size in range(1, len(items) + 1):
        ck = {"prev_root": prev[1], "prev_size": prev[0], "root": tree.root(size).hex(), "size": size}
        cks.append(jsonio.canonical({**ck, "time": "2026-11-22T06:00:00Z"}))
        prev = (size, ck["root"])
    (root / CKPTS).write_bytes(b"".join(x + b"\n" for x in cks))


def test_follow_serves_valid_pushes_and_refuses_bad_ones(fork, tmp_path):
    repo, remote, v1, v2 = fork
    git(repo, "push", "-q", "origin", "main")
    first = git(repo, "rev-parse", "HEAD")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    argv = ["serve", "--port", "0", "--follow", str(remote), "--interval", "0.3", "--workdir", str(tmp_path / "w")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops", "--repo", str(tmp_path), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        following = proc.stdout.readline()
        assert following.startswith(f"following {remote} (main, every 0.3 s): serving commit {first[:12]}"), (
            following + proc.stderr.read()
        )
        line = proc.stdout.readline()
        assert line.startswith("serving on http://127.0.0.1:"), line + proc.stderr.read()
        base = line.split()[2]
        status = wait_status(base, lambda s: s["commit"] == first, "the first commit")
        assert status["state"] == {"production": v1, "canary": None, "shadow": None}
        assert status["trusted"]["established"] == "first use" and status["error"] is None
        assert status["last_fetch"]["commit"] == first and status["last_fetch"]["time"]
        assert predict_versions(base) == {v1}

        # A valid deploy (gates, state, audit event) pushed: served.
        assert run(repo, "deploy", "--mode", "canary", "--version", v2, "--traffic", "0.5").code == 0
        good = commit_all(repo, f"canary {v2}")
        git(repo, "push", "-q", "origin", "main")
        status = wait_status(base, lambda s: s["commit"] == good, "the canary deploy")
        assert status["state"] == {"production": v1, "canary": v2, "shadow": None}
        assert status["traffic"] == {"production": 0.5, "canary": 0.5}
        assert status["roles"]["canary"]["version"] == v2 and status["roles"]["production"]["version"] == v1
        assert predict_versions(base) == {v1, v2}

        def push_bad(change, message: str) -> str:
            git(repo, "reset", "-q", "--hard", good)
            change()
            bad = commit_all(repo, message)
            git(repo, "push", "-q", "--force", "origin", "main")
            return bad

        def refused(bad: str, check: str) -> dict:
            status = wait_status(base, lambda s: (s["refused"] or {}).get("commit") == bad, f"{bad[:12]} refused")
            assert status["refused"]["check"] == check, status["refused"]
            assert status["commit"] == good and status["state"]["canary"] == v2
            assert status["error"].startswith(f"commit {bad[:12]} not served: {check} check failed: ")
            assert predict_versions(base) == {v1, v2}  # the previous state keeps answering
            code, health = _get(f"{base}/health")
            assert code == 200 and health["status"] == "degraded" and bad[:12] in health["error"]
            return status

        # (1) an audit log that verifies alone but does not extend the trusted one
        bad = push_bad(lambda: rewrite_audit_history(repo), "rewrite history")
        status = refused(bad, "audit log")
        assert "is not an append-only extension of the log trusted at commit" in status["refused"]["reason"]
        assert run(repo, "audit", "verify").code == 0  # alone it verifies: only the trusted head catches it

        # (2) a hand edit of the desired state that skipped the gates
        def hand_edit() -> None:
            path = repo / "models/deployment.json"
            state = json.loads(path.read_text())
            state["canary"]["traffic"] = 0.9
            path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")

        bad = push_bad(hand_edit, "hand edit")
        status = refused(bad, "desired state")
        assert "models/deployment.json: is not the state the audit log recorded" in status["refused"]["reason"]
        verify = run(repo, "audit", "verify")
        assert verify.code == 1 and verify.err.count("\n") == 1, verify.err
        assert "error: models/deployment.json: is not the state the audit log recorded" in verify.err
        assert "git checkout -- models/deployment.json" in verify.err

        # (3) a model file that is not the one the state pins
        def swap_model() -> None:
            path = next(repo.glob(f"models/*/{v2}/model.skops"))
            path.write_bytes(path.read_bytes() + b"\0")

        bad = push_bad(swap_model, "model bytes")
        status = refused(bad, "integrity")
        assert (
            f"the canary model {v2}" in status["refused"]["reason"] and "does not match" in status["refused"]["reason"]
        )

        # A valid deploy after the refusals: served, and the trust moves on.
        git(repo, "reset", "-q", "--hard", good)
        assert run(repo, "deploy", "--mode", "full", "--version", v2).code == 0
        last = commit_all(repo, f"full {v2}")
        git(repo, "push", "-q", "--force", "origin", "main")
        status = wait_status(base, lambda s: s["commit"] == last, "the full deploy")
        assert status["state"] == {"production": v2, "canary": None, "shadow": None} and status["error"] is None
        assert status["trusted"]["commit"] == last and status["refused"]["check"] == "integrity"
        assert predict_versions(base) == {v2}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    trust = json.loads((tmp_path / "w/trust.json").read_text())
    assert trust["commit"] == last and trust["established"] == "first use"


def test_trust_survives_a_restart_and_a_pinned_root_is_enforced(fork, tmp_path):
    repo, remote, v1, v2 = fork
    git(repo, "push", "-q", "origin", "main")
    first = git(repo, "rev-parse", "HEAD")
    follower = Follower(str(remote), tmp_path / "w", interval=3600)
    follower.poll()
    assert follower.served.commit == first and follower.router is not None
    restarted = Follower(str(remote), tmp_path / "w", interval=3600)  # the same head again: equal sizes extend
    restarted.poll()
    assert restarted.served.commit == first and restarted.status()["trusted"]["commit"] == first
    # While it is down, history is rewritten; a restarted follower still holds the old head.
    rewrite_audit_history(repo)
    bad = commit_all(repo, "rewrite")
    git(repo, "push", "-q", "origin", "main")
    again = Follower(str(remote), tmp_path / "w", interval=3600)
    again.poll()
    assert again.router is None and again.refused["commit"] == bad and again.refused["check"] == "audit log"
    assert again.status()["trusted"]["commit"] == first
    # A pinned head the log does not extend: refused on first use too.
    pinned = Follower(str(remote), tmp_path / "w2", pin=parse_trust_root("1:" + "ab" * 32))
    pinned.poll()
    assert pinned.router is None and "the pinned --trust-root (size 1" in pinned.refused["reason"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--branch", "main"], "--branch: only applies with --follow"),
        (["--follow", "REMOTE", "--trust-root", "12:abc"], "--trust-root: '12:abc' is not SIZE:ROOT"),
        (["--follow", "REMOTE", "--interval", "0"], "argument --interval: '0' is not a positive number of seconds"),
        (["--follow", "REMOTE"], "--follow: cannot clone"),
    ],
)
def test_bad_follow_flags_are_one_line_exit_2(tmp_path, args, message):
    args = [a.replace("REMOTE", str(tmp_path / "no-such-remote")) for a in args]
    r = run(tmp_path, "serve", "--port", "0", "--workdir", str(tmp_path / "w"), *args)
    assert r.code == 2 and message in r.err and r.err.count("\n") == 1, r.err
