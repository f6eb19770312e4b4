"""The duplicate-rows check: rows hashed column by column with numpy, the few rows whose hashes
repeat confirmed exactly (equal rows always share a hash; other rows that share one are told apart)."""

from __future__ import annotations

from typing import Any

from mlops.config import Config
from mlops.validation.columns import _take_sorted
from mlops.validation.results import FAIL, MAX_ROWS_SHOWN, PASS, CheckResult

_HASH_SEED = 0x9E3779B97F4A7C15
_HASH_PRIME = 0x9FB21C651E98DF25


def _code_source(col: Any) -> Any:
    """The column in a form whose cells become uint64 codes cheaply: numbers as they are, text
    (and any other type) as its dictionary index over the whole column, so equal cells in
    different chunks get the same code."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_null(t):
        return col
    if pa.types.is_date32(t):  # Arrow casts date32 to int32 only
        return pc.cast(pc.cast(col, pa.int32()), pa.int64())
    if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_boolean(t):
        return pc.cast(col, pa.int64())
    encoded = pc.dictionary_encode(col)  # one memo table for all chunks: indices agree across chunks
    return pa.chunked_array([c.indices for c in encoded.chunks], type=encoded.type.index_type)


def _codes(arr: Any) -> Any:
    """A uint64 per cell of one Arrow array such that equal cells always give equal codes
    (other collisions are confirmed later): the float's bits with -0.0 folded into 0.0 and one
    NaN for every NaN and null, the integer itself (nulls: a sentinel), zeros for a null column."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    t = arr.type
    if pa.types.is_null(t):
        return np.zeros(len(arr), dtype=np.uint64)
    if pa.types.is_floating(t):
        # A fresh float64 array in one pass: nulls are NaN, + 0.0 folds -0.0 into 0.0.
        x = np.add(arr.to_numpy(zero_copy_only=False), 0.0, dtype=np.float64)
        nan = np.isnan(x)
        if nan.any():
            x[nan] = np.nan  # one bit pattern for every NaN payload and sign
        return x.view(np.uint64)
    if arr.null_count:
        sentinel = -(2 ** (t.bit_width - 1)) if pa.types.is_signed_integer(t) else 0
        arr = pc.fill_null(arr, pa.scalar(sentinel, t))
    return arr.to_numpy(zero_copy_only=False).astype(np.int64, copy=False).view(np.uint64)


def _row_hashes(table: Any) -> Any:
    """A uint64 per row; equal rows always get equal hashes.

    Chained h = f(h ^ code) with f = multiply-xorshift, a bijection on uint64: rows that differ in
    one column always differ in h. Computed batch by batch (all columns of a slice of rows while
    that slice of h is in the CPU cache), in place."""
    import numpy as np
    import pyarrow as pa

    h = np.full(table.num_rows, _HASH_SEED, dtype=np.uint64)
    prime = np.uint64(_HASH_PRIME)
    shift = np.uint64(29)
    sources = pa.table({str(i): _code_source(table.column(i)) for i in range(table.num_columns)})
    offset = 0
    for batch in sources.to_batches():
        part = h[offset : offset + batch.num_rows]
        tmp = np.empty_like(part)
        for arr in batch.columns:
            np.bitwise_xor(part, _codes(arr), out=part)
            np.multiply(part, prime, out=part)
            np.right_shift(part, shift, out=tmp)
            np.bitwise_xor(part, tmp, out=part)
        offset += batch.num_rows
    return h


_PREFILTER_COLUMNS = 4
_BUCKET_BITS = 22  # 4M buckets: ~1 in 5 of 1M distinct hashes shares one; the counts fit in 32 MB


def _repeated_rows(h: Any) -> Any:
    """Sorted row numbers whose hash occurs more than once.

    Equal hashes share a bucket (the top `_BUCKET_BITS` bits), so only the rows in a bucket that
    holds more than one row can repeat: one counting pass over the buckets (no sort of all rows),
    then the candidates' full 64 bits are sorted. Small inputs sort directly."""
    import numpy as np

    n = len(h)
    if n < 2:
        return np.empty(0, dtype=np.int64)
    bits = min(_BUCKET_BITS, (n - 1).bit_length() + 2)  # at least 4n buckets, at most 4M
    bucket = (h >> np.uint64(64 - bits)).astype(np.intp)
    crowded = np.bincount(bucket, minlength=1 << bits) > 1
    idx = np.flatnonzero(crowded[bucket])
    del bucket, crowded
    if len(idx) < 2:
        return np.empty(0, dtype=np.int64)
    cand = h[idx]
    full = np.sort(cand)
    same = full[1:] == full[:-1]
    if not same.any():
        return np.empty(0, dtype=np.int64)
    return idx[np.isin(cand, np.unique(full[1:][same]))].astype(np.int64, copy=False)


def _prefilter(table: Any) -> list[str]:
    """A few columns likely to tell rows apart on their own (floats with the fewest empty cells
    first): rows that repeat an earlier row repeat it in these columns too."""
    import pyarrow as pa

    def rank(name: str) -> tuple[int, int]:
        col = table.column(name)
        return (0 if pa.types.is_floating(col.type) else 1, col.null_count)

    return sorted(table.column_names, key=rank)[:_PREFILTER_COLUMNS]


def check_duplicates(cfg: Config, table: Any) -> CheckResult:
    import pyarrow as pa

    n = table.num_rows
    duplicates, rows = 0, []
    # Candidates: rows whose hash over a few columns repeats (every duplicate row is one); their
    # hash over all columns next, unless most rows are candidates (then all rows are hashed).
    few = _prefilter(table)
    if len(few) < table.num_columns:
        idx = _repeated_rows(_row_hashes(table.select(few)))
        if len(idx) > n // 8:
            idx = _repeated_rows(_row_hashes(table))
        elif len(idx):
            idx = idx[_repeated_rows(_row_hashes(_take_sorted(table, idx)))]
    else:
        idx = _repeated_rows(_row_hashes(table))
    if len(idx):
        # Equal rows always share a hash; other rows that share one are told apart here:
        # the candidate rows are grouped exactly by every column (empty cells equal each other).
        idx = pa.array(idx)
        keys = [c for c in table.column_names if not pa.types.is_null(table.column(c).type)]
        sub = _take_sorted(table.select(keys), idx.to_numpy()).append_column("__row__", idx)
        groups = sub.group_by(keys, use_threads=False).aggregate([("__row__", "list")])
        later: list[int] = []
        for members in groups.column("__row___list").to_pylist():
            if len(members) > 1:
                later += sorted(members)[1:]
        duplicates = len(later)
        rows = [r + 1 for r in sorted(later)[:MAX_ROWS_SHOWN]]
    share = duplicates / n if n else 0.0
    limit = cfg.validation.duplicates.max_share
    details = {"duplicates": duplicates, "share": round(share, 6), "max_share": limit, "rows": rows}
    text = f"{duplicates} row(s) repeat an earlier row exactly ({share:.2%})"
    if share > limit:
        return CheckResult("duplicates", FAIL, f"{text}, above the limit {limit:.2%}", details)
    return CheckResult("duplicates", PASS, f"{text} (limit {limit:.2%})", details)
