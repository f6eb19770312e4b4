"""The window monitoring and canary analysis read: the store's parts plus the legacy log files, each row once."""

import datetime as dt

import pytest

from mlops import config, predlog
from mlops.errors import BadInput
from mlops.logstore import open_uri
from mlops.logstore.window import read_logs
from mlops.repo import Repo
from tests.logstore.support import feedback, prediction
from tests.support.repo import make_repo


def at(hour: int) -> dt.datetime:
    return dt.datetime(2026, 3, 1, hour, tzinfo=dt.UTC)


@pytest.fixture
def cfg(tmp_path):
    return config.load(Repo.at(make_repo(tmp_path / "repo")))


def test_store_and_log_files_are_read_together_and_a_row_in_both_counts_once(cfg):
    store = open_uri(cfg.store.uri, cfg.repo.root)
    (part,) = store.write("predictions", [prediction(1, "2026-03-01T01:00:00Z"), prediction(2, "2026-03-01T01:05:00Z")])
    predlog.append_predictions(cfg.repo, [prediction(2, "2026-03-01T01:05:00Z"), prediction(3, "2026-03-01T01:10:00Z"),
                                          prediction(3, "2026-03-01T01:10:00Z", role="shadow")])  # fmt: skip
    got = read_logs(cfg, "predictions", at(1), at(2))
    assert [(r["request_id"], r["role"]) for r in got.records] == [
        ("r1", "production"), ("r2", "production"), ("r3", "production"), ("r3", "shadow"),
    ]  # fmt: skip
    assert got.files == [str(cfg.repo.root / "datasets/production/store" / part.path),
                         str(cfg.repo.production_logs / "predictions-20260301.jsonl")]  # fmt: skip
    assert read_logs(cfg, "predictions", at(2), None).records == []


def test_feedback_from_both_sources(cfg):
    open_uri(cfg.store.uri, cfg.repo.root).write("feedback", [feedback(1, 1, "2026-03-01T03:00:00Z")])
    predlog.append_feedback(cfg.repo, [feedback(1, 1, "2026-03-01T03:00:00Z"), feedback(2, 0, "2026-03-01T04:00:00Z")])
    got = read_logs(cfg, "feedback", at(1), None)
    assert [(r["request_id"], r["label"]) for r in got.records] == [("r1", 1), ("r2", 0)]


def test_a_malformed_part_is_refused_or_skipped_as_on_malformed_says(cfg):
    folder = cfg.repo.root / "datasets/production/store/kind=predictions/date=2026-03-01/hour=01"
    folder.mkdir(parents=True)
    (folder / f"part-20260301T010000Z-{'b' * 32}.parquet").write_bytes(b"junk")
    with pytest.raises(BadInput, match=r"hour=01/part-20260301T010000Z-b+\.parquet: not a readable Parquet part"):
        read_logs(cfg, "predictions", at(1), at(2))
    got = read_logs(cfg, "predictions", at(1), at(2), on_malformed="skip")
    assert got.records == [] and len(got.skipped) == 1 and "not a readable Parquet part" in got.skipped[0]
