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


@contextlib.contextmanager
def failing_proxy(s3: S3Server, fail: Any) -> Iterator[str]:
    """A loopback HTTP proxy in front of the S3 server that answers 500 to every request `fail(method, path)`
    picks and forwards the rest; yields its endpoint URL (set it as AWS_ENDPOINT_URL)."""
    import http.client
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def forward(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(size) if size else b""
            if fail(self.command, self.path):
                status, headers, data = 500, [], b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
            else:
                conn = http.client.HTTPConnection("127.0.0.1", s3.port, timeout=60)
                hop = ("transfer-encoding", "expect", "connection")  # the body is forwarded whole, with its length
                headers = {k: v for k, v in self.headers.items() if k.lower() not in hop}
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                status, headers, data = answer.status, answer.getheaders(), answer.read()
                conn.close()
            self.send_response(status)
            for key, value in headers:
                if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = forward

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
