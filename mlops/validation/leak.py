"""The label-leak check: a feature that equals the label, separates it at one threshold, or maps
each of its values to a single label."""

from __future__ import annotations

from typing import Any

from mlops.config import Config
from mlops.validation.columns import _distinct_count, _features, _min_max, _seeded_rows, type_name
from mlops.validation.results import FAIL, PASS, SKIP, CheckResult

LEAK_SAMPLE_ROWS = 20_000


def _pure(table: Any, column: str, label: str) -> tuple[bool, int]:
    """(every non-null value of `column` occurs with a single label, number of distinct values).

    Distinct (value, label) pairs as distinct dictionary-index pairs: dictionary_encode tells
    values apart exactly as group_by does (by bits: each NaN payload, -0.0 and 0.0), without
    starting an Acero plan (and importing pyarrow.dataset) for a few thousand rows."""
    import numpy as np
    import pyarrow.compute as pc

    sub = table.select([column, label])
    if sub.column(label).null_count:
        sub = sub.filter(pc.is_valid(sub.column(label)))
    if sub.column(column).null_count:
        sub = sub.filter(pc.is_valid(sub.column(column)))
    if sub.num_rows == 0:
        return True, 0
    codes, sizes = [], []
    for name in (column, label):
        encoded = pc.dictionary_encode(sub.column(name))  # one dictionary for all chunks
        codes.append(np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in encoded.chunks]))
        sizes.append(max(len(c.dictionary) for c in encoded.chunks))
    pair = codes[0].astype(np.int64) * sizes[1] + codes[1]
    if sizes[0] * sizes[1] <= 4 * len(pair):  # few possible pairs: count them in a table
        pairs = int(np.count_nonzero(np.bincount(pair, minlength=1)))
    else:
        pairs = len(np.unique(pair))
    return pairs == sizes[0], sizes[0]


def _distinct_over_half(col: Any) -> bool:
    """pc.count_distinct(col) * 2 > len(col). The first 60 % of the rows hold no more distinct
    values than all of them, so when they already hold more than half, the rest is not counted."""
    import pyarrow.compute as pc

    n = len(col)
    head = col.slice(0, (n * 3) // 5)
    if n >= 100 and pc.count_distinct(head).as_py() * 2 > n:
        return True
    return pc.count_distinct(col).as_py() * 2 > n


def _sample_ranges(sample: Any, label: str, columns: list[str]) -> dict[str, Any] | None:
    """{column: [(min, max) of one label value, of the other]} on a sample with two label values
    (None otherwise); the same skips of nulls and NaN as group_by's min_max."""
    import pyarrow.compute as pc

    lab = sample.column(label)
    values = pc.unique(lab).drop_null()
    if len(values) != 2:
        return None
    out: dict[str, Any] = {c: [] for c in columns}
    for value in values:
        part = sample.filter(pc.fill_null(pc.equal(lab, value), False)).select(columns)
        for c in columns:
            lo, hi = _min_max(part.column(c)) if part.num_rows else (None, None)
            out[c].append({"min": lo, "max": hi})
    return out


def _class_ranges(table: Any, label: str, columns: list[str]) -> dict[str, Any]:
    """{column: [min_max of the first label group, of the second], label: [the two label values]}."""
    agg = table.group_by(label).aggregate([(c, "min_max") for c in columns])
    out: dict[str, Any] = {c: agg.column(f"{c}_min_max").to_pylist() for c in columns}
    out[label] = agg.column(label).to_pylist()
    return out


def _ranges_overlap(ranges: list[dict[str, Any]]) -> bool:
    """True when two classes' (min, max) ranges certainly overlap (both known, not NaN)."""
    import math

    if len(ranges) != 2:
        return False
    a, b = ranges
    values = (a["min"], a["max"], b["min"], b["max"])
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return False
    return a["max"] >= b["min"] and b["max"] >= a["min"]


def check_label_leak(cfg: Config, table: Any) -> CheckResult:
    """A feature that equals the label, separates it at one threshold, or maps each value to one label."""
    import pyarrow as pa
    import pyarrow.compute as pc

    label = cfg.dataset.label
    if label not in table.column_names:
        return CheckResult("label_leak", SKIP, f"the label column {label!r} is missing", {})
    features = [c for c in _features(cfg, table) if c not in cfg.validation.label_leak.ignore_columns]
    labelled = table.filter(pc.is_valid(table.column(label))) if table.column(label).null_count else table
    binary = _distinct_count(labelled.column(label)) == 2
    leaks: dict[str, str] = {}
    numeric = [c for c in features if type_name(table.column(c).type) in ("integer", "float")]
    # The seeded sample (also used for purity below).
    sample = _seeded_rows(labelled, LEAK_SAMPLE_ROWS)
    if binary and numeric and sample is not labelled:
        # Ranges that overlap in the sample overlap in all rows (each class's full range holds its
        # sample range), so only the features whose sample ranges are disjoint need the full pass.
        in_sample = _sample_ranges(sample, label, numeric)
        if in_sample is not None:
            numeric = [c for c in numeric if not _ranges_overlap(in_sample[c])]
    if binary and numeric:
        # One pass: per-class min and max of every numeric feature; disjoint ranges = a perfect threshold.
        ranges = _class_ranges(labelled, label, numeric)
        order = ranges.pop(label)
        for c in numeric:
            a, b = ranges[c]
            if None in (a["min"], a["max"], b["min"], b["max"]):
                continue
            if a["max"] < b["min"] or b["max"] < a["min"]:
                lo, hi = (order[0], order[1]) if a["max"] < b["min"] else (order[1], order[0])
                cut = a["max"] if a["max"] < b["min"] else b["max"]
                leaks[c] = f"separates the label perfectly: every {lo!r} row has {c} <= {cut}, every {hi!r} row above"
    # Value-to-label purity on the seeded sample first (cheap), confirmed on all rows.
    for c in features:
        if c in leaks or pa.types.is_null(table.column(c).type):
            continue
        if _distinct_over_half(sample.column(c)):
            continue  # identifiers and continuous values: purity by accident, not by leak
        pure, distinct = _pure(sample, c, label)
        if not pure or distinct * 2 > sample.num_rows or distinct < 2:
            continue  # identifiers and continuous values are pure by accident, not by leak
        if sample is not labelled:
            pure, distinct = _pure(labelled, c, label)
            if not pure or distinct * 2 > labelled.num_rows:
                continue
        leaks[c] = f"predicts the label perfectly: each of its {distinct} values occurs with one label only"
    for c in leaks:
        as_text = pc.cast(labelled.column(c), pa.string())
        if pc.all(pc.equal(as_text, pc.cast(labelled.column(label), pa.string()))).as_py():
            leaks[c] = "equals the label in every row"
    details = {"leaks": leaks, "checked": len(features)}
    if leaks:
        first = next(iter(leaks))
        more = f" (+{len(leaks) - 1} more)" if len(leaks) > 1 else ""
        return CheckResult("label_leak", FAIL, f"feature {first!r} {leaks[first]}{more}", details)
    return CheckResult("label_leak", PASS, f"no feature of {len(features)} predicts the label perfectly", details)
