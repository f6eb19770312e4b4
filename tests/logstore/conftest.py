from __future__ import annotations

import itertools

import pytest

from mlops.logstore import open_uri
from tests.support.moto_s3 import s3_server

_names = itertools.count()


@pytest.fixture(scope="module")
def s3():
    """One moto S3 server on loopback per test module."""
    with s3_server() as server:
        yield server


@pytest.fixture
def s3_env(s3, monkeypatch):
    s3.use(monkeypatch)
    return s3


@pytest.fixture(params=["local", "s3"])
def any_store(request, tmp_path):
    """(store, list of the part files it holds) on the local-folder backend and on S3 (moto)."""
    if request.param == "local":
        store = open_uri("store", tmp_path)
        root = tmp_path / "store"
        return store, lambda: sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    s3 = request.getfixturevalue("s3_env")
    bucket = s3.bucket(f"logs-{next(_names)}")
    store = open_uri(f"s3://{bucket}/prod", tmp_path)
    # pyarrow leaves an empty "folder/" marker object when it deletes a folder's last file: not a part
    return store, lambda: [k.removeprefix("prod/") for k in s3.keys(bucket) if not k.endswith("/")]
