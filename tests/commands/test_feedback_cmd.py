"""`mlops feedback ingest FILE`: checked labels into the log store; each bad input one line, exit 2, nothing written."""

from __future__ import annotations

import json
import re

import pytest

from mlops import config
from mlops.logstore import open_uri
from mlops.repo import Repo
from tests.commands.support import options, parse
from tests.logstore.support import prediction
from tests.support.cli import run
from tests.support.repo import make_repo

VERSION = "20260301T000000Z-logreg-0123abcd"


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A repo whose current model has the classes <=50K / >50K and whose store holds r1..r3 (01:00-01:20)."""
    root = make_repo(tmp_path / "repo")
    current = root / "models" / "current"
    current.mkdir(parents=True)
    manifest = {"version": VERSION, "label": {"name": "income", "classes": ["<=50K", ">50K"], "positive": ">50K"},
                "features": {"numeric": ["age"], "categorical": ["city"]}}  # fmt: skip
    (current / "manifest.json").write_text(json.dumps(manifest))
    records = [prediction(i, f"2026-03-01T01:{10 * (i - 1):02d}:00Z") | {"model_version": VERSION} for i in (1, 2, 3)]
    open_uri("datasets/production/store", root).write("predictions", records)
    monkeypatch.setenv("MLOPS_NOW", "2026-03-01T06:00:00Z")
    return root


def store(root):
    return open_uri("datasets/production/store", root)


def feedback_files(root):
    return sorted((root / "datasets/production/store").glob("kind=feedback/**/part-*.parquet"))


def refused(root, path) -> str:
    before = feedback_files(root)
    r = run(root, "feedback", "ingest", str(path))
    assert r.code == 2 and r.out == "", r
    (line,) = r.err.strip().splitlines()
    assert feedback_files(root) == before
    return line


def test_wiring():
    from mlops.commands import feedback_cmd

    assert options("feedback", "ingest") == {"--help"}
    args = parse("feedback", "ingest", "labels.csv")
    assert (args.func, args.file) == (feedback_cmd.run_ingest, "labels.csv")


def test_a_csv_of_labels_is_written_as_feedback_parts(repo, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("request_id,label,time\nr1,>50K,2026-03-01T02:00:00Z\nr2,0,\n")
    r = run(repo, "feedback", "ingest", str(path))
    assert r.code == 0, r.err
    assert len(r.out.splitlines()) == 2 and all(
        "kind=feedback/date=2026-03-01/hour=0" in line for line in r.out.split()
    )
    got = sorted(store(repo).read("feedback"), key=lambda rec: rec["request_id"])
    assert got == [{"request_id": "r1", "label": ">50K", "time": "2026-03-01T02:00:00Z"},
                   {"request_id": "r2", "label": 0, "time": "2026-03-01T06:00:00Z"}]  # fmt: skip


def test_a_parquet_file_without_times_is_stamped_now(repo, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "labels.parquet"
    pq.write_table(pa.table({"request_id": ["r3"], "label": [1]}), path)
    assert run(repo, "feedback", "ingest", str(path)).code == 0
    assert store(repo).read("feedback") == [{"request_id": "r3", "label": 1, "time": "2026-03-01T06:00:00Z"}]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("request_id,label\nr1,1\nr9,0\n",
         r"labels.csv: row 2: request id 'r9' is not a prediction logged in the store datasets/production/store "
         r"between 2026-02-22T06:00:00Z and 2026-03-01T06:00:00Z \(.*\); give feedback only for served requests"),
        ("request_id,label\nr1,maybe\n", r"labels.csv: row 1: label 'maybe' is not one of model "
                                          rf"{VERSION}'s classes \(0, 1, <=50K, >50K\)"),
        ("request_id,label\nr1,2\n", r"row 1: label '2' is not one of model"),
        ("request_id,label,time\nr2,1,2026-03-01T01:00:00Z\n",
         r"row 1: request id 'r2' is not a prediction logged in the store .* and 2026-03-01T01:00:00Z \(the"),
        ("request_id,label,time\nr1,1,2026-03-01T01:30:00Z\nr2,1,2026-03-01T01:05:00Z\n",
         r"row 2: feedback time 2026-03-01T01:05:00Z is before the prediction's 2026-03-01T01:10:00Z"),
        ("request_id,label,time\nr1,1,2026-03-09T01:00:00Z\n", r"row 1: request id 'r1' is not a prediction logged"),
        ("request_id,label,time\nr1,1,yesterday\n", r"row 1: time: 'yesterday' is not an ISO-8601 time"),
        ("request_id,label\nr1,1\nr1,0\n", r"row 2: request id 'r1' is also in row 1"),
        ("request_id,label\n,1\n", r"row 1: request_id is empty"),
        ("request_id,label\nr1,\n", r"row 1: label is empty"),
        ("request_id,labels\nr1,1\n", r"labels.csv: has no 'label' column"),
        ("request_id,label,score\nr1,1,0.5\n", r"labels.csv: has the unknown column\(s\) score"),
        ("request_id,label\n", r"labels.csv: has no rows"),
        ("request_id,label\nr1,1,extra\n", r"labels.csv: not a readable CSV file"),
    ],
)  # fmt: skip
def test_each_bad_row_is_one_line_and_nothing_is_written(repo, tmp_path, text, message):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    assert re.search(message, refused(repo, path))


def test_a_missing_file_and_a_file_that_is_not_parquet(repo, tmp_path):
    assert refused(repo, tmp_path / "nope.csv").endswith("nope.csv: does not exist; name the feedback file")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    assert "bad.parquet: not a readable Parquet file" in refused(repo, tmp_path / "bad.parquet")


def test_a_prediction_older_than_the_lookback_is_not_found_unless_it_is_raised(repo, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("request_id,label,time\nr1,1,2026-03-05T01:00:00Z\n")
    data = json.loads((repo / "config/store.json").read_text())
    (repo / "config/store.json").write_text(json.dumps({**data, "feedback_lookback_days": 1}))
    assert config.load(Repo.at(repo)).store.feedback_lookback_days == 1
    assert "between 2026-03-04T01:00:00Z and 2026-03-05T01:00:00Z" in refused(repo, path)
    (repo / "config/store.json").write_text(json.dumps({**data, "feedback_lookback_days": 7}))
    assert run(repo, "feedback", "ingest", str(path)).code == 0
    assert [r["request_id"] for r in store(repo).read("feedback")] == ["r1"]


def test_an_unknown_store_scheme_names_the_setting(repo, tmp_path):
    data = json.loads((repo / "config/store.json").read_text())
    (repo / "config/store.json").write_text(json.dumps({**data, "uri": "ftp://host/logs"}))
    path = tmp_path / "labels.csv"
    path.write_text("request_id,label\nr1,1\n")
    assert refused(repo, path).startswith("error: config/store.json: /uri: 'ftp://host/logs' has the scheme ftp://")


def test_a_missing_bucket_is_one_line(repo, tmp_path, monkeypatch):
    from tests.support.moto_s3 import s3_server

    data = json.loads((repo / "config/store.json").read_text())
    (repo / "config/store.json").write_text(json.dumps({**data, "uri": "s3://no-such-bucket/prod"}))
    path = tmp_path / "labels.csv"
    path.write_text("request_id,label\nr1,1\n")
    with s3_server() as s3:
        s3.use(monkeypatch)
        line = refused(repo, path)
    assert line.startswith("error: config/store.json: /uri: the log store s3://no-such-bucket/prod cannot be reached")
