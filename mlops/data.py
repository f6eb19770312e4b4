"""Data sources (local file, Kaggle, seeded synthetic, production logs) and turning a table into X, y.

Every source ends as a file on disk with a sidecar record of where it came from, so its
sha256 and provenance travel with every model trained on it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlops import gha, jsonio
from mlops.config import Config, SyntheticSource, resolve
from mlops.errors import BadInput

SIDECAR = ".source.json"


@dataclass(frozen=True)
class DatasetFile:
    path: Path
    sha256: str
    source: str  # local | kaggle | synthetic | production
    fetched_at: str | None = None  # when this copy was made (download or generation)
    updated_at: str | None = None  # the source's own last-updated time, when it has one
    detail: str = ""  # slug/file, path, or generator parameters
    fallback_reason: str | None = None  # why synthetic data stands in for the configured source
    # production only: the file's own sha256 (`sha256` is derived from the parts read) and the lineage
    file_sha256: str | None = None
    production: dict[str, Any] | None = None

    def record(self, repo_root: Path) -> dict[str, Any]:
        out = asdict(self)
        if self.source != "production":  # the records of the other sources stay as they were
            del out["file_sha256"], out["production"]
        try:
            out["path"] = self.path.resolve().relative_to(repo_root).as_posix()
        except ValueError:
            out["path"] = str(self.path)
        return out


def sha256_file(path: Path, where: str | None = None) -> str:
    """The file's sha256; an unreadable file is one BadInput line naming it (exit 2), not a traceback."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise BadInput.unreadable(where or str(path), exc, "check the path and the disk") from None
    return digest.hexdigest()


def _sidecar(path: Path) -> dict[str, Any]:
    side = path.with_name(path.name + SIDECAR)
    if side.exists():
        try:
            return jsonio.read_json(side)
        except BadInput:
            return {}
    return {}


def acquire(cfg: Config, *, no_download: bool, since: str | None = None, until: str | None = None) -> DatasetFile:
    """Resolve the configured source to a file on disk; never silent about falling back.

    `since`/`until` (UTC ISO-8601) are the production source's window; the other sources ignore them.
    """
    ds = cfg.dataset
    repo = cfg.repo
    if ds.source == "production":
        from mlops import production_data

        win = production_data.window(cfg, since, until)
        return _production(cfg, win, _base(cfg, no_download) if ds.production.mix_base else None)
    if ds.source == "local":
        path = resolve(repo, ds.local.path)
        if path.is_dir():
            raise BadInput(
                f"config/dataset.json: /local/path ({repo.rel(path)})",
                "is a directory, not a data file",
                "point /local/path at the CSV or Parquet file inside it",
            )
        if not path.is_file():
            raise BadInput(
                f"config/dataset.json: /local/path ({ds.local.path})",
                "the data file does not exist",
                "put the CSV/Parquet file there or point /local/path at it",
            )
        side = _sidecar(path)
        where = repo.rel(path)
        return DatasetFile(
            path, sha256_file(path, where), "local", side.get("fetched_at"), side.get("updated_at"), where
        )
    if ds.source == "kaggle":
        cached = repo.download_cache / "kaggle" / ds.kaggle.dataset.replace("/", "__") / ds.kaggle.file
        if no_download:
            if cached.is_file():
                side = _sidecar(cached)
                return DatasetFile(
                    cached, sha256_file(cached, repo.rel(cached)), "kaggle", side.get("fetched_at"),
                    side.get("updated_at"),
                    f"{ds.kaggle.dataset}/{ds.kaggle.file} (cached)",
                )  # fmt: skip
            reason = f"--no-download and no cached copy of kaggle:{ds.kaggle.dataset}/{ds.kaggle.file}"
            gha.warn(f"using the SYNTHETIC data set: {reason}")
            return _synthetic(cfg, fallback_reason=reason)
        return _download_kaggle(cfg, cached)
    return _synthetic(cfg)


def _base(cfg: Config, no_download: bool) -> tuple[dict[str, Any], Any]:
    """(record, table) of the production source's base data set: /production/base_source as configured."""
    from dataclasses import replace

    base = acquire(replace(cfg, dataset=replace(cfg.dataset, source=cfg.dataset.production.base_source)),
                   no_download=no_download)  # fmt: skip
    return base.record(cfg.repo.root), read_table(base.path, cfg.repo.rel(base.path))


def _production(cfg: Config, win: Any, base: tuple[dict[str, Any], Any] | None) -> DatasetFile:
    from mlops import production_data

    built = production_data.build(cfg, win, base)
    return DatasetFile(built.path, built.sha256, "production", built.fetched_at, built.updated_at, built.detail,
                       file_sha256=built.file_sha256, production=built.lineage)  # fmt: skip


