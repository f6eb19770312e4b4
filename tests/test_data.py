"""Bad input for training: each one line naming file/field and fix, exit 2, nothing written."""

import json

import pandas as pd
import pytest

from mlops import config
from mlops.data import acquire, prepare, read_table
from mlops.errors import BadInput
from mlops.repo import Repo
from mlops.synthetic import CATEGORICAL, LABEL, NUMERIC, generate
from tests.support.cli import run
from tests.support.repo import make_repo, tree_snapshot


def local_repo(tmp_path, csv_text=None, frame=None, **dataset):
    repo = make_repo(
        tmp_path / "r",
        dataset={"source": "local", "local": {"path": "datasets/local/train.csv"}, **dataset},
    )
    target = repo / "datasets" / "local" / "train.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    if frame is not None:
        frame.to_csv(target, index=False)
    elif csv_text is not None:
        target.write_text(csv_text)
    return repo


def assert_refused(repo, match, *extra):
    before = tree_snapshot(repo)
    r = run(repo, "train", "--no-download", "--no-tracking", "--model-types", "logistic_regression", *extra)
    assert r.code == 2, r.err
    lines = [line for line in r.err.strip().splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1, r.err
    assert match in lines[0], lines[0]
    assert tree_snapshot(repo) == before
    return lines[0]


def test_synthetic_is_seeded_and_shaped():
    a, b = generate(2000, 3), generate(2000, 3)
    pd.testing.assert_frame_equal(a, b)
    assert len(NUMERIC) == 20 and len(CATEGORICAL) == 2
    assert 0.15 < a[LABEL].mean() < 0.45
    assert 0 < a.isna().mean().max() < 0.05
    assert not generate(2000, 4).equals(a)


def test_missing_file(tmp_path):
    repo = make_repo(tmp_path / "r", dataset={"source": "local", "local": {"path": "datasets/nope.csv"}})
    line = assert_refused(repo, "config/dataset.json: /local/path (datasets/nope.csv): the data file does not exist")
    assert "point /local/path at it" in line


def test_empty_csv(tmp_path):
    repo = local_repo(tmp_path, csv_text="")
    assert_refused(repo, "datasets/local/train.csv: the file is empty")


def test_header_only(tmp_path):
    repo = local_repo(tmp_path, csv_text="a,b,churned\n")
    assert_refused(repo, "datasets/local/train.csv")


def test_label_missing(tmp_path):
    frame = generate(300, 1).drop(columns=[LABEL])
    repo = local_repo(tmp_path, frame=frame)
    assert_refused(repo, "datasets/local/train.csv: column 'churned': the label column named by config/dataset.json")


def test_single_label_value(tmp_path):
    frame = generate(300, 1)
    frame[LABEL] = 0
    repo = local_repo(tmp_path, frame=frame)
    line = assert_refused(repo, "column 'churned': the label has a single value (0 in every row)")
    assert "a classifier needs both classes" in line


def test_stray_text_names_column_and_first_bad_row(tmp_path):
    frame = generate(300, 1)
    frame["income"] = frame["income"].astype(object)
    frame.loc[41, "income"] = "n/a?"
    frame.loc[90, "income"] = "oops"
    repo = local_repo(tmp_path, frame=frame)
    # row index 41 is file line 43 (line 1 is the header)
    assert_refused(repo, "column 'income' line 43: text 'n/a?' in a numeric column (2 such row(s))")


def test_unknown_model_type_lists_known(tmp_path):
    repo = make_repo(tmp_path / "r")
    before = tree_snapshot(repo)
    r = run(repo, "train", "--no-download", "--model-types", "logistic_regression,xgboost_9000")
    assert r.code == 2
    assert r.err.strip() == (
        "error: --model-types: unknown model type 'xgboost_9000'; known types: extra_trees, "
        "hist_gradient_boosting, logistic_regression, random_forest"
    )
    assert tree_snapshot(repo) == before


def test_all_empty_column_dropped_with_warning(tmp_path, capsys):
    frame = generate(3000, 2)
    frame["always_empty"] = None
    repo = local_repo(tmp_path, frame=frame)
    cfg = config.load(Repo.at(repo))
    ds = acquire(cfg, no_download=True)
    prepared = prepare(cfg, read_table(ds.path), "train.csv")
    assert "train.csv: column 'always_empty' is empty in every row and was dropped" in capsys.readouterr().err
    assert prepared.dropped_empty == ["always_empty"]
    assert "always_empty" not in prepared.X.columns


def test_kaggle_without_network_is_one_clear_line(tmp_path, monkeypatch):
    # No credentials in the environment: the real kaggle package refuses; we turn that into one line.
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    repo = make_repo(tmp_path / "r", dataset={"source": "kaggle"})
    before = tree_snapshot(repo)
    r = run(repo, "train", "--no-tracking", "--model-types", "logistic_regression")
    assert r.code == 2
    assert "config/dataset.json: /kaggle (blastchar/telco-customer-churn): Kaggle" in r.err
    assert "--no-download" in r.err
    assert "Traceback" not in r.err
    assert tree_snapshot(repo) == before


def test_kaggle_no_download_falls_back_to_synthetic_loudly(tmp_path):
    repo = make_repo(tmp_path / "r", dataset={"source": "kaggle", "synthetic": {"rows": 500}})
    cfg = config.load(Repo.at(repo))
    ds = acquire(cfg, no_download=True)
    assert ds.source == "synthetic"
    assert "no cached copy of kaggle:blastchar/telco-customer-churn" in ds.fallback_reason


def test_multiclass_label_refused(tmp_path):
    frame = generate(300, 1)
    frame[LABEL] = frame.index % 3
    repo = local_repo(tmp_path, frame=frame)
    assert_refused(repo, "the label has 3 values")


def test_prepare_rejects_missing_slice_column(tmp_path):
    frame = generate(300, 1).drop(columns=["plan"])
    repo = local_repo(tmp_path, frame=frame)
    cfg = config.load(Repo.at(repo))
    with pytest.raises(BadInput, match="column 'plan': named in config/dataset.json"):
        prepare(cfg, read_table(acquire(cfg, no_download=True).path), "train.csv")


def test_all_empty_column_is_recorded_in_the_manifest(tmp_path):
    frame = generate(3000, 2)
    frame["always_empty"] = None
    repo = local_repo(tmp_path, frame=frame)
    r = run(repo, "train", "--no-download", "--no-tracking", "--allow-invalid-data",
            "--model-types", "logistic_regression", "--force-retrain")  # fmt: skip
    assert r.code == 0, r.err
    assert "column 'always_empty' is empty in every row and was dropped" in r.err
    manifest = json.loads(next((repo / "models").rglob("manifest.json")).read_text())
    assert manifest["features"]["dropped_empty"] == ["always_empty"]
    assert "always_empty" not in manifest["features"]["numeric"] + manifest["features"]["categorical"]


def test_unreadable_configured_file_is_one_line_exit_2(tmp_path, monkeypatch):
    # Root reads a chmod-000 file anyway, so the refusal the OS would give is simulated.
    from mlops import data as data_module

    repo = local_repo(tmp_path, "a,b,churned\n1,2,0\n")

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(data_module, "open", denied, raising=False)
    before = tree_snapshot(repo)
    for args in (("data", "validate", "--no-download"), ("data", "infer-schema", "--no-download")):
        r = run(repo, *args)
        assert r.code == 2, r.err
        assert r.err.strip() == (
            "error: datasets/local/train.csv: cannot be read (permission denied); fix the file's permissions"
        )
    assert tree_snapshot(repo) == before
    assert_refused(repo, "datasets/local/train.csv: cannot be read (permission denied)")


# Every OS error reading the data is one line naming the file, exit 2, nothing written.


def assert_validate_refused(repo, match, *args):
    before = tree_snapshot(repo)
    r = run(repo, "data", "validate", "--no-download", *args)
    assert r.code == 2, r.err
    assert r.err.strip().splitlines() == [r.err.strip()], r.err
    assert match in r.err, r.err
    assert tree_snapshot(repo) == before


@pytest.mark.parametrize("name", ["folder", "folder.csv", "folder.parquet"])
def test_validate_path_that_is_a_directory(tmp_path, name):
    repo = local_repo(tmp_path, "a,b,churned\n1,2,0\n")
    (repo / "datasets" / name).mkdir()
    (repo / "datasets" / name / "part-0.csv").write_text("a,b,churned\n1,2,0\n")
    assert_validate_refused(
        repo, f"error: datasets/{name}: is a directory, not a data file; point at the CSV or Parquet file inside it",
        "--path", f"datasets/{name}",
    )  # fmt: skip


def test_validate_configured_path_that_is_a_directory(tmp_path):
    repo = make_repo(tmp_path / "r", dataset={"source": "local", "local": {"path": "datasets/export.csv"}})
    (repo / "datasets" / "export.csv").mkdir(parents=True)
    assert_validate_refused(repo, "error: config/dataset.json: /local/path (datasets/export.csv): is a directory")
    assert_refused(repo, "config/dataset.json: /local/path (datasets/export.csv): is a directory")


def _parquet(repo):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = repo / "datasets" / "data.parquet"
    pq.write_table(pa.table({"a": [1, 2], "b": [3, 4], "churned": [0, 1]}), path)
    return path


def _denied(*args, **kwargs):
    raise PermissionError(13, "Permission denied", str(args[0]) if args else "")


def _vanished(*args, **kwargs):
    raise FileNotFoundError(2, "No such file or directory", str(args[0]) if args else "")


def test_validate_csv_without_permission(tmp_path, monkeypatch):
    # Root reads a chmod-000 file anyway, so the refusal the OS would give is simulated.
    from mlops import tabular

    repo = local_repo(tmp_path, "a,b,churned\n1,2,0\n")
    monkeypatch.setattr(tabular, "open", _denied, raising=False)
    assert_validate_refused(
        repo, "error: datasets/local/train.csv: cannot be read (permission denied); fix the file's permissions",
        "--path", "datasets/local/train.csv",
    )  # fmt: skip


def test_validate_parquet_without_permission(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    repo = local_repo(tmp_path)
    _parquet(repo)
    monkeypatch.setattr(pq, "read_table", _denied)
    assert_validate_refused(
        repo, "error: datasets/data.parquet: cannot be read (permission denied); fix the file's permissions",
        "--path", "datasets/data.parquet",
    )  # fmt: skip


def test_validate_csv_that_vanishes_while_read(tmp_path, monkeypatch):
    # The header was read, then the file went away before pyarrow opened it.
    import pyarrow.csv as pcsv

    repo = local_repo(tmp_path, "a,b,churned\n1,2,0\n")
    monkeypatch.setattr(pcsv, "read_csv", _vanished)
    assert_validate_refused(
        repo, "error: datasets/local/train.csv: the data file does not exist; fix the path or fetch the data again",
        "--path", "datasets/local/train.csv",
    )  # fmt: skip


def test_validate_parquet_that_vanishes_while_read(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    repo = local_repo(tmp_path)
    _parquet(repo)
    monkeypatch.setattr(pq, "read_table", _vanished)
    assert_validate_refused(
        repo, "error: datasets/data.parquet: the data file does not exist; fix the path or fetch the data again",
        "--path", "datasets/data.parquet",
    )  # fmt: skip


def test_validate_source_record_that_is_a_directory(tmp_path):
    repo = local_repo(tmp_path, "a,b,churned\n1,2,0\n")
    (repo / "datasets" / "local" / "train.csv.source.json").mkdir()
    assert_validate_refused(
        repo, "error: datasets/local/train.csv.source.json: is a directory", "--path", "datasets/local/train.csv"
    )


def test_records_of_the_other_sources_carry_no_production_keys(tmp_path):
    root = make_repo(tmp_path / "r", dataset={"synthetic": {"rows": 200, "seed": 1}})
    record = acquire(config.load(Repo.at(root)), no_download=True).record(root)
    assert "file_sha256" not in record and "production" not in record  # manifests of these sources unchanged
    assert record["source"] == "synthetic"


def test_the_production_source_needs_its_base_file_when_the_base_is_local(tmp_path):
    root = make_repo(tmp_path / "r")
    data = json.loads((root / "config/dataset.json").read_text())
    data.pop("local", None)
    data.update(source="production", production={"base_source": "local"})
    (root / "config/dataset.json").write_text(json.dumps(data))
    with pytest.raises(BadInput, match=r"^config/dataset.json: /: expected the key \"local\""):
        config.load(Repo.at(root))
