import json

from tests.support.cli import run
from tests.support.repo import make_repo, tree_snapshot


def test_shipped_config_is_valid(repo):
    r = run(repo, "config", "check")
    assert r.code == 0, r.err
    assert "config/training-schedule.json" in r.out


def test_seed_keys_and_defaults_are_kept(repo):
    data = json.loads((repo / "config" / "training-schedule.json").read_text())
    assert data["default_schedule"] == "0 2 * * 0"
    assert data["model_retention"] == {"candidates": "30d", "production": "365d"}
    assert data["performance_thresholds"] == {"accuracy_min": 0.85, "ece_max": 0.08, "drift_alert_threshold": 0.15}
    assert data["datasets"] == {"refresh_interval_days": 30, "minimum_samples": 10000}


def test_schema_violation_names_file_pointer_expected_and_found(tmp_path):
    repo = make_repo(tmp_path / "r", training_schedule={"performance_thresholds": {"accuracy_min": 1.5}})
    r = run(repo, "config", "check")
    assert r.code == 2
    line = r.err.strip()
    assert line.count("\n") == 0
    assert line == (
        "error: config/training-schedule.json: /performance_thresholds/accuracy_min: "
        "expected a number <= 1, found 1.5; fix config/training-schedule.json and run `mlops config check`"
    )


def test_wrong_type_and_missing_key(tmp_path):
    repo = make_repo(tmp_path / "r", dataset={"source": "ftp"})
    r = run(repo, "config", "check")
    assert r.code == 2
    assert 'config/dataset.json: /source: expected one of "local", "kaggle", "synthetic", found "ftp"' in r.err
    repo2 = make_repo(tmp_path / "r2")
    data = json.loads((repo2 / "config" / "training.json").read_text())
    del data["seed"]
    (repo2 / "config" / "training.json").write_text(json.dumps(data))
    r2 = run(repo2, "config", "check")
    assert r2.code == 2 and 'config/training.json: /: expected the key "seed", found it missing' in r2.err


def test_local_source_requires_local_block(tmp_path):
    repo = make_repo(tmp_path / "r", dataset={"source": "local"})
    data = json.loads((repo / "config" / "dataset.json").read_text())
    del data["local"]
    (repo / "config" / "dataset.json").write_text(json.dumps(data))
    r = run(repo, "config", "check")
    assert r.code == 2 and 'expected the key "local"' in r.err


def test_malformed_json_is_one_line_exit_2_and_nothing_written(tmp_path):
    repo = make_repo(tmp_path / "r")
    (repo / "config" / "training.json").write_text('{"seed": 1,,}')
    before = tree_snapshot(repo)
    r = run(repo, "train", "--no-download")
    assert r.code == 2
    assert r.err.startswith("error: config/training.json: malformed JSON at line 1 column 12")  # relative path
    assert tree_snapshot(repo) == before


def test_unknown_or_misspelt_key_is_refused_with_the_known_keys(tmp_path):
    repo = make_repo(tmp_path / "r", training={"notes": "hello"})
    r = run(repo, "config", "check")
    assert r.code == 2
    assert r.err.startswith(
        "error: config/training.json: /notes: unknown key (known here: $schema, bootstrap_iterations,"
    )
    assert r.err.rstrip().endswith("remove it, or add it to the schema if code reads it")

    repo = make_repo(tmp_path / "s", training_schedule={"performance_thresholds": {"acuracy_min": 0.9}})
    before = tree_snapshot(repo)
    r = run(repo, "train", "--no-download")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1
    assert "config/training-schedule.json: /performance_thresholds/acuracy_min: unknown key" in r.err
    assert "rename it to 'accuracy_min'" in r.err
    assert tree_snapshot(repo) == before


def test_train_refuses_a_config_that_breaks_its_schema_and_writes_nothing(tmp_path):
    repo = make_repo(tmp_path / "r", training_schedule={"performance_thresholds": {"ece_max": -0.1}})
    before = tree_snapshot(repo)
    r = run(repo, "train", "--no-download")
    assert r.code == 2
    assert r.err.strip().splitlines() == [
        "error: config/training-schedule.json: /performance_thresholds/ece_max: expected a number >= 0, "
        "found -0.1; fix config/training-schedule.json and run `mlops config check`"
    ]
    assert tree_snapshot(repo) == before
