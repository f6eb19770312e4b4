"""The schema contract: reading and inferring it (datasets/<name>.schema.json), and the check
that the data keeps to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops import jsonio
from mlops.config import Config
from mlops.errors import BadInput
from mlops.validation.columns import ColumnMemo, _compatible, _integer_span, _min_max, _rows, _unique, type_name
from mlops.validation.results import FAIL, PASS, WARN, CheckResult
from mlops.validation.settings import contract_path

CONTRACT_FORMAT = 1


def load_contract(cfg: Config, path: Path) -> dict[str, Any]:
    """Read a contract file and check it against config/schemas/dataset-contract.schema.json."""
    from mlops.config import require_valid

    rel = cfg.repo.rel(path)
    data = jsonio.read_json(path, "schema contract")
    # Forks without the file fall back to the schema of the package's own checkout.
    schema_file = Path(__file__).resolve().parents[2] / "config" / "schemas" / "dataset-contract.schema.json"
    local = cfg.repo.schemas_dir / "dataset-contract.schema.json"
    schema = jsonio.read_json(local if local.exists() else schema_file, "schema")
    require_valid(schema, data, rel, "fix the contract, or rewrite it with `mlops data infer-schema --force`")
    return data


def infer_contract(cfg: Config, table: Any, *, max_categories: int, source: str) -> dict[str, Any]:
    """The first contract for a dataset, from its data (what TFX's SchemaGen does); reviewed like code."""
    import math

    import pyarrow.compute as pc

    label = cfg.dataset.label
    if label not in table.column_names:
        raise BadInput(
            f"{source}: column {label!r}",
            "the label column named by config/dataset.json /label is missing",
            "fix /label or the data before inferring a schema",
        )
    columns: dict[str, Any] = {}
    for name in table.column_names:
        col = table.column(name)
        kind = type_name(col.type)
        entry: dict[str, Any] = {"type": kind}
        if kind in ("integer", "float"):
            values = col
            if kind == "float":
                values = pc.filter(col, pc.invert(pc.fill_null(pc.is_nan(col), False)))
            mm = pc.min_max(values).as_py()
            if mm["min"] is not None and all(math.isfinite(v) for v in mm.values()):
                entry.update(min=mm["min"], max=mm["max"])
        elif kind in ("string", "boolean") and name != label:
            uniques = pc.unique(col.drop_null())
            if kind == "string" and len(uniques) <= max_categories:
                entry["categories"] = sorted(uniques.to_pylist())
        columns[name] = entry
    values = sorted(pc.unique(table.column(label).drop_null()).to_pylist(), key=str)
    return {
        "format": CONTRACT_FORMAT,
        "dataset": cfg.dataset.name,
        "inferred_from": {"path": source, "rows": table.num_rows, "at": jsonio.format_utc(jsonio.utc_now())},
        "label": {"column": label, "values": values},
        "columns": columns,
    }


def check_contract(cfg: Config, table: Any, memo: ColumnMemo | None = None) -> CheckResult:
    import pyarrow as pa
    import pyarrow.compute as pc

    path = contract_path(cfg)
    rel = cfg.repo.rel(path)
    if not path.exists():
        status = FAIL if cfg.validation.schema_contract.when_missing == "fail" else WARN
        text = f"no schema contract at {rel}; run `mlops data infer-schema`, review and commit it"
        return CheckResult("schema_contract", status, text, {"contract": rel})
    contract = load_contract(cfg, path)
    expected: dict[str, Any] = contract["columns"]
    present = table.column_names
    violations: list[dict[str, Any]] = []
    for name in expected:
        if name not in present:
            violations.append({"column": name, "problem": "missing column", "count": table.num_rows, "rows": []})
    for name in present:
        if name not in expected:
            violations.append(
                {"column": name, "problem": f"new column ({type_name(table.column(name).type)})", "count": 0}
            )
    for name, rule in expected.items():
        if name not in present:
            continue
        col = table.column(name)
        found = type_name(col.type)
        if not _compatible(rule["type"], found):
            violations.append({"column": name, "problem": f"retyped: expected {rule['type']}, found {found}"})
            continue
        if found == "null":
            continue
        # Cheap aggregates first (min/max, distinct values); a row mask only when something is out.
        masks: list[tuple[str, Any]] = []
        if ("min" in rule or "max" in rule) and not (
            pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_decimal(col.type)
        ):
            violations.append({"column": name, "problem": f"has a min/max rule but holds {found}, not numbers"})
            continue
        if "min" in rule or "max" in rule:
            lo, hi = _min_max(col)
            if "min" in rule and lo is not None and lo < rule["min"]:
                masks.append((f"below the minimum {rule['min']}", pc.less(col, pa.scalar(rule["min"]))))
            if "max" in rule and hi is not None and hi > rule["max"]:
                masks.append((f"above the maximum {rule['max']}", pc.greater(col, pa.scalar(rule["max"]))))
        if "categories" in rule:
            allowed = pa.array(rule["categories"], type=pa.string())
            values = pc.cast(col, pa.string()) if found != "string" else col
            uniques = _unique(memo, name, values) if found == "string" else pc.unique(values)
            if not pc.all(pc.is_in(uniques.drop_null(), allowed)).as_py():
                unseen = pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, allowed)))
                masks.append(("not an allowed category", unseen))
        for problem, mask in masks:
            mask = pc.fill_null(mask, False)
            count = int(pc.sum(mask).as_py() or 0)
            if count:
                violations.append({"column": name, "problem": problem, "count": count, "rows": _rows(mask)})
    violations += _label_violations(contract.get("label", {}), table)
    details = {"contract": rel, "violations": violations}
    if violations:
        first = violations[0]
        more = f" (+{len(violations) - 1} more)" if len(violations) > 1 else ""
        count = f", {first['count']} row(s)" if first.get("count") else ""
        text = f"{len(violations)} violation(s) of {rel}: {first['column']!r} {first['problem']}{count}{more}"
        return CheckResult("schema_contract", FAIL, text, details)
    return CheckResult("schema_contract", PASS, f"matches {rel} ({len(expected)} columns)", details)


def _label_violations(label: dict[str, Any], table: Any) -> list[dict[str, Any]]:
    """The contract's label rule: every label value is one of the listed values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if label.get("column") not in table.column_names or "values" not in label:
        return []
    col = table.column(label["column"])
    try:  # spelled as Arrow spells the data's values below (true, 0), not as Python does (True, 0.0)
        allowed = pc.cast(pa.array(label["values"]), pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):  # mixed types in the list
        allowed = pa.array([str(v) for v in label["values"]], type=pa.string())
    allowed_set = set(allowed.to_pylist())
    # A small integer label needs no pass over its values when every integer from its min to its max is allowed.
    span = _integer_span(col, 64)
    if span is not None and all(str(v) in allowed_set for v in range(span[0], span[1] + 1)):
        return []
    if pc.all(pc.is_in(pc.cast(pc.unique(col).drop_null(), pa.string()), allowed)).as_py():
        return []
    mask = pc.fill_null(pc.invert(pc.is_in(pc.cast(col, pa.string()), allowed)), False)
    count = int(pc.sum(mask).as_py() or 0)
    problem = "label value not in the contract"
    return [{"column": label["column"], "problem": problem, "count": count, "rows": _rows(mask)}]
