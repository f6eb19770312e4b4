"""Lineage and reproduction on a fork in miniature (config + the mlops/ and training/ packages, committed)."""

import json
import shutil

import pytest

from mlops import audit, config, deploy, lineage
from mlops.errors import BadInput, CheckFailed
from mlops.repo import Repo
from tests.support.cli import run
from tests.support.trained import shared, train, with_code


@pytest.fixture(scope="module")
def fork(tmp_path_factory):
    def build(folder):
        repo = with_code(folder / "repo")
        manifest = train(repo, types="logistic_regression")
        return {"repo": repo, "version": manifest["version"], "manifest": manifest}

    return shared(tmp_path_factory, "lineage", build)


def test_lineage_prints_commit_data_run_gate_and_a_proof_check_proof_accepts(fork, tmp_path):
    repo, version, manifest = fork["repo"], fork["version"], fork["manifest"]
    proof_path = tmp_path / "proof.json"
    r = run(repo, "lineage", version, "--proof-out", str(proof_path))
    assert r.code == 0, r.err
    assert f"commit       {manifest['commit']}" in r.out
    assert f"synthetic (SYNTHETIC) sha256 {manifest['dataset']['sha256']}" in r.out
    assert (
        f"run {manifest['mlflow']['run_id']}" in r.out
        and f"model version {manifest['mlflow']['model_version']}" in r.out
    )
    assert f"gate         metadata/gates/{version}.json: passed, promoted" in r.out
    proof = json.loads(proof_path.read_text())
    entry = json.loads(proof["entry"])
    assert entry["type"] == "promotion" and entry["payload"]["version"] == version
    assert entry["payload"]["model_sha256"] == manifest["model_sha256"]
    assert f"audit        promotion: seq {entry['seq']} in checkpoint #" in r.out
    ok = run(repo, "audit", "check-proof", str(proof_path))
    assert ok.code == 0, ok.err
    assert f"proof ok: entry seq {entry['seq']}" in ok.out
    assert "matches checkpoint #" in ok.out and "in metadata/audit/checkpoints.jsonl" in ok.out


def test_the_proof_is_rejected_after_any_byte_of_the_audit_entry_changes(fork, tmp_path):
    repo, version = fork["repo"], fork["version"]
    doc = lineage.lineage(config.load(Repo.at(repo)), version)["proof"]
    entry = doc["entry"]
    assert audit.check_proof(doc)["seq"] == doc["seq"]
    for i in range(len(entry)):  # every byte, each flipped in its lowest bit
        tampered = dict(doc, entry=entry[:i] + chr(ord(entry[i]) ^ 1) + entry[i + 1 :])
        with pytest.raises((CheckFailed, BadInput)):
            audit.check_proof(tampered)
    # and through the CLI: exit 1 naming the entry
    bad = dict(doc, entry=entry.replace(version, version[:-1] + ("0" if version[-1] != "0" else "1")))
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    r = run(repo, "audit", "check-proof", str(path))
    assert r.code == 1
    assert f"entry seq {doc['seq']} is not included" in r.err
    # A forger who also recomputes the root (an unsigned checkpoint cannot stop that) is caught by the
    # checkpoint this repository committed for that tree size.
    from mlops.merkle import MerkleTree

    lines = audit.read_dir(repo / "metadata/audit").lines[: doc["tree_size"]]
    lines[doc["seq"]] = bad["entry"].encode()
    forged_tree = MerkleTree()
    forged_tree.extend(lines)
    import base64

    origin = doc["checkpoint"]["note"].split("\n")[0]  # and the C2SP checkpoint text (unsigned) to match
    note = f"{origin}\n{doc['tree_size']}\n{base64.b64encode(forged_tree.root()).decode()}\n"
    forged = dict(bad, checkpoint=dict(doc["checkpoint"], root=forged_tree.root().hex(), note=note))
    forged["proof"] = [h.hex() for h in forged_tree.inclusion_proof(doc["seq"])]
    forged["leaf_hash"] = forged_tree.leaf(doc["seq"]).hex()
    assert audit.check_proof(forged)["seq"] == doc["seq"]  # self-consistent on its own
    path.write_text(json.dumps(forged))
    r = run(repo, "audit", "check-proof", str(path))
    assert r.code == 1
    assert "its checkpoint (size" in r.err and "in metadata/audit/checkpoints.jsonl" in r.err
    assert "the proof or the entry was altered" in r.err


