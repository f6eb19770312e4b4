"""Where the log store's bytes live: a local folder or an object store that pyarrow.fs opens.

One `Backend` per store: list a folder's sub-folders and files, read a file's bytes, write a
file whole. Paths given to it are relative to the store's root, `/`-separated.

- A local folder (relative to the repository root, absolute, or file://) writes a part as a
  temp file in the same folder, fsynced, then os.replace: a crash leaves no part or all of it.
- s3://, gs:// (gcs://) and az:// (abfs://, abfss://) write a part with one output stream from
  a buffer holding the whole file. The object becomes visible only when the upload completes
  (S3 PutObject or CompleteMultipartUpload, a GCS upload's finalisation, an Azure block list
  commit); pyarrow does not complete an upload one of whose parts failed, so a failed write
  leaves no object. Credentials come only from each backend's standard environment variables.

Every failure to reach the store (connection refused, missing bucket, denied) is one BadInput
line naming where the URI was configured: exit 2, as for any input the run cannot use.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops import jsonio
from mlops.errors import BadInput

WHERE = "config/store.json: /uri"
OBJECT_SCHEMES = ("s3", "gs", "gcs", "az", "abfs", "abfss")
CREDENTIALS = "AWS_*, GOOGLE_APPLICATION_CREDENTIALS or AZURE_STORAGE_*"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class Backend:
    uri: str  # as configured
    fs: Any  # pyarrow.fs.FileSystem
    base: str  # the store's root inside fs, no trailing slash
    local: bool
    where: str  # where the URI was configured, for error lines

    # ------------------------------------------------------------------ paths

    def path(self, rel: str) -> str:
        return f"{self.base}/{rel}" if rel else self.base

    def location(self, rel: str) -> str:
        """The full address of a store path, for messages and lineage."""
        return f"{self.uri.rstrip('/')}/{rel}" if rel else self.uri

    # ------------------------------------------------------------------ listing

    def listdir(self, rel: str) -> tuple[list[str], list[str]]:
        """(sub-folder names, file names) directly under `rel`, sorted; both empty when it does not exist."""
        from pyarrow import fs as pafs

        infos = self._call(lambda: self.fs.get_file_info(pafs.FileSelector(self.path(rel), allow_not_found=True)))
        if not infos and not self.local:
            self._require_bucket()  # an object store lists a missing bucket as empty: refuse it instead
        dirs = sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)
        files = sorted(i.base_name for i in infos if i.type == pafs.FileType.File)
        return dirs, files

    def read_bytes(self, rel: str) -> bytes:
        """A file's bytes. Every part a read opens goes through here."""

        def read() -> bytes:
            with self.fs.open_input_stream(self.path(rel)) as fh:
                return fh.read()

        return self._call(read, rel)

    # ------------------------------------------------------------------ writing

    def write_whole(self, rel: str, payload: bytes) -> None:
        """Write a file so that readers see all of it or none of it (see the module docstring)."""
        if self.local:
            try:
                jsonio.atomic_write_bytes(Path(self.path(rel)), payload)
            except OSError as exc:
                raise self._unreachable(exc, rel) from None
            return

        def put() -> None:
            stream = self.fs.open_output_stream(self.path(rel))
            stream.write(payload)  # one write of the whole file, then one completion
            stream.close()

        self._call(put, rel)

    def delete(self, rel: str) -> None:
        """Remove a file this process wrote (undoing a write call that failed half way); best effort."""
        try:
            self.fs.delete_file(self.path(rel))
        except OSError:
            pass

    # ------------------------------------------------------------------ reachability

    def check_reachable(self) -> None:
        """Refuse (one line, exit 2) a store that cannot be listed: no server, no bucket, no permission."""
        from pyarrow import fs as pafs

        if self.local:
            info = self._call(lambda: self.fs.get_file_info(self.base))
            if info.type == pafs.FileType.File:
                raise BadInput(self.where, f"the log store {self.uri} is a file, not a folder",
                               "point /uri at a folder (it is created on the first write)")  # fmt: skip
            return
        self._require_bucket()
        self.listdir("")

    def _require_bucket(self) -> None:
        from pyarrow import fs as pafs

        bucket = self.base.split("/", 1)[0]
        info = self._call(lambda: self.fs.get_file_info(bucket))
        if info.type == pafs.FileType.NotFound:
            raise BadInput(self.where, f"the log store {self.uri} cannot be reached (bucket {bucket!r} does not exist)",
                           f"create the bucket, or fix the URI or the credentials ({CREDENTIALS})")  # fmt: skip

    def _call(self, fn: Any, rel: str | None = None) -> Any:
        try:
            return fn()
        except FileNotFoundError as exc:
            if rel is None:
                raise self._unreachable(exc, rel) from None
            raise BadInput(self.location(rel), "the file disappeared while it was read",
                           "run again (a retention job may have removed it)") from None  # fmt: skip
        except OSError as exc:
            raise self._unreachable(exc, rel) from None

    def _unreachable(self, exc: OSError, rel: str | None) -> BadInput:
        reason = " ".join(str(exc).split())
        reason = reason if len(reason) <= 240 else reason[:237] + "..."
        what = f" ({self.location(rel)})" if rel else ""
        return BadInput(self.where, f"the log store {self.uri} cannot be reached{what}: {reason}",
                        f"check the address, the network and the credentials ({CREDENTIALS})")  # fmt: skip


