"""Dataset validation: each check fails once and passes once, on real files in temp repos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from mlops import config, data, validation
from mlops.repo import Repo
from tests.support.cli import run
from tests.support.repo import make_repo

NOW = "2026-06-01T12:00:00Z"
DATASET = {
    "source": "local",
    "local": {"path": "datasets/local/train.csv"},
    "label": "churned",
    "positive_label": 1,
    "categorical": ["cat"],
    "slices": [],
}
SCHEDULE = {"datasets": {"minimum_samples": 100, "refresh_interval_days": 30}}


def columns(n: int = 600, seed: int = 0, pos: float = 0.3) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    return {
        "customer_id": rng.permutation(n).tolist(),
        "x1": rng.normal(0, 1, n).round(6).tolist(),
        "x2": rng.uniform(0, 10, n).round(6).tolist(),
        "cat": rng.choice(["a", "b", "c"], n).tolist(),
        "churned": (rng.uniform(size=n) < pos).astype(int).tolist(),
    }


def write(repo: Path, cols: dict[str, list], *, fetched_at: str | None = "2026-05-30T00:00:00Z", **side) -> Path:
    path = repo / "datasets/local/train.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    pcsv.write_csv(pa.table(cols), path)
    sidecar = path.with_name("train.csv.source.json")
    record = {k: v for k, v in {"fetched_at": fetched_at, **side}.items() if v is not None}
    if record:
        sidecar.write_text(json.dumps(record))
    elif sidecar.exists():
        sidecar.unlink()
    return path


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_NOW", NOW)
    # no slice columns here, so the card declares no factors (config/model-card.json must name evaluated ones)
    return make_repo(tmp_path / "repo", dataset=DATASET, training_schedule=SCHEDULE,
                     model_card={"factors": {"relevant": [], "intersections": []}})  # fmt: skip


def patch_validation(repo: Path, patch: dict) -> None:
    path = repo / "config/validation.json"
    cfg = json.loads(path.read_text())
    for section, values in patch.items():
        cfg.setdefault(section, {}).update(values)
    path.write_text(json.dumps(cfg))


def check(repo: Path, name: str) -> validation.CheckResult:
    return validate(repo).check(name)


def validate(repo: Path) -> validation.ValidationResult:
    cfg = config.load(Repo.at(repo))
    return validation.validate(cfg, data.acquire(cfg, no_download=True))


def test_clean_data_passes_every_check(repo):
    write(repo, columns())
    result = validate(repo)
    status = {c.name: c.status for c in result.checks}
    assert status == {name: "pass" for name in validation.CHECKS} | {"schema_contract": "warn"}
    assert result.passed and result.failures == [] and not result.stale
    assert "run `mlops data infer-schema`" in result.check("schema_contract").summary


# ---------------------------------------------------------------------------------- freshness


def test_freshness_fails_on_source_metadata_before_fetch_time(repo):
    write(repo, columns(), fetched_at="2026-05-31T00:00:00Z", updated_at="2026-04-01T00:00:00Z")
    c = check(repo, "freshness")
    assert c.status == "fail" and c.details["stale"] is True
    assert c.details["basis"] == "source metadata (local last updated)"
    assert c.summary.startswith("stale: 61.5 days old by source metadata")


def test_freshness_passes_on_recorded_fetch_time(repo):
    write(repo, columns(), fetched_at="2026-05-30T00:00:00Z")
    c = check(repo, "freshness")
    assert c.status == "pass" and c.details["age_days"] == 2.5
    assert c.details["basis"] == "recorded fetch time (local)"


def test_freshness_from_timestamp_column(repo):
    cols = columns(n=300)
    cols["ts"] = ["2026-01-01T00:00:00Z"] * 299 + ["2026-05-25T12:00:00Z"]
    write(repo, cols, fetched_at=None)
    patch_validation(repo, {"freshness": {"timestamp_column": "ts"}, "label_leak": {"ignore_columns": ["ts"]}})
    c = check(repo, "freshness")
    assert c.status == "pass" and c.details["basis"] == "maximum of timestamp column 'ts'"
    assert c.details["age_days"] == 7.0
    patch_validation(repo, {"freshness": {"max_age_days": 7}})
    assert check(repo, "freshness").status == "fail"


def test_freshness_unknown_age_warns_or_fails_by_config(repo):
    write(repo, columns(), fetched_at=None)
    c = check(repo, "freshness")
    assert c.status == "warn" and "age is unknown" in c.summary
    patch_validation(repo, {"freshness": {"when_unknown": "fail"}})
    assert check(repo, "freshness").status == "fail"


# ------------------------------------------------------------------------- size, balance, missing


def test_size_fails_below_minimum_and_passes_at_it(repo):
    write(repo, columns(n=600))
    patch_validation(repo, {"size": {"minimum_rows": 601}})
    c = check(repo, "size")
    assert c.status == "fail" and c.summary == "600 rows, fewer than the minimum 601"
    patch_validation(repo, {"size": {"minimum_rows": 600}})
    assert check(repo, "size").status == "pass"


def test_size_minimum_defaults_to_training_schedule(repo):
    write(repo, columns(n=99))
    assert check(repo, "size").details["minimum_rows"] == 100
    assert check(repo, "size").status == "fail"


def test_class_balance_fails_under_floor(repo):
    write(repo, columns(n=2000, pos=0.02))
    c = check(repo, "class_balance")
    assert c.status == "fail" and "below the floor 5.0%" in c.summary
    assert c.details["minority"] == "1" and c.details["minority_share"] < 0.05
    patch_validation(repo, {"class_balance": {"minority_share_min": 0.01}})
    assert check(repo, "class_balance").status == "pass"


def test_class_balance_single_class_fails(repo):
    cols = columns()
    cols["churned"] = [0] * len(cols["churned"])
    write(repo, cols)
    assert check(repo, "class_balance").summary == "the label 'churned' has a single value ('0')"


def test_missing_values_fail_at_limit_and_per_column_override(repo):
    cols = columns(n=400)
    cols["x1"] = [None if i % 4 == 0 else v for i, v in enumerate(cols["x1"])]  # 25 % empty
    write(repo, cols)
    c = check(repo, "missing_values")
    assert c.status == "fail" and c.details["failing"] == {"x1": {"missing": 100, "share": 0.25, "limit": 0.2}}
    patch_validation(repo, {"missing_values": {"per_column": {"x1": 0.3}}})
    c = check(repo, "missing_values")
    assert c.status == "pass" and c.details["shares"]["x1"] == 0.25


# ------------------------------------------------------------------------------ schema contract


def test_schema_contract_violations_with_counts_and_rows(repo):
    cols = columns(n=300)
    write(repo, cols)
    r = run(repo, "data", "infer-schema")
    assert r.code == 0, r.err
    contract = json.loads((repo / "datasets/customer-churn.schema.json").read_text())
    assert contract["label"] == {"column": "churned", "values": [0, 1]}
    assert contract["columns"]["cat"] == {"type": "string", "categories": ["a", "b", "c"]}
    assert check(repo, "schema_contract").status == "pass"

    bad = dict(cols)
    bad["x2"] = list(cols["x2"])
    bad["x2"][4] = 999.0
    bad["cat"] = list(cols["cat"])
    bad["cat"][2] = bad["cat"][6] = "zzz"
    bad["churned"] = list(cols["churned"])
    bad["churned"][8] = 2
    bad["extra"] = [1] * 300
    del bad["x1"]
    write(repo, bad)
    c = check(repo, "schema_contract")
    assert c.status == "fail"
    got = {(v["column"], v["problem"]): (v.get("count"), v.get("rows")) for v in c.details["violations"]}
    assert got[("x1", "missing column")] == (300, [])
    assert got[("extra", "new column (integer)")] == (0, None)
    assert got[("x2", f"above the maximum {contract['columns']['x2']['max']}")] == (1, [5])
    assert got[("cat", "not an allowed category")] == (2, [3, 7])
    assert got[("churned", "label value not in the contract")] == (1, [9])
    assert got[("churned", "above the maximum 1")] == (1, [9])


def test_schema_contract_retyped_column(repo):
    cols = columns(n=200)
    write(repo, cols)
    assert run(repo, "data", "infer-schema").code == 0
    cols["x2"] = [str(v) for v in cols["x2"]]
    cols["x2"][10] = "unknown"
    write(repo, cols)
    c = check(repo, "schema_contract")
    assert c.status == "fail" and "'x2' retyped: expected float, found string" in c.summary


def test_schema_contract_missing_file_fails_when_required(repo):
    write(repo, columns())
    patch_validation(repo, {"schema_contract": {"when_missing": "fail"}})
    assert check(repo, "schema_contract").status == "fail"


def test_broken_contract_is_bad_input(repo):
    write(repo, columns())
    (repo / "datasets/customer-churn.schema.json").write_text(json.dumps({"format": 1, "dataset": "x"}))
    r = run(repo, "data", "validate")
    assert r.code == 2
    assert "datasets/customer-churn.schema.json: /: expected the key" in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert not (repo / "metadata/reports").exists()


def test_a_fork_without_the_contract_schema_uses_the_packages_own(repo):
    write(repo, columns())
    assert run(repo, "data", "infer-schema").code == 0
    (repo / "config/schemas/dataset-contract.schema.json").unlink()
    r = run(repo, "data", "validate")
    assert r.code == 0, r.err
    (repo / "datasets/customer-churn.schema.json").write_text(json.dumps({"format": 1, "dataset": "x"}))
    r = run(repo, "data", "validate")
    assert r.code == 2 and "datasets/customer-churn.schema.json: /: expected the key" in r.err


def test_infer_schema_refuses_to_overwrite_without_force(repo):
    write(repo, columns())
    assert run(repo, "data", "infer-schema").code == 0
    target = repo / "datasets/customer-churn.schema.json"
    target.write_text(target.read_text().replace('"a"', '"A"'))
    edited = target.read_text()
    r = run(repo, "data", "infer-schema")
    assert r.code == 2 and "a schema contract already exists" in r.err and "--force" in r.err
    assert target.read_text() == edited
    assert run(repo, "data", "infer-schema", "--force").code == 0
    assert target.read_text() != edited


# ---------------------------------------------------------------------------------- duplicates


def test_duplicates_counted_exactly_with_rows(repo):
    cols = columns(n=600)
    for key in cols:
        cols[key] = cols[key] + cols[key][:30]  # rows 601..630 repeat rows 1..30
    cols["x1"][0] = cols["x1"][600] = None  # empty cells are equal to each other
    write(repo, cols)
    c = check(repo, "duplicates")
    assert c.status == "fail" and c.details["duplicates"] == 30
    assert c.details["rows"] == [601, 602, 603, 604, 605]
    patch_validation(repo, {"duplicates": {"max_share": 0.05}})
    assert check(repo, "duplicates").status == "pass"


def test_near_duplicates_are_not_duplicates(repo):
    cols = columns(n=300)
    for key in cols:
        cols[key] = cols[key] + cols[key][:10]
    cols["x2"][300:310] = [v + 1e-6 for v in cols["x2"][300:310]]
    write(repo, cols)
    c = check(repo, "duplicates")
    assert c.status == "pass" and c.details["duplicates"] == 0


# ---------------------------------------------------------------------------------- label leak


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda c, rng: list(c["churned"]), "equals the label in every row"),
        (lambda c, rng: [y * 10 + float(rng.uniform()) for y in c["churned"]], "separates the label perfectly"),
        (
            lambda c, rng: [("p" if rng.uniform() < 0.5 else "q") if y else "r" for y in c["churned"]],
            "each of its 3 values occurs with one label only",
        ),
    ],
    ids=["copy", "threshold", "mapping"],
)
def test_label_leak_found(repo, make, expected):
    cols = columns(n=500)
    cols["leak"] = make(cols, np.random.default_rng(9))
    write(repo, cols)
    c = check(repo, "label_leak")
    assert c.status == "fail" and list(c.details["leaks"]) == ["leak"]
    assert expected in c.details["leaks"]["leak"]
    patch_validation(repo, {"label_leak": {"ignore_columns": ["leak"]}})
    assert check(repo, "label_leak").status == "pass"


def test_identifier_columns_are_not_leaks(repo):
    cols = columns(n=500)
    cols["order_ref"] = [f"ord-{i}" for i in range(500)]
    write(repo, cols)
    assert check(repo, "label_leak").status == "pass"


# ------------------------------------------------------------------------- distribution shift


def test_distribution_shift_against_last_validated_snapshot(repo):
    write(repo, columns(n=3000, seed=1))
    cfg = config.load(Repo.at(repo))
    first = validation.write_reports(cfg, validation.validate(cfg, data.acquire(cfg, no_download=True)), audit=False)
    assert first.check("distribution_shift").summary.startswith("no earlier validated snapshot")
    snapshot = repo / "metadata/reports/validation/customer-churn/snapshot-profile.json"
    assert json.loads(snapshot.read_text())["sha256"] == first.sha256

    write(repo, columns(n=3000, seed=2))  # same distribution, other rows
    c = check(repo, "distribution_shift")
    assert c.status == "pass" and c.details["drifted"] == []

    shifted = columns(n=3000, seed=3)
    shifted["x1"] = [v + 1.0 for v in shifted["x1"]]
    shifted["x2"] = [v * 0.5 for v in shifted["x2"]]
    write(repo, shifted)
    c = check(repo, "distribution_shift")
    assert c.status == "warn" and sorted(c.details["drifted"]) == ["x1", "x2"]
    patch_validation(repo, {"distribution_shift": {"action": "fail"}})
    assert check(repo, "distribution_shift").status == "fail"


# ---------------------------------------------------------------------------------------- PII


def test_pii_blocks_by_default_and_warns_by_config(repo):
    cols = columns(n=200)
    cols["notes"] = ["ok"] * 200
    for i in (3, 50, 120):
        cols["notes"][i] = f"reach me at user{i}@example.com"
    write(repo, cols)
    c = check(repo, "pii")
    assert c.status == "fail" and c.details["findings"] == [
        {"column": "notes", "kind": "email", "count": 3, "rows": [4, 51, 121]}
    ]
    assert "example.com" not in json.dumps(c.as_dict())
    patch_validation(repo, {"pii": {"action": "warn"}})
    assert check(repo, "pii").status == "warn"


def test_disabled_check_is_skipped(repo):
    write(repo, columns(n=50))
    patch_validation(repo, {"size": {"enabled": False}})
    c = check(repo, "size")
    assert c.status == "skip" and c.summary == "disabled in config/validation.json"


# ----------------------------------------------------------------------- training and the CLI


def test_validate_for_training(repo):
    write(repo, columns(n=2000, pos=0.02))
    cfg = config.load(Repo.at(repo))
    result = validation.validate_for_training(cfg, data.acquire(cfg, no_download=True))
    assert not result.passed
    assert result.failures[0].startswith("class_balance: minority class '1'")
    assert result.report_path.exists() and result.markdown_path.exists()
    assert json.loads(result.report_path.read_text())["passed"] is False
    write(repo, columns(n=2000))
    cfg = config.load(Repo.at(repo))
    assert validation.validate_for_training(cfg, data.acquire(cfg, no_download=True)).passed


def outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def outbox(repo: Path) -> list[dict]:
    folder = repo / "metadata/alerts/outbox"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []


def test_cli_stale_data_exit_1_outputs_report_audit_alert_then_resolve(repo, tmp_path, monkeypatch):
    out, summary = tmp_path / "out.txt", tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    write(repo, columns(), updated_at="2026-01-01T00:00:00Z")

    r = run(repo, "data", "validate")
    assert r.code == 1, r.err
    assert "data failed validation: freshness: stale:" in r.err
    o = outputs(out)
    assert o["valid"] == "false" and o["stale"] == "true" and o["failed_checks"] == "freshness"
    report = json.loads((repo / o["report"]).read_text())
    assert report["passed"] is False and report["stale"] is True
    assert (repo / o["report"]).with_suffix(".md").exists()
    assert "Data validation FAILED" in summary.read_text()
    events = [json.loads(x) for p in (repo / "metadata/audit").glob("*.jsonl") for x in p.read_text().splitlines()]
    validated = [e for e in events if e.get("type", e.get("event_type")) == "dataset_validated"]
    assert len(validated) == 1 and validated[0]["payload"]["passed"] is False
    raised = [e for e in outbox(repo) if e["action"] == "raise"]
    assert len(raised) == 1
    assert raised[0]["fingerprint"] == "data-quality:customer-churn:freshness"
    assert raised[0]["alert"]["kind"] == "stale-dataset"
    assert {"ml-ops", "data-quality", "needs-attention"} <= set(raised[0]["labels"])

    assert run(repo, "data", "validate").code == 1  # a recurrence: same fingerprint, deduplicated on delivery
    assert {e["fingerprint"] for e in outbox(repo) if e["action"] == "raise"} == {raised[0]["fingerprint"]}

    out.write_text("")
    write(repo, columns(), fetched_at="2026-05-31T00:00:00Z")
    r = run(repo, "data", "validate")
    assert r.code == 0, r.err
    assert outputs(out)["valid"] == "true" and outputs(out)["stale"] == "false"
    resolved = [e for e in outbox(repo) if e["action"] == "resolve"]
    assert [e["fingerprint"] for e in resolved] == ["data-quality:customer-churn:freshness"]
    state = repo / "metadata/reports/validation/customer-churn/open-alerts.json"
    assert json.loads(state.read_text()) == {}


def test_cli_path_option_and_no_alerts(repo):
    other = repo / "elsewhere.csv"
    pcsv.write_csv(pa.table(columns(n=50)), other)
    r = run(repo, "data", "validate", "--path", str(other), "--no-alerts")
    assert r.code == 1 and "size: 50 rows, fewer than the minimum 100" in r.err
    assert outbox(repo) == []


def test_cli_failed_check_raises_a_data_quality_alert_per_check(repo):
    write(repo, columns(n=50))
    assert run(repo, "data", "validate").code == 1
    raised = {e["fingerprint"]: e for e in outbox(repo) if e["action"] == "raise"}
    assert set(raised) == {"data-quality:customer-churn:size"}
    alert = raised["data-quality:customer-churn:size"]
    assert alert["alert"]["kind"] == "data-quality"
    assert "data-quality" in alert["labels"] and "needs-attention" not in alert["labels"]  # not stale


# ------------------------------------------------------------- fast paths: same results, exactly


def _config(repo: Path):
    return config.load(Repo.at(repo))


def test_duplicates_hash_collisions_are_confirmed_exactly(repo, monkeypatch):
    # Every row gets the same hash: only the exact confirmation tells duplicates from collisions.
    cols = columns(n=200)
    for key in cols:
        cols[key] = cols[key] + cols[key][:7]  # rows 201..207 repeat rows 1..7
    table = pa.table(cols)
    cfg = _config(repo)
    honest = validation.check_duplicates(cfg, table)
    monkeypatch.setattr(validation.duplicates, "_row_hashes", lambda t: np.zeros(t.num_rows, dtype=np.uint64))
    colliding = validation.check_duplicates(cfg, table)
    assert honest.details == colliding.details
    assert colliding.details["duplicates"] == 7 and colliding.details["rows"] == [201, 202, 203, 204, 205]


def test_duplicates_top_bit_collisions_are_refined_by_the_full_hash(repo, monkeypatch):
    # Only the low 32 bits left: every row repeats in the top 32 bits the first pass sorts.
    cols = columns(n=300)
    for key in cols:
        cols[key] = cols[key] + cols[key][10:14]  # rows 301..304 repeat rows 11..14
    table = pa.table(cols)
    cfg = _config(repo)
    honest = validation.check_duplicates(cfg, table)
    real = validation._row_hashes
    monkeypatch.setattr(validation.duplicates, "_row_hashes", lambda t: real(t) & np.uint64(0xFFFFFFFF))
    assert validation.check_duplicates(cfg, table).details == honest.details
    assert honest.details["duplicates"] == 4 and honest.details["rows"] == [301, 302, 303, 304]


def test_duplicates_across_chunks_and_special_floats(repo):
    # Equal text in different chunks (one dictionary over all chunks), nulls and NaN hash equal;
    # the exact confirmation has the last word (group_by keeps -0.0 and 0.0 apart).
    first = pa.table({"t": ["a", "b", None], "x": [0.0, float("nan"), 1.0], "i": pa.array([1, None, 3])})
    second = pa.table({"t": ["c", "b", None, "a"], "x": [2.0, float("nan"), 1.0, -0.0], "i": pa.array([4, None, 3, 1])})
    table = pa.concat_tables([first, second])
    assert table.column("t").num_chunks == 2
    cfg = _config(repo)
    c = validation.check_duplicates(cfg, table)
    # row 5 = row 2 (b, NaN, null); row 6 = row 3 (null, 1.0, 3); row 7 = row 1 (-0.0 is not 0.0 for group_by)
    expected = table.group_by(["t", "x", "i"]).aggregate([]).num_rows
    assert c.details["duplicates"] == table.num_rows - expected
    assert c.details["duplicates"] == 2 and c.details["rows"] == [5, 6]


def test_label_leak_sample_refutation_matches_full_pass(repo, monkeypatch):
    # With a tiny sample, features whose sample ranges overlap skip the full pass; a feature whose
    # classes overlap in one row outside the sample is still judged on all rows.
    cfg = _config(repo)
    rng = np.random.default_rng(3)
    y = (rng.uniform(size=4000) < 0.3).astype(int)
    thr = y * 10 + rng.uniform(size=4000)
    near = thr.copy()
    near[np.flatnonzero(y == 0)[-1]] = 10.5  # one 0-row inside the 1-rows' range
    table = pa.table({"x1": rng.normal(size=4000), "thr": thr, "near": near, "churned": y})
    full = validation.check_label_leak(cfg, table)
    monkeypatch.setattr(validation.leak, "LEAK_SAMPLE_ROWS", 100)
    sampled = validation.check_label_leak(cfg, table)
    assert list(sampled.details["leaks"]) == ["thr"]
    assert "separates the label perfectly" in sampled.details["leaks"]["thr"]
    assert sampled.details == full.details


def test_min_max_matches_pyarrow(repo):
    import pyarrow.compute as pc

    cases = [
        pa.chunked_array([[1.5, None, float("nan")], [None, None], [float("nan")], [-2.0, 7.25]]),
        pa.chunked_array([[float("nan")], [float("nan"), None]]),
        pa.chunked_array([[None, None]], type=pa.float64()),
        pa.chunked_array([pa.array([1.0, -3.5], type=pa.float32())]),
        pa.chunked_array([[3, None, -1]]),
    ]
    for col in cases:
        mm = pc.min_max(col)
        expected = (mm["min"].as_py(), mm["max"].as_py())
        assert repr(validation._min_max(col)) == repr(expected), col


def test_take_sorted_equals_table_take():
    rng = np.random.default_rng(4)
    schema = pa.schema([("x", pa.float64()), ("t", pa.string())])
    parts = [
        pa.table({"x": rng.normal(size=k), "t": [f"v{i % 5}" if i % 7 else None for i in range(k)]}, schema=schema)
        for k in (5, 0, 9, 3)
    ]
    table = pa.concat_tables(parts)
    for idx in ([], [0], [4, 5, 6, 13, 16], list(range(17)), [16]):
        taken = validation._take_sorted(table, np.array(idx, dtype=np.int64))
        assert taken.equals(table.take(pa.array(idx, type=pa.int64())))


@pytest.mark.parametrize("few_values", [False, True])
def test_duplicates_prefilter_matches_brute_force(repo, few_values):
    # Rows that repeat in the prefilter's float columns but differ elsewhere are not duplicates
    # (few candidates: only they are hashed again); with few distinct values most rows are
    # candidates and every row is hashed again. Brute force: group_by over all rows.
    rng = np.random.default_rng(7)
    n = 3000
    cols = {f"f{i}": rng.integers(0, 3, n).astype(float) if few_values else rng.normal(size=n) for i in range(4)}
    cols["f0"][rng.uniform(size=n) < 0.1] = np.nan
    cols["k"] = rng.integers(0, 3, n)
    cols["t"] = rng.choice(np.array(["a", "b", None], dtype=object), n)
    src, dst = rng.choice(n, 100, replace=False).reshape(2, 50)
    for name in cols:
        cols[name][dst] = cols[name][src]  # 50 copies (some may collide with each other)
    cols["k"][dst[:20]] += 5  # 20 of them differ only outside the float columns
    table = pa.table(cols)
    cfg = _config(repo)
    c = validation.check_duplicates(cfg, table)
    groups = table.append_column("r", pa.array(np.arange(n))).group_by(list(cols)).aggregate([("r", "list")])
    later = sorted(r for g in groups.column("r_list").to_pylist() for r in sorted(g)[1:])
    assert c.details["duplicates"] == len(later) > 0
    assert c.details["rows"] == [r + 1 for r in later[:5]]


def test_snapshot_text_columns_profiled_as_from_python_lists(repo):
    from mlops import drift, profile

    cfg = _config(repo)
    rng = np.random.default_rng(2)
    text = rng.choice(np.array(["a", "b", "é", None], dtype=object), 500)
    table = pa.table(
        {
            "x1": rng.normal(size=500),
            "cat": text,
            "cat2": pa.array(text).dictionary_encode(),
            "churned": rng.integers(0, 2, 500),
        }
    )
    snap, values = validation._snapshot_and_sample(cfg, table, "x")
    assert snap["features"]["categorical"] == ["cat", "cat2"]
    for c in ("cat", "cat2"):
        assert snap["columns"][c] == profile.categorical_profile(table.column(c).to_pylist())
        ref = profile.column_reference(c, snap["columns"][c], None)
        assert drift.column_drift(ref, values[c]) == drift.column_drift(ref, table.column(c).to_pylist())


def _pure_by_group_by(table, column, label):
    import pyarrow.compute as pc

    sub = table.select([column, label]).filter(pc.is_valid(table.column(label)))
    sub = sub.filter(pc.is_valid(sub.column(column)))
    pairs = sub.group_by([column, label], use_threads=False).aggregate([])
    distinct = len(pc.unique(pairs.column(column)))
    return pairs.num_rows == distinct, distinct


def test_purity_without_group_by_matches_group_by():
    nan2 = np.frombuffer(np.uint64(0x7FF8000000000001).tobytes(), dtype=np.float64)[0]
    y = [0, 1, 0, 1, None, 0, 1, 0]
    cases = {
        "floats": [0.0, -0.0, float("nan"), nan2, 5.0, 0.0, -0.0, float("nan")],
        "pure_floats": [0.0, -0.0, float("nan"), nan2, 5.0, 0.0, -0.0, float("nan")],
        "text": ["a", "b", None, "b", "a", "a", "c", None],
        "bools": [True, False, True, False, None, True, False, True],
        "empty": [None] * 8,
    }
    for name, values in cases.items():
        labels = [0, 1, 2, 3, None, 0, 1, 2] if name == "pure_floats" else y
        half = pa.table({"v": values[:3], "y": labels[:3]})
        rest = pa.table({"v": values[3:], "y": labels[3:]}, schema=half.schema) if name != "empty" else None
        table = pa.concat_tables([half, rest]) if rest is not None else pa.table({"v": values, "y": labels})
        assert validation._pure(table, "v", "y") == _pure_by_group_by(table, "v", "y"), name


def test_sorted_floats_equals_np_sort():
    rng = np.random.default_rng(5)
    cases = [
        pa.chunked_array([[3, None, -1, 3], [7, 7, None, 2**60 + 1, 2**60]]),
        pa.chunked_array([rng.integers(0, 10_000, 3000)]),  # many distinct values: sorted
        pa.chunked_array([[1.5, None, float("nan"), -0.0, 0.0]]),
        pa.chunked_array([pa.array([5, 1, 5], type=pa.uint8())]),
    ]
    for col in cases:
        expected = np.sort(col.to_numpy(zero_copy_only=False).astype(np.float64))
        got = validation._sorted_floats(col)
        assert got.dtype == np.float64 and np.array_equal(got, expected, equal_nan=True), col


def _repeated_reference(h):
    values, inverse, counts = np.unique(h, return_inverse=True, return_counts=True)
    return np.flatnonzero(counts[inverse] > 1)


def test_repeated_rows_matches_a_counting_reference():
    # Bucket counting must find exactly the rows whose full 64-bit hash repeats: planted repeats,
    # hashes that share a bucket (top bits) but differ below, and tiny inputs.
    rng = np.random.default_rng(5)
    for n in (0, 1, 2, 3, 17, 1000, 300_000):
        h = rng.integers(0, 2**64, size=n, dtype=np.uint64)
        if n >= 3:
            h[n - 1] = h[0]  # a real repeat
            h[1] = (h[2] & np.uint64(0xFFFFFFFF00000000)) | np.uint64(12345)  # same bucket as row 2, not equal
        got = validation._repeated_rows(h)
        assert got.dtype == np.int64
        assert np.array_equal(got, _repeated_reference(h)), n
    crowded = rng.integers(0, 50, size=5000).astype(np.uint64) << np.uint64(60)  # few buckets, many repeats
    assert np.array_equal(validation._repeated_rows(crowded), _repeated_reference(crowded))


def test_distinct_count_matches_unique():
    import pyarrow.compute as pc

    cases = [
        pa.chunked_array([[0, 1, 1], [0]]),
        pa.chunked_array([[1, 1], [1]]),
        pa.chunked_array([[0, 2, 2]]),  # min and max 2 apart: counted by unique
        pa.chunked_array([[5, 6, None]]),  # nulls: counted by unique
        pa.chunked_array([[]], type=pa.int64()),
        pa.chunked_array([pa.array([-1, 0], type=pa.int8())]),
        pa.chunked_array([["a", "b"]]),
        pa.chunked_array([[0.0, 1.0]]),
    ]
    for col in cases:
        assert validation._distinct_count(col) == len(pc.unique(col)), col


def test_contract_label_check_by_span_matches_full_check(repo, monkeypatch):
    # The min/max shortcut for an integer label must report what the full pass reports.
    from mlops import jsonio

    cfg = _config(repo)
    base = columns(n=200)
    for labels, allowed, bad in (([0, 1], [0, 1], 0), ([0, 2], [0, 1], 100), ([1, 3], [0, 1, 3], 0),
                                 ([0, 1, 2], [0, 2], 67), ([-1, 0], [0, 5], 100)):  # fmt: skip
        cols = dict(base)
        cols["churned"] = [labels[i % len(labels)] for i in range(200)]
        table = pa.table(cols)
        contract = validation.infer_contract(cfg, table, max_categories=50, source="x.csv")
        contract["label"]["values"] = allowed
        jsonio.write_json(validation.contract_path(cfg), contract)
        fast = validation.check_contract(cfg, table)
        with monkeypatch.context() as m:
            m.setattr(validation.contract, "_integer_span", lambda col, limit: None)
            full = validation.check_contract(cfg, table)
        assert fast.details == full.details and fast.summary == full.summary
        found = [v for v in fast.details["violations"] if v["problem"] == "label value not in the contract"]
        assert [v["count"] for v in found] == ([bad] if bad else [])


def test_quantiles_sorted_equal_numpy_bit_for_bit():
    from mlops import profile

    rng = np.random.default_rng(6)
    levels = validation.SNAPSHOT_LEVELS
    arrays = [np.array([3.5]), np.array([-1.0, 2.0]), np.array([0.0, 0.0, 1e300]), np.arange(7.0)]
    arrays += [np.sort(rng.normal(0, 10**k, size=n)) for k in (-3, 0, 8) for n in (2, 3, 199, 200, 201, 5000)]
    arrays += [np.sort(rng.integers(-5, 5, size=1001).astype(float)), np.sort(rng.lognormal(size=50_000))]
    for s in arrays:
        for lv in (levels, [0.0, 0.5, 1.0], [0.25]):
            expected = np.quantile(s, lv, method="linear")
            got = profile.quantiles_sorted(s, lv)
            assert got.tobytes() == np.asarray(expected, dtype=np.float64).tobytes(), (len(s), lv[:3])


def test_shared_unique_of_text_columns_gives_the_same_checks(repo, monkeypatch):
    # The contract and PII checks share one pc.unique per text column (ColumnMemo); their results
    # must be those of the checks run alone, and the unique is computed once per column.
    import pyarrow.compute as pc

    from mlops import jsonio

    cfg = _config(repo)
    cols = columns(n=300)
    cols["notes"] = ["ok", "fine", None] * 100
    cols["notes"][7] = "mail user7@example.com"
    cols["cat"][11] = "zzz"  # not an allowed category
    table = pa.table(cols)
    contract = validation.infer_contract(cfg, pa.table(columns(n=300)), max_categories=50, source="x.csv")
    jsonio.write_json(validation.contract_path(cfg), contract)
    alone = [validation.check_contract(cfg, table), validation.check_pii(cfg, table)]
    calls = []
    real = pc.unique
    monkeypatch.setattr(pc, "unique", lambda col, *a, **k: calls.append(len(col)) or real(col, *a, **k))
    memo = validation.ColumnMemo()
    shared = [validation.check_contract(cfg, table, memo), validation.check_pii(cfg, table, memo)]
    assert [c.as_dict() for c in shared] == [c.as_dict() for c in alone]
    assert shared[0].status == "fail" and shared[1].status == "fail"
    assert any(v["problem"] == "not an allowed category" and v["rows"] == [12] for v in shared[0].details["violations"])
    assert set(memo._cells) == {"cat", "notes"}
    assert calls.count(300) == 2  # one per text column, not one per check


def test_nan_count_matches_pyarrow():
    import pyarrow.compute as pc

    nan2 = np.array([0xFFF8000000000001], dtype=np.uint64).view(np.float64)[0]
    cases = [
        pa.chunked_array([[1.0, float("nan"), 2.0], [None, float("nan")], [nan2, -0.0]]),
        pa.chunked_array([[None, None]], type=pa.float64()),
        pa.chunked_array([[]], type=pa.float64()),
        pa.chunked_array([pa.array([np.nan, 1.0], type=pa.float32())]),
        pa.chunked_array([[np.inf, -np.inf, 0.0]]),
    ]
    for col in cases:
        assert validation._nan_count(col) == int(pc.sum(pc.is_nan(col)).as_py() or 0), col


def test_distinct_over_half_and_purity_match_direct_counts(repo):
    import pyarrow.compute as pc

    rng = np.random.default_rng(10)
    n = 1000
    cases = [
        pa.chunked_array([rng.normal(size=n)]),  # continuous: decided on the head
        pa.chunked_array([np.concatenate((np.zeros(600), np.arange(400.0)))]),  # few in the head, many after
        pa.chunked_array([np.concatenate((np.zeros(599), np.arange(401.0)))]),  # exactly half + 1 distinct
        pa.chunked_array([np.concatenate((np.zeros(600), np.arange(400.0)))[:999]]),
        pa.chunked_array([rng.integers(0, 5, n)]),
        pa.chunked_array([pa.array([None] * 50 + list(range(50)))]),
        pa.chunked_array([rng.choice(["a", "b"], 10).tolist()]),
    ]
    for col in cases:
        assert validation._distinct_over_half(col) == (pc.count_distinct(col).as_py() * 2 > len(col)), col
    # Purity by counting pairs in a table (few values) or by np.unique (many) gives the same answer.
    for values, labels in ((rng.integers(0, 30, n), rng.integers(0, 2, n)), (np.arange(n) % 7, np.arange(n) % 7 % 2),
                           (rng.normal(size=n).round(1) + 0.0, rng.integers(0, 2, n)),
                           (rng.normal(size=n) + 0.0, rng.integers(0, 10, n))):  # many pairs: np.unique  # fmt: skip
        t = pa.table({"x": values, "y": labels})
        pairs = len({(a, b) for a, b in zip(values.tolist(), labels.tolist(), strict=True)})
        distinct = len(set(values.tolist()))
        assert validation._pure(t, "x", "y") == (pairs == distinct, distinct)


def test_a_date_column_with_duplicate_rows_is_checked_not_a_crash(repo):
    cols = columns()
    cols["signup_date"] = ["2026-05-01"] * len(cols["x1"])
    for key in cols:  # three rows repeated: the duplicates check has candidates to confirm
        cols[key] = cols[key] + cols[key][:3]
    write(repo, cols)
    result = check(repo, "duplicates")  # under the 1 % limit, but found: the date cells were compared
    assert result.status == validation.PASS and result.summary.startswith("3 row(s) repeat an earlier row exactly")


@pytest.mark.parametrize("labels", [[True, False], [0.0, 1.0]], ids=["bool", "float"])
def test_a_contract_inferred_from_the_data_passes_the_same_data(repo, labels):
    cols = columns()
    cols["churned"] = [labels[v] for v in cols["churned"]]
    write(repo, cols)
    ds = json.loads((repo / "config/dataset.json").read_text())
    ds["positive_label"] = labels[1]
    (repo / "config/dataset.json").write_text(json.dumps(ds))
    assert run(repo, "data", "infer-schema").code == 0
    assert check(repo, "schema_contract").status == validation.PASS


def test_a_category_column_from_parquet_is_read_as_its_values(repo):
    import pandas as pd

    frame = pd.DataFrame(columns())
    frame["cat"] = frame["cat"].astype("category")
    path = repo / "datasets/local/train.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)
    (path.parent / "train.parquet.source.json").write_text(json.dumps({"fetched_at": "2026-05-30T00:00:00Z"}))
    ds = json.loads((repo / "config/dataset.json").read_text())
    ds["local"]["path"] = "datasets/local/train.parquet"
    (repo / "config/dataset.json").write_text(json.dumps(ds))
    assert {c.name: c.status for c in validate(repo).checks}["missing_values"] == validation.PASS


def test_a_malformed_open_alerts_record_refuses_before_any_report(repo):
    from tests.support.repo import tree_snapshot

    write(repo, columns())
    record = repo / "metadata/reports/validation/customer-churn/open-alerts.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text('{"broken')
    before = tree_snapshot(repo)
    r = run(repo, "data", "validate")
    assert r.code == 2 and "validation/customer-churn/open-alerts.json: malformed JSON" in r.err
    assert tree_snapshot(repo) == before


def test_a_min_rule_on_a_text_column_is_a_violation_not_a_crash(repo):
    write(repo, columns())
    assert run(repo, "data", "infer-schema").code == 0
    path = repo / "datasets/customer-churn.schema.json"
    contract = json.loads(path.read_text())
    contract["columns"]["cat"]["min"] = 0
    path.write_text(json.dumps(contract))
    result = check(repo, "schema_contract")
    assert result.status == validation.FAIL and "'cat' has a min/max rule but holds string" in result.summary


def test_a_csv_with_cr_only_line_ends_is_one_line_exit_2(repo):
    path = write(repo, columns())
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r"))
    r = run(repo, "data", "validate")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r.err
    assert "datasets/local/train.csv: line 1: the header cannot be parsed" in r.err