def test_lineage_json_and_deployment_history_from_the_state_file(fork):
    repo, version = fork["repo"], fork["version"]
    state = repo / "models/deployment.json"
    sha, other = fork["manifest"]["model_sha256"], "20260101T000000Z-other-00000000"

    def change(action, frm, to, when):
        to_sha = sha if to == version else "0" * 64
        return {"action": action, "from": frm, "to": to, "to_sha256": to_sha, "time": when, "reason": "test",
                "actor": "t", "record": f"metadata/deployments/{when}.json"}  # fmt: skip

    doc = {
        "format": 1,
        "production": {"version": version, "model_sha256": sha, "since": "2026-11-22T06:00:00Z"},
        "canary": None,
        "shadow": None,
        "history": [change("deploy-shadow", None, other, "2026-11-21T06:00:00Z"),
                    change("deploy-full", None, version, "2026-11-22T06:00:00Z")],
        "updated_at": "2026-11-22T06:00:00Z",
    }  # fmt: skip
    deploy.validate_state(Repo.at(repo), doc)  # the shape `mlops deploy` writes, not a made-up one
    state.write_text(json.dumps(doc))
    try:
        r = run(repo, "lineage", version, "--json")
        assert r.code == 0, r.err
        info = json.loads(r.out)
        assert info["deployment"]["roles"] == ["production.version"]
        assert info["deployment"]["history"] == [doc["history"][1]]
        assert info["commit"] == fork["manifest"]["commit"]
        assert info["dataset"]["synthetic"] is True
        assert info["proof_of"] == "promotion"
        assert audit.check_proof(info["proof"])["seq"] == info["audit"]["promotion"]["seq"]
        text = run(repo, "lineage", version).out
        assert "deployment   production.version; 1 history entries in models/deployment.json" in text
        assert f"2026-11-22T06:00:00Z deploy-full - -> {version} (test)" in text
    finally:
        state.unlink()


def test_lineage_of_an_unknown_version_is_bad_input(fork):
    r = run(fork["repo"], "lineage", "20990101T000000Z-nope-00000000")
    assert r.code == 2
    assert "no such model in models/current, models/candidates or models/archived" in r.err


@pytest.mark.slow  # trains, then re-trains in a child process
def test_reproduce_the_promoted_model_from_its_commit_reports_identical_metrics(fork):
    repo, version = fork["repo"], fork["version"]
    r = run(repo, "reproduce", version, "--json")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    assert result["source"]["kind"] == "commit" and result["source"]["commit"] == fork["manifest"]["commit"]
    assert result["source"]["code"].startswith(f"mlops and training/ from commit {fork['manifest']['commit']}")
    assert "mlops-reproduce-" in result["source"]["code"]  # the code really came from the exported commit
    assert result["dataset"]["sha256"] == fork["manifest"]["dataset"]["sha256"]
    assert result["metrics_identical"] is True
    assert all(c["identical"] for c in result["checks"].values())
    assert result["predictions"] == {"identical": True, "rows": 4000, "max_abs_difference": 0.0}
    assert result["model_content_identical"] is True
    assert result["reproduced"] is True
    if not result["model_bytes_identical"]:
        assert "object ids from id()" in result["model_note"]


def test_reproduce_refuses_when_the_recorded_data_changed(tmp_path):
    repo = with_code(tmp_path / "local", dataset={"source": "local"})
    from mlops import synthetic

    data = repo / "datasets/local/train.csv"
    data.parent.mkdir(parents=True)
    synthetic.generate(4000, 3).to_csv(data, index=False, lineterminator="\n")
    manifest = train(repo, "--no-tracking", types="logistic_regression")
    assert manifest["dataset"]["source"] == "local"
    with open(data, "a") as fh:
        fh.write(data.read_text().splitlines()[1] + "\n")
    r = run(repo, "reproduce", manifest["version"])
    assert r.code == 1
    assert "the data set's sha256 is" in r.err and f"the manifest records {manifest['dataset']['sha256'][:12]}" in r.err
    data.unlink()
    r = run(repo, "reproduce", manifest["version"])
    assert r.code == 2
    assert "data file 'datasets/local/train.csv' is not in this checkout" in r.err


