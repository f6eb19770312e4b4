"""Column-at-a-time helpers on pyarrow data shared by the checks (each one gives exactly what
the plain pyarrow.compute call it stands for gives; tests/test_validation.py compares them)."""

from __future__ import annotations

from typing import Any

from mlops.config import Config
from mlops.validation.results import MAX_ROWS_SHOWN


def _take_sorted(table: Any, indices: Any) -> Any:
    """table.take(indices) for sorted row numbers, record batch by record batch: Table.take
    concatenates each column's chunks first (a full copy per column); this copies only the rows
    taken, with one take per batch rather than per column and chunk."""
    import numpy as np
    import pyarrow as pa

    indices = np.asarray(indices, dtype=np.int64)
    batches = table.to_batches()
    if len(batches) <= 1:
        return table.take(pa.array(indices))
    bounds = np.cumsum([0] + [b.num_rows for b in batches])
    cuts = np.searchsorted(indices, bounds)
    pieces = [
        batch.take(pa.array(indices[cuts[i] : cuts[i + 1]] - bounds[i]))
        for i, batch in enumerate(batches)
        if cuts[i + 1] > cuts[i]
    ]
    return pa.Table.from_batches(pieces, schema=table.schema)


def _rows(mask: Any) -> list[int]:
    """The first few 1-based data row numbers where a boolean mask is true."""
    import pyarrow.compute as pc

    return (pc.indices_nonzero(mask).to_numpy()[:MAX_ROWS_SHOWN] + 1).tolist()


def _integer_span(col: Any, limit: int) -> tuple[int, int] | None:
    """(min, max) of an integer column whose values span at most `limit` + 1 integers (None
    otherwise, and for other types or a column without values): every value lies in that span."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_integer(col.type):
        return None
    mm = pc.min_max(col)
    lo, hi = mm["min"].as_py(), mm["max"].as_py()
    if lo is None or hi - lo > limit:
        return None
    return lo, hi


def _distinct_count(col: Any) -> int:
    """len(pc.unique(col)); for an integer column without nulls whose min and max are at most 1
    apart, from pc.min_max alone (both occur and nothing lies between them)."""
    import pyarrow.compute as pc

    span = _integer_span(col, 1) if col.null_count == 0 else None
    if span is not None:
        return span[1] - span[0] + 1
    return len(pc.unique(col))


class ColumnMemo:
    """pc.unique of a string column, computed once per validation for the checks that need it
    (schema contract categories, PII)."""

    def __init__(self) -> None:
        self._cells: dict[str, Any] = {}

    def unique(self, name: str, col: Any) -> Any:
        import pyarrow.compute as pc

        if name not in self._cells:
            self._cells[name] = pc.unique(col)
        return self._cells[name]


def _unique(memo: ColumnMemo | None, name: str, col: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    if memo is not None and (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return memo.unique(name, col)
    return pc.unique(col)


def type_name(data_type: Any) -> str:
    """The contract's small type vocabulary for an Arrow type."""
    import pyarrow as pa

    if pa.types.is_dictionary(data_type):
        data_type = data_type.value_type
    if pa.types.is_boolean(data_type):
        return "boolean"
    if pa.types.is_integer(data_type):
        return "integer"
    if pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return "float"
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return "string"
    if pa.types.is_timestamp(data_type):
        return "timestamp"
    if pa.types.is_date(data_type):
        return "date"
    if pa.types.is_null(data_type):
        return "null"
    return str(data_type)


def _compatible(expected: str, found: str) -> bool:
    # An all-empty column reads as null (the missing-values check reports it); integers widen to float.
    return found == expected or found == "null" or (expected == "float" and found == "integer")


def _features(cfg: Config, table: Any) -> list[str]:
    ds = cfg.dataset
    excluded = {ds.label, *ds.drop_columns, *((ds.timestamp_column,) if ds.timestamp_column else ())}
    return [c for c in table.column_names if c not in excluded]


def _nan_count(col: Any) -> int:
    """pc.sum(pc.is_nan(col)) (NaN values, nulls not counted); chunks without nulls by numpy on
    their buffer (no copy, no boolean array of Arrow's)."""
    import numpy as np
    import pyarrow.compute as pc

    total = 0
    for chunk in col.chunks:
        if chunk.null_count == 0:
            total += int(np.count_nonzero(np.isnan(chunk.to_numpy())))
        else:
            total += int(pc.sum(pc.is_nan(chunk)).as_py() or 0)
    return total


def _min_max(col: Any) -> tuple[Any, Any]:
    """pc.min_max's (min, max) as Python values; for floats numpy's fmin/fmax per chunk, which
    skip NaN and nulls as pc.min_max does (NaN only when every value is NaN) at a third of its cost."""
    import math

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_floating(col.type) or pa.types.is_float16(col.type):
        mm = pc.min_max(col)
        return mm["min"].as_py(), mm["max"].as_py()
    lo = hi = None
    for chunk in col.chunks:
        if chunk.null_count == len(chunk):
            continue
        x = chunk.to_numpy(zero_copy_only=False)  # nulls become NaN, which fmin/fmax skip
        a, b = float(np.fmin.reduce(x)), float(np.fmax.reduce(x))
        lo = a if lo is None or (math.isnan(lo) or a < lo) else lo
        hi = b if hi is None or (math.isnan(hi) or b > hi) else hi
    return lo, hi


def _seeded_rows(table: Any, rows: int) -> Any:
    """The seeded sample of `rows` rows in file order (the table itself when it has no more)."""
    import numpy as np

    n = table.num_rows
    if n <= rows:
        return table
    return _take_sorted(table, np.sort(np.random.default_rng(0).choice(n, rows, replace=False)))


def _sorted_floats(col: Any) -> Any:
    """np.sort(col as float64, nulls as NaN); an integer column with few distinct values is
    counted instead of sorted (the same array: equal values, ascending, NaN last)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_integer(col.type):
        counted = pc.value_counts(col.drop_null()) if col.null_count else pc.value_counts(col)
        if len(counted) <= 4096:
            keys = counted.field("values").to_numpy(zero_copy_only=False).astype(np.float64)
            order = np.argsort(keys, kind="stable")
            out = np.repeat(keys[order], counted.field("counts").to_numpy(zero_copy_only=False)[order])
            return np.concatenate((out, np.full(col.null_count, np.nan))) if col.null_count else out
    out = col.to_numpy(zero_copy_only=False).astype(np.float64)
    out.sort()
    return out
