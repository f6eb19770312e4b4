"""The log store: production predictions and feedback as immutable Parquet parts outside git
(docs/production-data.md). `open_store(cfg)` opens config/store.json's store; `open_uri` any URI."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlops.logstore.layout as layout
import mlops.logstore.schema as schema
from mlops import jsonio
from mlops.errors import BadInput
from mlops.logstore.backend import WHERE, Backend, open_backend

MALFORMED_FIX = "move the file out of the store: a partition folder holds only parts the store wrote"


@dataclass(frozen=True)
class Part:
    path: str  # relative to Store.uri: kind=<kind>/date=YYYY-MM-DD/hour=HH/part-<stamp>-<uuid>.parquet
    sha256: str  # of the part's bytes
    rows: int
    kind: str
    date: str
    hour: int


@dataclass
class Scan:
    """What one read of the store found."""

    records: list[dict]
    parts: list[Part]  # every part read, in order
    skipped: list[str]  # "part[: row n]: problem", with on_malformed "skip"
    outside_window: int = 0  # rows of the window's partitions outside [since, until)


class Store:
    """Write and read one store. Parts are never changed once written; a read lists only the
    date=/hour= folders that overlap its window and opens only the parts inside them."""

    def __init__(
        self, backend: Backend, *, feature_types: dict[str, str] | None = None, part_max_rows: int | None = None
    ):
        self.backend = backend
        self.uri = backend.uri
        self.feature_types = dict(feature_types or {})
        self.part_max_rows = part_max_rows

    def location(self, part: Part | str) -> str:
        """The full address of a part (its Part or its path relative to the store)."""
        return self.backend.location(part.path if isinstance(part, Part) else part)

    def check_reachable(self) -> None:
        self.backend.check_reachable()

    # ------------------------------------------------------------------ write

    def write(self, kind: str, records: list[dict]) -> list[Part]:
        """Check every record, then write one part per UTC (date, hour) of their times (more when a
        group exceeds part_max_rows, or feedback mixes integer and text labels). A write that fails
        part way removes the parts it wrote before raising."""
        _check_kind(kind)
        groups: dict[tuple[str, int], list[dict]] = {}
        for i, rec in enumerate(records):
            problem = schema.check(kind, rec)
            if problem:
                raise BadInput(f"{kind} record {i}", problem, "fix the record before logging it")
            groups.setdefault(layout.hour_of(jsonio.parse_utc(str(rec["time"]))), []).append(rec)
        payloads = []
        for (date, hour), group in sorted(groups.items()):
            for chunk in self._chunks(kind, group):
                table = schema.to_table(kind, chunk, self.feature_types)
                payloads.append((date, hour, len(chunk), _parquet_bytes(table)))
        written: list[Part] = []
        now = jsonio.utc_now()
        try:
            for date, hour, rows, payload in payloads:
                rel = f"{layout.partition(kind, date, hour)}/{layout.part_name(now)}"
                self.backend.write_whole(rel, payload)
                written.append(Part(rel, hashlib.sha256(payload).hexdigest(), rows, kind, date, hour))
        except BaseException:
            for part in written:
                self.backend.delete(part.path)
            raise
        return written

    def _chunks(self, kind: str, group: list[dict]) -> list[list[dict]]:
        lists = schema.label_groups(group) if kind == "feedback" else [group]
        step = self.part_max_rows or max(len(group), 1)
        return [one[i : i + step] for one in lists for i in range(0, len(one), step)]

    # ------------------------------------------------------------------ read

    def partitions(self, kind: str, since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[str]:
        """The hour folders (relative paths) of `kind` that overlap [since, until), oldest first."""
        _check_kind(kind)
        dates, _ = self.backend.listdir(layout.kind_dir(kind))
        out = []
        for folder in dates:
            date = layout.date_of(folder)
            if date is None or not layout.overlaps(date, None, since, until):
                continue
            hours, _ = self.backend.listdir(f"{layout.kind_dir(kind)}/{folder}")
            for sub in hours:
                hour = layout.hour_in(sub)
                if hour is not None and layout.overlaps(date, hour, since, until):
                    out.append(layout.partition(kind, date, hour))
        return out

    def _part_paths(self, kind: str, since: dt.datetime | None, until: dt.datetime | None) -> list[str]:
        paths = []
        for folder in self.partitions(kind, since, until):
            _, files = self.backend.listdir(folder)
            paths += [f"{folder}/{name}" for name in files if layout.is_part(name)]
        return paths

    def parts(self, kind: str, since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[Part]:
        """The parts of the partitions overlapping [since, until), with each one's sha256 and rows."""
        out = []
        for rel in self._part_paths(kind, since, until):
            payload = self.backend.read_bytes(rel)
            table = self._table(kind, rel, payload)
            date, hour = _date_hour(rel)
            out.append(Part(rel, hashlib.sha256(payload).hexdigest(), table.num_rows, kind, date, hour))
        return out

    def read(self, kind: str, since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[dict]:
        """Records with since <= time < until from the window's parts, each row once (a row written
        twice, e.g. re-shipped after a crash, is read once: predictions by (request_id, role),
        feedback by (request_id, time, label)). A malformed part is refused, naming it."""
        return self.scan(kind, since, until).records

    def scan(
        self,
        kind: str,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        on_malformed: str = "refuse",
    ) -> Scan:
        """`read` with the parts read (sha256 and rows, for lineage) and, with on_malformed "skip",
        the malformed parts and rows skipped instead of refused."""
        lo = jsonio.format_utc(since) if since else None
        hi = jsonio.format_utc(until) if until else None
        out = Scan([], [], [])
        seen: set[tuple] = set()
        for rel in self._part_paths(kind, since, until):
            payload = self.backend.read_bytes(rel)
            try:
                table = self._table(kind, rel, payload)
            except BadInput as exc:
                if on_malformed != "skip":
                    raise
                out.skipped.append(str(exc))
                continue
            date, hour = _date_hour(rel)
            out.parts.append(Part(rel, hashlib.sha256(payload).hexdigest(), table.num_rows, kind, date, hour))
            for i, rec in enumerate(schema.to_records(kind, table)):
                problem = schema.check(kind, rec)
                if problem:
                    where = f"{self.location(rel)}: row {i + 1}"
                    if on_malformed != "skip":
                        raise BadInput(where, f"malformed log row: {problem}", MALFORMED_FIX)
                    out.skipped.append(f"{where}: {problem}")
                    continue
                if (lo and rec["time"] < lo) or (hi and rec["time"] >= hi):
                    out.outside_window += 1
                    continue
                key = dedupe_key(kind, rec)
                if key not in seen:
                    seen.add(key)
                    out.records.append(rec)
        return out

    def _table(self, kind: str, rel: str, payload: bytes) -> Any:
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(io.BytesIO(payload))
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a file that is not Parquet
            reason = " ".join(str(exc).split())[:160]
            raise BadInput(self.location(rel), f"not a readable Parquet part ({reason})", MALFORMED_FIX) from None
        problem = schema.problem(kind, table)
        if problem:
            raise BadInput(self.location(rel), f"not a {kind} part: it {problem}", MALFORMED_FIX)
        return table


def dedupe_key(kind: str, rec: dict) -> tuple:
    """What makes two records the same row: predictions (request_id, role), feedback (request_id, time, label)."""
    if kind == "predictions":
        return (str(rec["request_id"]), rec["role"])
    return (str(rec["request_id"]), jsonio.format_utc(jsonio.parse_utc(str(rec["time"]))), str(rec["label"]))


def _check_kind(kind: str) -> None:
    if kind not in layout.KINDS:
        raise ValueError(f"log store kind {kind!r} is not one of {', '.join(layout.KINDS)}")


def _date_hour(rel: str) -> tuple[str, int]:
    _, date_dir, hour_dir, _ = rel.split("/")
    return date_dir.removeprefix("date="), int(hour_dir.removeprefix("hour="))


def _parquet_bytes(table: Any) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    return buffer.getvalue().to_pybytes()


# ---------------------------------------------------------------------------- opening


def open_uri(
    uri: str,
    root: Path,
    where: str = WHERE,
    *,
    feature_types: dict[str, str] | None = None,
    part_max_rows: int | None = None,
) -> Store:
    """The store at `uri` (a local folder relative to `root`, file://, s3://, gs://, az://).
    Unknown scheme: BadInput at `where`. Nothing is contacted until the first call."""
    return Store(open_backend(uri, Path(root), where), feature_types=feature_types, part_max_rows=part_max_rows)


def open_store(cfg: Any) -> Store:
    """config/store.json's store; prediction features typed from the served models' manifests."""
    return open_uri(
        cfg.store.uri,
        cfg.repo.root,
        feature_types=served_feature_types(cfg.repo),
        part_max_rows=cfg.store.part_max_rows,
    )


def served_feature_types(repo: Any) -> dict[str, str]:
    """{feature: numeric | categorical} of models/current and the models models/deployment.json serves.

    Best effort: a model or state that cannot be read adds nothing (the types are then taken from the
    records' values, which gives the same types unless a feature is all null in a part)."""
    from mlops import deployment_state, registry

    manifests = []
    try:
        manifests.append(registry.current_manifest(repo))
        state = deployment_state.read_state(repo) or {}
        for role in ("production", "canary", "shadow"):
            version = (state.get(role) or {}).get("version")
            if version:
                manifests.append(jsonio.read_json(registry.find_version(repo, version) / registry.MANIFEST))
    except BadInput:
        pass
    out: dict[str, str] = {}
    for manifest in manifests:
        for name, kind in schema.feature_types(manifest).items():
            out.setdefault(name, kind)
    return out