def scheme_of(uri: str) -> str | None:
    match = _SCHEME.match(uri)
    return match.group(1).lower() if match else None


def open_backend(uri: str, root: Path, where: str = WHERE) -> Backend:
    """The backend for a store URI: a local folder (relative to `root`), file://, or an object store."""
    from pyarrow import fs as pafs

    scheme = scheme_of(uri)
    if scheme is None:
        path = Path(uri) if Path(uri).is_absolute() else Path(root) / uri
        return Backend(uri, pafs.LocalFileSystem(), str(path).rstrip("/") or "/", True, where)
    if scheme == "file":
        fs, base = _from_uri(uri, where)
        return Backend(uri, fs, base.rstrip("/") or "/", True, where)
    if scheme not in OBJECT_SCHEMES:
        raise BadInput(where, f"{uri!r} has the scheme {scheme}://, which the log store cannot open",
                       "use a local folder, file://, s3://, gs:// or az://")  # fmt: skip
    if scheme == "az":
        fs, base = _azure(uri, where)
    else:
        fs, base = _from_uri(uri, where)
    base = base.strip("/")
    if not base:
        raise BadInput(where, f"{uri!r} names no bucket", "write it like s3://bucket/prefix")
    return Backend(uri, fs, base, False, where)


def _from_uri(uri: str, where: str) -> tuple[Any, str]:
    from pyarrow import fs as pafs

    try:
        return pafs.FileSystem.from_uri(uri)
    except (OSError, ValueError) as exc:  # ArrowInvalid is a ValueError
        reason = " ".join(str(exc).split())[:240]
        raise BadInput(where, f"the log store {uri} cannot be opened: {reason}",
                       f"fix the URI or the credentials ({CREDENTIALS})") from None  # fmt: skip


def _azure(uri: str, where: str) -> tuple[Any, str]:
    """az://container/prefix: the account from AZURE_STORAGE_ACCOUNT_NAME, a key or SAS token from
    AZURE_STORAGE_ACCOUNT_KEY / AZURE_STORAGE_SAS_TOKEN, else Azure's default credential chain."""
    from pyarrow import fs as pafs

    account = os.environ.get("AZURE_STORAGE_ACCOUNT_NAME")
    if not account:
        raise BadInput(where, f"{uri!r} needs the storage account in AZURE_STORAGE_ACCOUNT_NAME",
                       "export AZURE_STORAGE_ACCOUNT_NAME (and AZURE_STORAGE_ACCOUNT_KEY or a credential)")  # fmt: skip
    options: dict[str, Any] = {}
    if os.environ.get("AZURE_STORAGE_ACCOUNT_KEY"):
        options["account_key"] = os.environ["AZURE_STORAGE_ACCOUNT_KEY"]
    elif os.environ.get("AZURE_STORAGE_SAS_TOKEN"):
        options["sas_token"] = os.environ["AZURE_STORAGE_SAS_TOKEN"]
    try:
        return pafs.AzureFileSystem(account, **options), uri.split("://", 1)[1]
    except (OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:240]
        raise BadInput(where, f"the log store {uri} cannot be opened: {reason}",
                       f"fix the URI or the credentials ({CREDENTIALS})") from None  # fmt: skip
