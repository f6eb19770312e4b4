"""config/examples/: each example validates against its schema, and the Kaggle Telco example fits the Telco file.

No network: a small CSV with the columns, value sets and quirks of blastchar/telco-customer-churn's
WA_Fn-UseC_-Telco-Customer-Churn.csv is put where the Kaggle download lands, with the sidecar a download
writes, and `mlops data validate --no-download` and `mlops train --no-download` read it as the cached copy.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import jsonschema
import pytest

from mlops import config, data
from mlops.errors import BadInput
from mlops.repo import Repo
from tests.support.cli import run
from tests.support.repo import ROOT, make_repo

EXAMPLES = ROOT / "config" / "examples"
TELCO = {
    "dataset": "dataset.kaggle-telco.json",
    "training-schedule": "training-schedule.kaggle-telco.json",
    "model-card": "model-card.kaggle-telco.json",  # its factors name the Telco slice columns
}
# The Telco file's header, in its order.
COLUMNS = [
    "customerID", "gender", "SeniorCitizen", "Partner", "Dependents", "tenure", "PhoneService", "MultipleLines",
    "InternetService", "OnlineSecurity", "OnlineBackup", "DeviceProtection", "TechSupport", "StreamingTV",
    "StreamingMovies", "Contract", "PaperlessBilling", "PaymentMethod", "MonthlyCharges", "TotalCharges", "Churn",
]  # fmt: skip
PAYMENTS = ["Electronic check", "Mailed check", "Bank transfer (automatic)", "Credit card (automatic)"]


def _schema_of(example: Path) -> Path:
    return ROOT / "config" / "schemas" / f"{example.name.split('.', 1)[0]}.schema.json"


def test_every_example_validates_against_its_config_schema():
    examples = sorted(EXAMPLES.glob("*.json"))
    assert {p.name for p in examples} >= set(TELCO.values())
    for path in examples:
        doc = json.loads(path.read_text())
        schema = json.loads(_schema_of(path).read_text())
        jsonschema.Draft202012Validator(schema).validate(doc)
        assert doc["$schema"] == f"../schemas/{_schema_of(path).name}", path.name


def test_the_telco_example_names_the_data_set_of_the_shipped_kaggle_block():
    shipped = json.loads((ROOT / "config" / "dataset.json").read_text())["kaggle"]
    example = json.loads((EXAMPLES / TELCO["dataset"]).read_text())
    assert example["kaggle"] == shipped and example["source"] == "kaggle"
    assert example["label"] == "Churn" and example["positive_label"] == "Yes"
    named = {example["label"], *example["categorical"], *example["drop_columns"], *example["slices"]}
    assert named <= set(COLUMNS), named - set(COLUMNS)
    assert set(example["slices"]) <= set(example["categorical"])


def telco_rows(n: int, seed: int) -> list[dict[str, str]]:
    """Rows shaped like the Telco file: Yes/No columns, 'No internet service', a text TotalCharges that is
    a single space for customers with tenure 0 (as in the real file), ~27 % churn driven by contract and tenure."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        tenure = 0 if i % 97 == 0 else rng.randint(1, 72)
        internet = rng.choice(["DSL", "Fiber optic", "Fiber optic", "No"])
        phone = rng.random() < 0.9
        contract = rng.choices(["Month-to-month", "One year", "Two year"], [0.55, 0.21, 0.24])[0]
        monthly = round(rng.uniform(18.25, 30.0) if internet == "No" else rng.uniform(30.0, 118.75), 2)
        risk = 0.45 if contract == "Month-to-month" else 0.08
        risk += 0.15 if internet == "Fiber optic" else 0.0
        risk *= 1.4 if tenure < 12 else 0.6
        extra = ["No internet service"] if internet == "No" else ["No", "Yes"]
        row = {
            "customerID": f"{rng.randint(1000, 9999)}-{''.join(rng.choices('ABCDEFGHIJKLMNOPQRSTUVWXYZ', k=5))}",
            "gender": rng.choice(["Female", "Male"]),
            "SeniorCitizen": str(int(rng.random() < 0.16)),
            "Partner": rng.choice(["Yes", "No"]),
            "Dependents": rng.choice(["Yes", "No", "No"]),
            "tenure": str(tenure),
            "PhoneService": "Yes" if phone else "No",
            "MultipleLines": rng.choice(["No", "Yes"]) if phone else "No phone service",
            "InternetService": internet,
            **{col: rng.choice(extra) for col in ("OnlineSecurity", "OnlineBackup", "DeviceProtection",
                                                   "TechSupport", "StreamingTV", "StreamingMovies")},
            "Contract": contract,
            "PaperlessBilling": rng.choice(["Yes", "No"]),
            "PaymentMethod": rng.choice(PAYMENTS),
            "MonthlyCharges": f"{monthly}",
            "TotalCharges": " " if tenure == 0 else f"{round(monthly * tenure * rng.uniform(0.95, 1.05), 2)}",
            "Churn": "Yes" if rng.random() < min(risk, 0.95) else "No",
        }  # fmt: skip
        rows.append(row)
    return rows