def test_skops_content_digest_ignores_ids_and_timestamps_but_not_the_model():
    import numpy as np
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    a = sio.dumps(LogisticRegression(random_state=0).fit(X, y))
    b = sio.dumps(LogisticRegression(random_state=0).fit(X, y))
    assert a != b  # separate objects: different id()s in names and references
    assert lineage.skops_content_digest(a) == lineage.skops_content_digest(b)
    c = sio.dumps(LogisticRegression(random_state=0, C=0.5).fit(X, y))
    assert lineage.skops_content_digest(c) != lineage.skops_content_digest(a)
    shifted = sio.dumps(LogisticRegression(random_state=0).fit(X, (X[:, 1] > 0).astype(int)))
    assert lineage.skops_content_digest(shifted) != lineage.skops_content_digest(a)


@pytest.mark.slow  # trains, then re-trains in a child process
def test_reproduce_without_a_commit_uses_the_current_tree_and_says_so(tmp_path):
    src = tmp_path / "plain"
    repo = with_code(src)
    shutil.rmtree(repo / ".git")  # trained outside git: the manifest records commit "unknown"
    manifest = train(repo, "--no-tracking", types="logistic_regression")
    assert manifest["commit"] == "unknown"
    r = run(repo, "reproduce", manifest["version"])
    assert r.code == 0, r.err
    assert "current tree: the manifest records no commit (trained outside git)" in r.out
    assert "REPRODUCED: identical metrics" in r.out
    # A recorded number that the re-training does not give back is reported, with where and why to look.
    path = repo / "models/current/manifest.json"
    doctored = json.loads(path.read_text())
    doctored["metrics"]["accuracy"] += 1e-9
    path.write_text(json.dumps(doctored))
    r = run(repo, "reproduce", manifest["version"])
    assert r.code == 1
    assert f"metrics            DIFFERENT: metrics/accuracy: recorded {doctored['metrics']['accuracy']!r}" in r.out
    assert "NOT REPRODUCED" in r.out and "hint               the code that ran is not the recorded commit's" in r.out
    assert f"{manifest['version']} was not reproduced" in r.err


def test_lineage_refuses_to_prove_from_a_tampered_log(fork, tmp_path):
    repo, version = fork["repo"], fork["version"]
    segment = next((repo / "metadata/audit").glob("entries-*.jsonl"))
    original = segment.read_bytes()
    lines = original.split(b"\n")
    at = next(i for i, line in enumerate(lines) if b'"type":"promotion"' in line and version.encode() in line)
    try:
        lines[at] = lines[at].replace(b'"reason":"', b'"reason":"X', 1)
        segment.write_bytes(b"\n".join(lines))
        r = run(repo, "lineage", version, "--proof-out", str(tmp_path / "p.json"))
        assert r.code == 1
        assert "do not match checkpoint" in r.err and "mlops audit verify" in r.err
        assert not (tmp_path / "p.json").exists()
    finally:
        segment.write_bytes(original)
    assert run(repo, "lineage", version).code == 0


def test_reproduce_reads_a_data_file_outside_the_repository_where_it_is(tmp_path):
    from mlops import synthetic

    data = tmp_path / "elsewhere" / "train.csv"
    data.parent.mkdir(parents=True)
    synthetic.generate(4000, 3).to_csv(data, index=False, lineterminator="\n")
    repo = with_code(tmp_path / "local", dataset={"source": "local", "local": {"path": str(data)}})
    manifest = train(repo, "--no-tracking", types="logistic_regression")
    r = run(repo, "reproduce", manifest["version"], "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["reproduced"] is True


def test_proof_out_that_is_a_directory_is_one_line_and_nothing_is_written(fork, tmp_path):
    from tests.support.repo import tree_snapshot

    repo, version = fork["repo"], fork["version"]
    folder = tmp_path / "proofs"
    folder.mkdir()
    before = tree_snapshot(repo)
    r = run(repo, "lineage", version, "--proof-out", str(folder))
    assert r.code == 2
    assert r.err == f"error: --proof-out: {folder} is a directory; name a file, e.g. {folder / 'out.json'}\n"
    assert list(folder.iterdir()) == [] and tree_snapshot(repo) == before


def test_reproduce_keep_naming_a_file_is_one_line(fork, tmp_path):
    from tests.support.repo import tree_snapshot

    repo, version = fork["repo"], fork["version"]
    existing = tmp_path / "notes.txt"
    existing.write_text("mine")
    before = tree_snapshot(repo)
    r = run(repo, "reproduce", version, "--keep", str(existing))
    assert r.code == 2
    assert r.err == f"error: --keep: {existing} is a file; pass a new folder\n"
    assert existing.read_text() == "mine" and tree_snapshot(repo) == before