def _synthetic(cfg: Config, fallback_reason: str | None = None) -> DatasetFile:
    from mlops import synthetic

    ds = cfg.dataset
    path = cfg.repo.download_cache / f"synthetic-{ds.synthetic.rows}-{ds.synthetic.seed}.csv"
    side_path = path.with_name(path.name + SIDECAR)
    side = _sidecar(path)
    if not path.is_file() or not side:
        frame = synthetic.generate(ds.synthetic.rows, ds.synthetic.seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        jsonio.atomic_write_bytes(path, frame.to_csv(index=False, lineterminator="\n").encode("utf-8"))
        side = {"fetched_at": jsonio.format_utc(jsonio.utc_now()), "source": "synthetic"}
        jsonio.write_json(side_path, side)
    detail = f"mlops.synthetic.generate(rows={ds.synthetic.rows}, seed={ds.synthetic.seed})"
    return DatasetFile(path, sha256_file(path), "synthetic", side.get("fetched_at"), None, detail, fallback_reason)


def _download_kaggle(cfg: Config, target: Path) -> DatasetFile:
    ds = cfg.dataset
    where = f"config/dataset.json: /kaggle ({ds.kaggle.dataset})"
    try:
        # `import kaggle` authenticates on import, prints to stdout and raises SystemExit
        # without credentials, so it is imported here and every failure is caught.
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            from kaggle.api.kaggle_api_extended import KaggleApi

            api = KaggleApi()
            api.authenticate()
            target.parent.mkdir(parents=True, exist_ok=True)
            api.dataset_download_file(ds.kaggle.dataset, ds.kaggle.file, path=str(target.parent), force=True)
    except BaseException as exc:  # noqa: BLE001 - SystemExit from kaggle's authenticate() included
        if isinstance(exc, KeyboardInterrupt):
            raise
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "credential" in text.lower() or "kaggle.json" in text or isinstance(exc, SystemExit):
            problem = "Kaggle credentials are missing or rejected"
        else:
            problem = f"Kaggle download failed ({text[:160]})"
        raise BadInput(
            where,
            problem,
            "set KAGGLE_USERNAME and KAGGLE_KEY (repository secrets in Actions), or run with --no-download "
            "to use the cached copy or the synthetic fallback",
        ) from None
    zipped = target.with_name(target.name + ".zip")
    if zipped.exists() and not target.exists():
        import zipfile

        with zipfile.ZipFile(zipped) as zf:
            zf.extract(target.name, target.parent)
        zipped.unlink()
    if not target.is_file():
        raise BadInput(where, f"the download did not contain {ds.kaggle.file}", "check /kaggle/file")
    updated = None
    try:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            meta = api.dataset_list(search=ds.kaggle.dataset.split("/")[1])
        for item in meta or []:
            if getattr(item, "ref", None) == ds.kaggle.dataset:
                when = getattr(item, "lastUpdated", None) or getattr(item, "last_updated", None)
                updated = jsonio.format_utc(when) if when is not None and hasattr(when, "astimezone") else when
    except BaseException:  # noqa: BLE001 - metadata is optional; freshness falls back to fetch time
        updated = None
    side = {"fetched_at": jsonio.format_utc(jsonio.utc_now()), "updated_at": updated, "source": "kaggle"}
    jsonio.write_json(target.with_name(target.name + SIDECAR), side)
    return DatasetFile(
        target, sha256_file(target), "kaggle", side["fetched_at"], updated, f"{ds.kaggle.dataset}/{ds.kaggle.file}"
    )


def locate(cfg: Config, record: dict[str, Any]) -> DatasetFile | None:
    """Find the exact data a model was trained on, from its manifest's dataset record.

    Looks at the recorded path first, then (for synthetic data) regenerates the recorded
    (rows, seed); returns None when no file with the recorded sha256 can be had offline.
    """
    want = record.get("sha256")
    path = resolve(cfg.repo, str(record.get("path", "")))
    if record.get("source") == "production":
        return _locate_production(cfg, record, path)
    if record.get("path") and path.is_file() and sha256_file(path) == want:
        side = _sidecar(path)
        return DatasetFile(path, want, str(record.get("source")), side.get("fetched_at"), side.get("updated_at"),
                           str(record.get("detail", "")))  # fmt: skip
    match = re.fullmatch(r"synthetic-(\d+)-(\d+)\.csv", Path(str(record.get("path", ""))).name)
    if record.get("source") == "synthetic" and match:
        from dataclasses import replace

        ds = replace(cfg.dataset, synthetic=SyntheticSource(rows=int(match[1]), seed=int(match[2])))
        found = _synthetic(replace(cfg, dataset=ds))
        return found if found.sha256 == want else None
    return None


def _locate_production(cfg: Config, record: dict[str, Any], path: Path) -> DatasetFile | None:
    """The recorded file when its bytes match, else the data set built again from the recorded window
    (and base) when the store still holds exactly the recorded parts; None otherwise."""
    from mlops import production_data

    want, lineage = record.get("sha256"), record.get("production") or {}
    if record.get("path") and path.is_file() and sha256_file(path) == record.get("file_sha256"):
        side = _sidecar(path)
        return DatasetFile(path, str(want), "production", side.get("fetched_at"), side.get("updated_at"),
                           str(record.get("detail", "")), file_sha256=record.get("file_sha256"),
                           production=lineage)  # fmt: skip
    win = production_data.window_of(record)
    if win is None:
        return None
    base = None
    if lineage.get("base"):
        found = locate(cfg, lineage["base"])
        if found is None:
            return None
        base = (found.record(cfg.repo.root), read_table(found.path, cfg.repo.rel(found.path)))
    try:
        built = _production(cfg, win, base)
    except (BadInput, production_data.WaitingForLabels):
        return None
    return built if built.sha256 == want else None


def read_table(path: Path, where: str | None = None) -> Any:
    """Read CSV or Parquet into a pyarrow Table; every failure is one BadInput line naming the file."""
    from mlops import tabular

    where = where or str(path)
    path = Path(path)
    try:
        tabular.check_openable(path, where)
        if path.stat().st_size == 0:
            raise BadInput(where, "the file is empty", "export the data again with a header row and data rows")
        if path.suffix.lower() in (".parquet", ".pq"):
            return _read_parquet(path, where)
        return tabular.read_csv_checked(path, where)
    except OSError as exc:  # the file vanished, or turned unreadable, between the checks and the read
        raise tabular.os_error(where, exc) from None


def _read_parquet(path: Path, where: str) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError):
        raise  # the OS refused: read_table says so in one line
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:  # pyarrow's OSError for a corrupt file too
        first = str(exc).strip().splitlines()[0][:200]
        raise BadInput(where, f"cannot be read as a table ({first})", "fix the file's format") from None
    if table.num_rows == 0:
        raise BadInput(where, "has a header but no data rows", "export the data again with its rows")
    return _plain_columns(table, where)


