"""`mlops train --shard I/N --out DIR` and `mlops gate --candidates DIR…` (mlops/shards.py), in-process studies.

Shards sharing studies on PostgreSQL, with a real `mlflow server`: tests/test_services.py."""

import json
import shutil

import pytest

from tests.support.cli import run
from tests.support.repo import make_repo, tree_snapshot

FAST = {
    "dataset": {"synthetic": {"rows": 2000, "seed": 11}},
    "training": {"bootstrap_iterations": 0},
    "training_schedule": {"datasets": {"minimum_samples": 1000}},
}


@pytest.mark.parametrize("spec", ["3/2", "0/0", "1/0", "x"])
def test_a_bad_shard_spec_is_one_line_exit_2(tmp_path, spec):
    repo = make_repo(tmp_path / "r", **FAST)
    before = tree_snapshot(repo)
    r = run(repo, "train", "--no-download", "--shard", spec, "--out", str(tmp_path / "out"))
    assert r.code == 2
    assert len(r.err.strip().splitlines()) == 1 and "--shard" in r.err and "1 <= I <= N" in r.err
    assert tree_snapshot(repo) == before and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_shards_and_fan_in_gate_promote_what_one_process_does(tmp_path):
    """Two shards (in-process studies: the types are dealt) then `mlops gate --candidates`: the same type is
    promoted as by one `mlops train` on the same budget; a tampered file is refused before anything is written."""
    types = "logistic_regression,hist_gradient_boosting"
    flags = ("--no-download", "--no-tracking", "--hpo", "--trials", "3", "--model-types", types)
    one = make_repo(tmp_path / "one", **FAST)
    r = run(one, "train", *flags)
    assert r.code == 0, r.err
    single = json.loads((one / "models/current/manifest.json").read_text())

    repo = make_repo(tmp_path / "sharded", **FAST)
    outs = [tmp_path / "s1", tmp_path / "s2"]
    for i, out in enumerate(outs, 1):
        r = run(repo, "train", *flags, "--shard", f"{i}/2", "--out", str(out))
        assert r.code == 0, r.err
        assert not (repo / "models/current").exists()  # a shard promotes nothing
    records = [json.loads((out / "shard.json").read_text()) for out in outs]
    assert [[c["model_type"] for c in rec["candidates"]] for rec in records] == [
        ["logistic_regression"],
        ["hist_gradient_boosting"],
    ]

    tampered = tmp_path / "tampered"
    shutil.copytree(outs[1], tampered)
    model = next(tampered.rglob("model.skops"))
    model.write_bytes(model.read_bytes() + b"\0")
    before = tree_snapshot(repo)
    bad = run(repo, "gate", "--no-download", "--no-tracking", "--candidates", str(outs[0]), str(tampered))
    assert bad.code == 2
    assert len(bad.err.strip().splitlines()) == 1 and str(model) in bad.err and "sha256" in bad.err
    assert tree_snapshot(repo) == before

    g = run(repo, "gate", "--no-download", "--no-tracking", "--candidates", *map(str, outs))
    assert g.code == 0, g.err
    current = json.loads((repo / "models/current/manifest.json").read_text())
    assert current["model_type"] == single["model_type"]
    assert current["hpo"]["trials"] == 3 and current["hpo"]["worker"] in ("1/2", "2/2")
    gates = sorted((repo / "metadata/gates").glob("*.json"))
    assert len(gates) == 2  # gate records once, for both shards' candidates
    for path in gates:
        record = json.loads(path.read_text())
        assert record["candidate"]["scored_on"]["split"] == "test" and record["hpo"]["best_cv"] is not None
