"""JSON over loopback HTTP for the tests of `mlops serve`: (status, body) whatever the status."""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def call(url: str, body: object | None = None, timeout: float = 60) -> tuple[int, dict]:
    """GET `url`, or POST `body` as JSON when given; an HTTP error answer is returned, not raised."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@contextlib.contextmanager
def serving(repo: Path, **options: Any) -> Iterator[Any]:
    """`mlops.serving_http.make_server` (with `options`) on a free port, serving from a thread until the
    block ends; then shut down and closed (which drains)."""
    from mlops.repo import Repo
    from mlops.serving_http import make_server

    server = make_server(Repo.at(repo), port=0, **options)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
