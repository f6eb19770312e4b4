"""JSON over loopback HTTP for the tests of `mlops serve`: (status, body) whatever the status."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


def call(url: str, body: object | None = None, timeout: float = 60) -> tuple[int, dict]:
    """GET `url`, or POST `body` as JSON when given; an HTTP error answer is returned, not raised."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