def _plain_columns(table: Any, where: str) -> Any:
    """Dictionary columns (pandas 'category' saved to Parquet) as their values; nested ones refused."""
    import pyarrow as pa

    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(field.type.value_type))
        elif pa.types.is_nested(field.type):
            raise BadInput(
                f"{where}: column {field.name!r}",
                f"holds nested values ({field.type}), not one value per cell",
                "flatten it into plain columns in the export, or drop it",
            )
    return table


@dataclass
class Prepared:
    X: Any  # pandas DataFrame of features
    y: Any  # numpy int array, 1 = positive class
    numeric: list[str]
    categorical: list[str]
    dropped_empty: list[str]
    dropped_label_rows: int
    positive_label: Any
    classes: list[Any]


def prepare(cfg: Config, table: Any, where: str) -> Prepared:
    """Split a table into features and a 0/1 label, refusing what cannot be trained on."""
    import numpy as np

    ds = cfg.dataset
    frame = table.to_pandas()
    _require_columns(ds, list(frame.columns), where)
    label = frame.pop(ds.label)
    keep = label.notna().to_numpy()
    dropped_label_rows = int((~keep).sum())
    if dropped_label_rows:
        gha.warn(f"{where}: {dropped_label_rows} row(s) with an empty label {ds.label!r} dropped")
    frame = frame.loc[keep].reset_index(drop=True)
    label = label.loc[keep].reset_index(drop=True)
    line_of = np.flatnonzero(keep) + 2  # 1-based file line of each kept row (header is line 1)
    classes, positive = _binary_classes(ds, label, where)
    y = (label.astype(str) == str(positive)).to_numpy().astype(np.int64)

    for col in (*ds.drop_columns, *((ds.timestamp_column,) if ds.timestamp_column else ())):
        if col in frame.columns:
            frame = frame.drop(columns=col)
    empty = [c for c in frame.columns if frame[c].isna().all()]
    for col in empty:
        gha.warn(f"{where}: column {col!r} is empty in every row and was dropped")
    frame = frame.drop(columns=empty)
    numeric, categorical = _type_features(ds, frame, where, line_of)
    if not numeric and not categorical:
        raise BadInput(where, "no feature columns are left besides the label", "add feature columns")
    return Prepared(frame, y, numeric, categorical, empty, dropped_label_rows, positive, classes)


