"""The outbox: alert actions that were not delivered, one JSON file each in metadata/alerts/outbox/.

`delivery` queues an action here when there is no token or GitHub fails, and `delivery.flush`
sends the queue later; a delivered action drops the older queued ones for its fingerprint.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

from mlops import jsonio
from mlops.alerts.client import Target, scrub
from mlops.alerts.model import FINGERPRINT_RE, Alert
from mlops.errors import BadInput


def outbox_dir(repo: Any) -> Path:
    return repo.alerts_dir / "outbox"


def queue(repo: Any, entry: dict[str, Any], target: Target) -> Path:
    """Write one action, stamped with the time and run key and its error scrubbed; return its path."""
    now = jsonio.utc_now()
    entry = {**entry, "queued_at": jsonio.format_utc(now), "queued_ns": time.time_ns(), "run_key": target.run_key}
    if entry.get("error"):
        entry["error"] = scrub(entry["error"], target.token)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", entry["fingerprint"])[:80]
    path = outbox_dir(repo) / f"{now.strftime('%Y%m%dT%H%M%SZ')}-{slug}-{uuid.uuid4().hex[:6]}.json"
    jsonio.write_json(path, entry)
    return path


def read_outbox(repo: Any) -> list[tuple[Path, dict[str, Any]]]:
    """Every queued entry, validated (BadInput names a broken file before anything is sent), oldest first."""
    entries = []
    folder = outbox_dir(repo)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = jsonio.read_json(path, "outbox entry")
        where = repo.rel(path)
        if not isinstance(data, dict) or data.get("action") not in {"raise", "resolve"}:
            raise BadInput(f"{where}: /action", "expected raise or resolve", "fix or delete the file")
        if data["action"] == "raise":
            Alert.from_dict(data.get("alert"), f"{where}: /alert")
        elif not isinstance(data.get("reason"), str) or not FINGERPRINT_RE.match(str(data.get("fingerprint"))):
            raise BadInput(f"{where}: /fingerprint", "a resolve entry needs fingerprint and reason", "fix or delete it")
        entries.append((path, data))
    entries.sort(key=lambda e: (e[1].get("queued_ns", 0), e[0].name))
    return entries


def drop_queued(repo: Any, fingerprint: str, upto_ns: int) -> int:
    """A delivered action supersedes every older queued one for the same fingerprint."""
    dropped = 0
    folder = outbox_dir(repo)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = jsonio.read_json(path, "outbox entry")
        except BadInput:
            continue  # a broken entry is reported by the next flush, not by a delivery that succeeded
        if isinstance(data, dict) and data.get("fingerprint") == fingerprint and data.get("queued_ns", 0) <= upto_ns:
            path.unlink(missing_ok=True)
            dropped += 1
    return dropped


def raise_entry(alert: Alert, body: str, why: str) -> dict[str, Any]:
    return {
        "action": "raise",
        "fingerprint": alert.fingerprint,
        "alert": alert.to_dict(),
        "title": alert.clean_title(),
        "labels": alert.labels(),
        "markdown": body,
        "error": why,
    }
