import json
from pathlib import Path

import pytest

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
    expected = 'expected one of "local", "kaggle", "synthetic", "production", found "ftp"'
    assert f"config/dataset.json: /source: {expected}" in r.err
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


# --------------------------------------------------------------------- typed values, one default


def _section_classes():
    from mlops import config

    return [(name, cls) for name, (_attr, cls) in config.SECTIONS.items()]


def _check_one_default(cls, node, root, where, seen):
    import dataclasses
    import typing

    from mlops import config

    node = config._deref(node, root)
    props = {k for k in node.get("properties", {}) if k != "$schema"}
    names = {f.name for f in dataclasses.fields(cls)}
    assert names == props, f"{where}: fields {sorted(names ^ props)} are in only one of the class and the schema"
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, (
            f"{where}/{f.name}: a default in code; the schema's `default` is the only one"
        )
        sub = config._deref(node["properties"][f.name], root)
        tp = config._unwrap_optional(hints[f.name])
        optional = f.name not in node.get("required", ())
        nested = dataclasses.is_dataclass(tp)
        if optional and not nested and "default" not in sub:
            assert type(None) in typing.get_args(hints[f.name]), (
                f"{where}/{f.name}: optional without a schema default, so it must be typed `| None`"
            )
        if nested:
            _check_one_default(tp, sub, root, f"{where}/{f.name}", seen)
        elif typing.get_origin(tp) is tuple and dataclasses.is_dataclass(typing.get_args(tp)[0]):
            _check_one_default(typing.get_args(tp)[0], sub["items"], root, f"{where}/{f.name}[]", seen)
        seen.add(f"{where}/{f.name}")


def test_every_config_field_has_one_default_the_schemas(tmp_path):
    from mlops.jsonio import read_json

    seen: set[str] = set()
    schemas = Path(__file__).resolve().parents[1] / "config" / "schemas"
    for name, cls in _section_classes():
        schema = read_json(schemas / f"{name}.schema.json")
        _check_one_default(cls, schema, schema, f"config/{name}.json", seen)
    assert len(seen) > 80  # every file's fields were walked, nested ones included


def test_absent_config_files_take_the_schema_defaults(tmp_path):
    import dataclasses

    from mlops import config
    from mlops.repo import Repo

    repo = make_repo(tmp_path / "r")
    shipped = config.load(Repo(repo))
    for name in ("alerts", "deployment", "gitops", "monitoring", "validation"):
        (repo / "config" / f"{name}.json").unlink()
    bare = config.load(Repo(repo))
    # The shipped files spell out the schema's defaults, so removing them changes nothing.
    for attr in ("alerts", "deployment", "gitops", "monitoring", "validation"):
        assert dataclasses.asdict(getattr(bare, attr)) == dataclasses.asdict(getattr(shipped, attr)), attr
    assert bare.deployment.canary_analysis.min_requests == 200
    assert bare.validation.freshness.max_age_days is None  # follows training-schedule.json


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("61 2 * * 0", "minute '61' of '61 2 * * 0' is outside 0-59; use a value from 0 to 59"),
        ("0 2 * * 9", "day of week '9' of '0 2 * * 9' is outside 0-6; use a value from 0 to 6"),
        ("0 24 * * 0", "hour '24' of '0 24 * * 0' is outside 0-23; use a value from 0 to 23"),
    ],
)
def test_cron_out_of_range_is_refused(tmp_path, cron, message):
    repo = make_repo(tmp_path / "r", training_schedule={"default_schedule": cron})
    before = tree_snapshot(repo)
    r = run(repo, "config", "check")
    assert r.code == 2
    assert r.err.strip() == f"error: config/training-schedule.json: /default_schedule: {message}"
    assert tree_snapshot(repo) == before


def test_config_file_that_is_a_directory_is_one_line(tmp_path):
    repo = make_repo(tmp_path / "r")
    (repo / "config" / "alerts.json").unlink()
    (repo / "config" / "alerts.json").mkdir()
    before = tree_snapshot(repo)
    r = run(repo, "config", "check")
    assert r.code == 2
    assert r.err.strip() == "error: config/alerts.json: is a directory, not a config file; name the file itself"
    assert tree_snapshot(repo) == before
