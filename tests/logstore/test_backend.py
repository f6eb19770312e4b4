"""Backends: which URIs open, and every way a store cannot be reached is one line (exit 2), nothing written."""

import pytest

from mlops.errors import EXIT_BAD_INPUT, BadInput
from mlops.logstore import open_uri
from mlops.logstore.backend import open_backend
from tests.logstore.support import prediction


@pytest.mark.parametrize("uri", ["ftp://host/logs", "hdfs://nn/logs", "mock://x"])
def test_an_unknown_scheme_names_the_setting(tmp_path, uri):
    with pytest.raises(BadInput, match=r"^config/store.json: /uri: .* has the scheme \w+://, which the log store") as e:
        open_uri(uri, tmp_path)
    assert e.value.exit_code == EXIT_BAD_INPUT and "\n" not in str(e.value)


def test_local_folders_relative_absolute_and_file_uri(tmp_path):
    assert open_backend("a/b", tmp_path).base == str(tmp_path / "a/b")
    assert open_backend(str(tmp_path / "c"), tmp_path).base == str(tmp_path / "c")
    file_uri = open_backend((tmp_path / "d").as_uri(), tmp_path)
    assert file_uri.local and file_uri.base == str(tmp_path / "d")
    store = open_uri((tmp_path / "d").as_uri(), tmp_path)
    store.write("predictions", [prediction(1, "2026-03-01T01:00:00Z")])
    assert len(list((tmp_path / "d").rglob("part-*.parquet"))) == 1


def test_az_needs_the_account_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("AZURE_STORAGE_ACCOUNT_NAME", raising=False)
    with pytest.raises(
        BadInput, match=r"^config/store.json: /uri: 'az://logs/prod' needs the storage account in AZURE"
    ):
        open_uri("az://logs/prod", tmp_path)


def test_a_bucketless_uri_is_refused(tmp_path):
    with pytest.raises(BadInput, match=r"names no bucket"):
        open_uri("gs://", tmp_path)


def test_a_local_store_that_is_a_file_is_unreachable(tmp_path):
    (tmp_path / "store").write_text("x")
    store = open_uri("store", tmp_path, where="--store")
    with pytest.raises(BadInput, match=r"^--store: the log store store is a file, not a folder"):
        store.check_reachable()


def test_a_missing_bucket_is_unreachable_for_check_read_and_write(tmp_path, s3_env):
    store = open_uri("s3://no-such-bucket/prod", tmp_path)
    expect = r"^config/store.json: /uri: the log store s3://no-such-bucket/prod cannot be reached"
    with pytest.raises(BadInput, match=expect + r" \(bucket 'no-such-bucket' does not exist\)"):
        store.check_reachable()
    with pytest.raises(BadInput, match=expect):
        store.read("predictions")
    with pytest.raises(BadInput, match=expect):
        store.write("predictions", [prediction(1, "2026-03-01T01:00:00Z")])
    assert "no-such-bucket" not in [b["Name"] for b in s3_env.client().list_buckets()["Buckets"]]


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow  # pyarrow retries a refused connection for ~6 s per call
def test_a_closed_port_is_unreachable_for_check_and_read(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    for key, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    store = open_uri("s3://logs/prod", tmp_path)
    for call in (store.check_reachable, lambda: store.read("feedback")):
        with pytest.raises(BadInput, match=r"^config/store.json: /uri: the log store s3://logs/prod cannot be reached"
                                           r".*Could not connect") as e:  # fmt: skip
            call()
        assert "\n" not in str(e.value)


@pytest.mark.slow  # pyarrow retries a refused connection for ~6 s
def test_a_write_while_the_server_is_down_leaves_nothing(tmp_path, s3_env):
    bucket = s3_env.bucket("down-then-up")
    store = open_uri(f"s3://{bucket}/prod", tmp_path)
    s3_env.stop()
    try:
        with pytest.raises(BadInput, match=r"cannot be reached \(s3://down-then-up/prod/kind=predictions/"):
            store.write("predictions", [prediction(1, "2026-03-01T01:00:00Z")])
    finally:
        s3_env.restart()
    assert s3_env.keys(bucket) == []


@pytest.mark.slow  # a 25 MB upload, and pyarrow retries the failing piece for ~6 s
def test_an_upload_that_fails_half_way_leaves_no_object(tmp_path, s3_env, monkeypatch):
    """pyarrow uploads a large part in pieces (multipart); when a piece fails it never completes the upload,
    so no object appears although the pieces before and after it were stored."""
    import os

    from tests.support.moto_s3 import failing_proxy

    bucket = s3_env.bucket("half-way")
    seen = []

    def second_piece(method, path):
        seen.append((method, path))
        return method == "PUT" and "partNumber=2&" in path

    with failing_proxy(s3_env, second_piece) as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        backend = open_backend(f"s3://{bucket}/prod", tmp_path)
        with pytest.raises(BadInput, match=r"cannot be reached \(s3://half-way/prod/kind=predictions/.*UploadPart"):
            backend.write_whole("kind=predictions/date=2026-03-01/hour=01/part-x.parquet", os.urandom(25 << 20))
    assert any("partNumber=1&" in path for _, path in seen)  # pieces were uploaded ...
    assert s3_env.keys(bucket) == []  # ... and yet there is no object