def telco_repo(tmp_path: Path, rows: int = 1500) -> Path:
    """A repository switched to the Telco example, with the file where the Kaggle download puts it."""
    repo = make_repo(tmp_path / "repo", training={"bootstrap_iterations": 20})
    for name, example in TELCO.items():
        doc = json.loads((EXAMPLES / example).read_text())
        doc["$schema"] = f"./schemas/{name}.schema.json"
        (repo / "config" / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")
    schedule = repo / "config" / "training-schedule.json"  # the real file has 7,043 rows; this fixture fewer
    doc = json.loads(schedule.read_text())
    doc["datasets"]["minimum_samples"] = 1000
    schedule.write_text(json.dumps(doc, indent=2) + "\n")
    target = repo / "datasets/cache/kaggle/blastchar__telco-customer-churn/WA_Fn-UseC_-Telco-Customer-Churn.csv"
    target.parent.mkdir(parents=True)
    with target.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(telco_rows(rows, seed=3))
    sidecar = {"fetched_at": "2026-11-30T08:00:00Z", "updated_at": "2026-11-28T00:00:00Z", "source": "kaggle"}
    target.with_name(target.name + data.SIDECAR).write_text(json.dumps(sidecar))
    return repo


def test_prepare_accepts_the_telco_file_as_the_cached_kaggle_download(tmp_path):
    repo = telco_repo(tmp_path)
    cfg = config.load(Repo.at(repo))
    dataset = data.acquire(cfg, no_download=True)
    assert dataset.source == "kaggle" and dataset.fallback_reason is None
    assert dataset.detail == "blastchar/telco-customer-churn/WA_Fn-UseC_-Telco-Customer-Churn.csv (cached)"
    prepared = data.prepare(cfg, data.read_table(dataset.path), "telco")
    assert sorted(prepared.numeric) == ["MonthlyCharges", "SeniorCitizen", "tenure"]
    assert set(prepared.categorical) == set(cfg.dataset.categorical)
    assert "customerID" not in prepared.X and "TotalCharges" not in prepared.X
    assert prepared.positive_label == "Yes" and 0.15 < prepared.y.mean() < 0.45


def test_without_the_example_s_drop_columns_the_text_total_charges_is_refused(tmp_path):
    """Why TotalCharges is dropped: a single space for new customers makes it a text column."""
    repo = telco_repo(tmp_path)
    path = repo / "config" / "dataset.json"
    doc = json.loads(path.read_text())
    doc["drop_columns"] = ["customerID"]
    path.write_text(json.dumps(doc))
    cfg = config.load(Repo.at(repo))
    dataset = data.acquire(cfg, no_download=True)
    with pytest.raises(BadInput, match=r"column 'TotalCharges' line \d+: text ' ' in a numeric column"):
        data.prepare(cfg, data.read_table(dataset.path), "telco")


@pytest.mark.slow
def test_data_validate_and_train_accept_the_telco_example(tmp_path):
    repo = telco_repo(tmp_path)
    validated = run(repo, "data", "validate", "--no-download", "--no-alerts")
    assert validated.code == 0, validated.out + validated.err
    assert "data passed validation" in validated.out
    trained = run(repo, "train", "--no-download", "--no-tracking", "--model-types", "logistic_regression")
    assert trained.code == 0, trained.out + trained.err
    manifest = json.loads((repo / "models" / "current" / "manifest.json").read_text())
    assert manifest["dataset"]["source"] == "kaggle" and manifest["label"]["positive"] == "Yes"
