"""An S3 server on loopback (moto) for tests of the log store's object-store backend.

`s3_server` is a context manager yielding an S3Server; `use(monkeypatch)` points AWS_* at it (and
hides the caller's own AWS settings); `bucket(name)` creates a bucket; `keys(bucket)` lists it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class S3Server:
    server: Any
    endpoint: str
    port: int

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
        }  # fmt: skip

    def use(self, monkeypatch: Any) -> None:
        for key in list(os.environ):
            if key.startswith("AWS_"):
                monkeypatch.delenv(key, raising=False)
        for key, value in self.env().items():
            monkeypatch.setenv(key, value)

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip

    def bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        return sorted(o["Key"] for o in self.client().list_objects_v2(Bucket=bucket).get("Contents", []))

    def stop(self) -> None:
        self.server.stop()

    def restart(self) -> None:
        """Start again on the same port; moto keeps its buckets in this process, so they are still there."""
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = S3Server(server, f"http://{host}:{port}", port)
    try:
        yield s3
    finally:
        with contextlib.suppress(Exception):
            s3.server.stop()