def _require_columns(ds: Any, columns: list[str], where: str) -> None:
    """The label, and every column config/dataset.json names as categorical or a slice, are present."""
    if ds.label not in columns:
        raise BadInput(
            f"{where}: column {ds.label!r}",
            f"the label column named by config/dataset.json /label is missing (columns: {', '.join(columns[:12])})",
            "fix /label in config/dataset.json or add the column",
        )
    for col in (*ds.categorical, *ds.slices):
        if col not in columns:
            raise BadInput(
                f"{where}: column {col!r}",
                "named in config/dataset.json (/categorical or /slices) but missing from the data",
                "fix config/dataset.json or the data",
            )


def _binary_classes(ds: Any, label: Any, where: str) -> tuple[list[Any], Any]:
    """The label's two values (sorted as text) and which one is positive: /positive_label, else 1/true/yes."""
    import pandas as pd

    classes = sorted(pd.unique(label).tolist(), key=str)
    if len(classes) < 2:
        raise BadInput(
            f"{where}: column {ds.label!r}",
            f"the label has a single value ({classes[0]!r} in every row)" if classes else "the label is empty",
            "a classifier needs both classes: fix the export or the /label setting",
        )
    if len(classes) > 2:
        raise BadInput(
            f"{where}: column {ds.label!r}",
            f"the label has {len(classes)} values ({', '.join(map(str, classes[:6]))}); "
            "this repo trains binary classifiers",
            "map the label to two classes",
        )
    positive = ds.positive_label
    if positive is None:
        as_text = {str(c).lower() for c in classes}
        for guess in ("1", "true", "yes"):
            if guess in as_text:
                positive = next(c for c in classes if str(c).lower() == guess)
                break
    if positive is None or str(positive) not in {str(c) for c in classes}:
        raise BadInput(
            "config/dataset.json: /positive_label",
            f"cannot tell which of the label values {classes} is positive (got {positive!r})",
            "set /positive_label to one of them",
        )
    return classes, positive


def _type_features(ds: Any, frame: Any, where: str, line_of: Any) -> tuple[list[str], list[str]]:
    """Make each feature column of `frame` (in place) float or object; return (numeric, categorical)."""
    import numpy as np
    import pandas as pd

    categorical: list[str] = []
    numeric: list[str] = []
    for col in frame.columns:
        series = frame[col]
        if col in ds.categorical:
            frame[col] = series.astype("string").astype(object).where(series.notna(), np.nan)
            categorical.append(col)
            continue
        if _holds_times(series):
            raise BadInput(
                f"{where}: column {col!r}",
                "holds dates or times, which a model cannot use as they are",
                "list it in config/dataset.json /drop_columns (or /timestamp_column if it is the row's time), "
                "or derive numeric features from it in the export",
            )
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            frame[col] = series.astype(float)
            _refuse_infinities(frame[col], col, where, line_of)
            numeric.append(col)
        else:
            parsed = pd.to_numeric(series, errors="coerce")
            present = series.notna()
            bad = present & parsed.isna()
            if present.sum() and not bad.any():  # numbers the reader kept as text
                frame[col] = parsed.astype(float)
                _refuse_infinities(frame[col], col, where, line_of)
                numeric.append(col)
                continue
            if present.sum() and bad.sum() <= 0.5 * present.sum():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise BadInput(
                    f"{where}: column {col!r} line {int(line_of[i])}",
                    f"text {str(series.iloc[i])[:40]!r} in a numeric column ({int(bad.sum())} such row(s))",
                    "fix or blank those cells, or list the column in config/dataset.json /categorical",
                )
            frame[col] = series.astype(object).where(present, np.nan)
            categorical.append(col)
    return numeric, categorical


def _holds_times(series: Any) -> bool:
    """datetime64/timedelta columns, and object columns of date or time values (a reader's date32)."""
    import datetime as dt

    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        return True
    if series.dtype != object:
        return False
    first = series.dropna().head(1).tolist()
    return bool(first) and isinstance(first[0], (dt.date, dt.time, dt.timedelta))


def _refuse_infinities(values: Any, col: str, where: str, line_of: Any) -> None:
    import numpy as np

    infinite = np.isinf(values.to_numpy())
    if infinite.any():
        i = int(np.flatnonzero(infinite)[0])
        raise BadInput(
            f"{where}: column {col!r} line {int(line_of[i])}",
            f"an infinite value in a numeric column ({int(infinite.sum())} such row(s))",
            "fix or blank those cells in the export",
        )
