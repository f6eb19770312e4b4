"""The training spine end to end on temp repos, with real MLflow on a temp sqlite file."""

import json
import shutil
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.fake_github import fake_github_fixture  # noqa: F401 - provides the fake_github fixture
from tests.support.repo import make_repo, tree_snapshot

FAST = {
    "dataset": {"synthetic": {"rows": 4000, "seed": 11}},
    "training": {"bootstrap_iterations": 50},
    # small data for speed; validation's size check would (rightly) refuse 4,000 rows otherwise
    "training_schedule": {"datasets": {"minimum_samples": 1000}},
}


def fast_repo(tmp_path, name="r", **extra):
    overrides = {**FAST, **extra}
    return make_repo(tmp_path / name, **overrides)


def outputs(path: Path) -> dict:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_train_twice_promotes_then_holds(tmp_path, monkeypatch):
    repo = fast_repo(tmp_path)
    out, summary = tmp_path / "out.txt", tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    types = "logistic_regression,hist_gradient_boosting"

    first = run(repo, "train", "--no-download", "--model-types", types)
    assert first.code == 0, first.err
    o1 = outputs(out)
    assert o1["promoted"] == "true" and o1["regression"] == "false"
    current = json.loads((repo / "models/current/manifest.json").read_text())
    assert current["version"] == o1["version"]
    assert current["dataset"]["source"] == "synthetic"
    assert current["model_sha256"] and (repo / "models/current/model.skops").exists()
    assert "| hist_gradient_boosting |" in summary.read_text()

    out.write_text("")
    second = run(repo, "train", "--no-download", "--model-types", types)
    assert second.code == 0, second.err
    o2 = outputs(out)
    assert o2["promoted"] == "false"
    assert o2["regression"] == "false"
    assert "no improvement on the same data" in second.out
    # the champion did not change, and the new candidates sit in candidates/
    assert json.loads((repo / "models/current/manifest.json").read_text())["version"] == o1["version"]
    assert len(list((repo / "models/candidates").iterdir())) == 3
    gate = json.loads((repo / o2["gate_record"]).read_text())
    assert gate["champion"]["version"] == o1["version"]
    text = summary.read_text()
    assert "#### Best candidate against the champion" in text and f"champion `{o1['version']}`" in text
    assert gate["champion_delta"] == pytest.approx(0.0, abs=1e-12)
    assert {c["name"] for c in gate["checks"]} == {"accuracy_min", "ece_max", "champion_f1"}


def test_mlflow_records_runs_tags_registry_and_aliases(tmp_path):
    import mlflow

    repo = fast_repo(tmp_path)
    r = run(repo, "train", "--no-download", "--model-types", "logistic_regression,hist_gradient_boosting")
    assert r.code == 0, r.err
    manifest = json.loads((repo / "models/current/manifest.json").read_text())
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{repo / '.mlflow' / 'mlflow.db'}")
    run_ = client.get_run(manifest["mlflow"]["run_id"])
    assert run_.data.tags["mlops.version"] == manifest["version"]
    assert run_.data.tags["mlops.dataset_sha256"] == manifest["dataset"]["sha256"]
    assert run_.data.tags["mlops.synthetic"] == "true"
    assert run_.data.tags["mlflow.parentRunId"] == manifest["mlflow"]["parent_run_id"]
    assert run_.data.metrics["f1"] == pytest.approx(manifest["metrics"]["f1"])
    champion = client.get_model_version_by_alias("customer-churn-classifier", "champion")
    assert str(champion.version) == manifest["mlflow"]["model_version"]
    assert champion.tags["mlops.version"] == manifest["version"]
    challenger = client.get_model_version_by_alias("customer-churn-classifier", "challenger")
    assert challenger.tags["mlops.version"] == manifest["version"]  # best of the run was promoted
    # the logged model's pyfunc (mlops/mlflow_pyfunc.py) loads its skops file back and answers scores
    loaded = mlflow.pyfunc.load_model("models:/customer-churn-classifier@champion")
    features = manifest["features"]
    assert set(loaded.metadata.get_input_schema().input_names()) == {*features["numeric"], *features["categorical"]}


def test_same_commit_data_seed_gives_identical_metrics(tmp_path):
    metrics = []
    for name in ("a", "b"):
        repo = fast_repo(tmp_path, name)
        r = run(repo, "train", "--no-download", "--no-tracking", "--seed", "5")
        assert r.code == 0, r.err
        cands = sorted((repo / "metadata/gates").glob("*.json"))
        metrics.append({json.loads(p.read_text())["model_type"]: json.loads(p.read_text())["candidate"] for p in cands})
    assert metrics[0] == metrics[1]
    assert len(metrics[0]) == 4


def test_tampered_champion_exits_2_and_writes_nothing(tmp_path):
    repo = fast_repo(tmp_path)
    assert run(repo, "train", "--no-download", "--no-tracking", "--model-types", "logistic_regression").code == 0
    model = repo / "models/current/model.skops"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    before = tree_snapshot(repo)
    r = run(repo, "train", "--no-download", "--no-tracking", "--model-types", "logistic_regression")
    assert r.code == 2
    assert "error: models/current/model.skops: sha256 " in r.err
    assert "does not match the manifest's" in r.err and "git checkout -- models/current" in r.err
    assert tree_snapshot(repo) == before


def test_regression_is_flagged_when_best_candidate_is_worse(tmp_path, monkeypatch, fake_github):
    repo = fast_repo(tmp_path, alerts={"delivery": {"seconds_between_writes": 0}})
    assert run(repo, "train", "--no-download", "--no-tracking", "--model-types", "hist_gradient_boosting").code == 0
    out = tmp_path / "out.txt"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    # A much weaker learner on the same data falls below the champion beyond tolerance.
    shutil.copy(
        Path(__file__).parent / "support" / "weak_model.py",
        Path(__file__).parents[1] / "training" / "model_types" / "zz_weak_for_test.py",
    )
    try:
        r = run(repo, "train", "--no-download", "--no-tracking", "--model-types", "zz_weak_for_test")
    finally:
        (Path(__file__).parents[1] / "training" / "model_types" / "zz_weak_for_test.py").unlink()
    assert r.code == 0, r.err
    o = outputs(out)
    assert o["regression"] == "true" and o["promoted"] == "false"
    gate = json.loads((repo / o["gate_record"]).read_text())
    assert gate["regression"] is True and gate["decision"] == "rejected"
    assert any("champion-relative f1" in reason for reason in gate["reasons"])
    # The workflow's next step: the gate record training wrote opens one labelled issue, deduplicated across runs.
    for key, value in fake_github.env().items():
        monkeypatch.setenv(key, value)
    for run_id in ("101", "102"):
        monkeypatch.setenv("GITHUB_RUN_ID", run_id)
        r = run(repo, "alerts", "raise", "--from-gate", str(repo / o["gate_record"]))
        assert r.code == 0, r.err
    [issue] = fake_github.issues()
    assert issue["state"] == "open" and sorted(issue["_labels"]) == ["ml-ops", "needs-investigation", "regression"]
    assert issue["title"] == "Model regression: training candidates fall below the champion on f1"
    assert gate["version"] in issue["body"] and len(fake_github.comments_on(issue["number"])) == 1


def test_real_public_csv_from_statsmodels(tmp_path):
    import statsmodels.datasets.randhie as randhie

    src = Path(randhie.__file__).parent / "randhie.csv"
    repo = make_repo(
        tmp_path / "r",
        dataset={"source": "local", "local": {"path": "datasets/local/randhie.csv"}, "label": "idp",
                 "categorical": [], "slices": []},
        training={"bootstrap_iterations": 30},
        model_card={"factors": {"relevant": [], "intersections": []}},  # no slice columns: no factors to evaluate
    )  # fmt: skip
    (repo / "datasets/local").mkdir(parents=True)
    shutil.copy(src, repo / "datasets/local/randhie.csv")
    r = run(
        repo,
        "train",
        "--no-download",
        "--allow-invalid-data",
        "--model-types",
        "logistic_regression,hist_gradient_boosting",
    )
    assert r.code == 0, r.err
    gates = [json.loads(p.read_text()) for p in (repo / "metadata/gates").glob("*.json")]
    assert len(gates) == 2
    from mlops.registry import sha256_file

    for g in gates:
        assert g["dataset"] == {"sha256": sha256_file(src), "source": "local"}
        folder = repo / "models/current" if g["decision"] == "promoted" else repo / "models/candidates" / g["version"]
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["features"]["numeric"] == [
            "mdvis", "lncoins", "lpi", "fmde", "physlm", "disea", "hlthg", "hlthf", "hlthp"
        ]  # fmt: skip
        assert manifest["label"]["name"] == "idp"
        assert manifest["dataset"]["rows"] == 20190
        assert manifest["metrics"]["n"] == manifest["dataset"]["split"]["test"]
        assert g["mlflow_run_id"] == manifest["mlflow"]["run_id"]


def test_training_refuses_invalid_data_unless_overridden_and_records_the_override(tmp_path):
    # 4,000 synthetic rows against the default minimum_samples: the size check fails.
    repo = make_repo(tmp_path / "r", dataset=FAST["dataset"], training=FAST["training"])
    before = tree_snapshot(repo)
    args = ("train", "--no-download", "--no-tracking", "--model-types", "logistic_regression")
    r = run(repo, *args)
    assert r.code == 1, r.err
    assert "data failed validation (size: 4000 rows, fewer than the minimum" in r.err
    assert "--allow-invalid-data" in r.err
    assert not (repo / "models/current").exists() and not (repo / "models/candidates").exists()
    assert {p for p in tree_snapshot(repo) if p.startswith("models/")} == {p for p in before if p.startswith("models/")}

    r = run(repo, *args, "--allow-invalid-data")
    assert r.code == 0, r.err
    (manifest_path,) = [*repo.glob("models/current/manifest.json"), *repo.glob("models/candidates/*/manifest.json")]
    manifest = json.loads(manifest_path.read_text())
    assert manifest["overrides"]["allow_invalid_data"] is True
    dv = manifest["data_validation"]
    assert dv["passed"] is False and dv["overridden"] is True and dv["failures"][0].startswith("size: ")
    card = (repo / "metadata/cards" / f"{manifest['version']}.md").read_text()
    assert "Trained with --allow-invalid-data" in card and "Data validation failed: size: " in card


class _Exploding:
    """A model type whose pipeline fails where asked: in fit, or later in predict_proba (evaluation)."""

    def __init__(self, name: str, where: str):
        self.NAME, self.DESCRIPTION, self.where = name, f"fails in {where}", where

    def build(self, numeric, categorical, seed):
        from sklearn.pipeline import Pipeline

        from training.features import preprocessor

        return Pipeline([("prepare", preprocessor(numeric, categorical, scale=True)), ("model", _boom(self.where))])


def _boom(where):
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Boom(ClassifierMixin, BaseEstimator):
        def __init__(self, where="fit"):
            self.where = where

        def fit(self, X, y):
            if self.where == "fit":
                raise ValueError("boom in fit")
            self.classes_ = [0, 1]
            return self

        def predict_proba(self, X):
            raise RuntimeError("boom in predict_proba")

    return Boom(where)


def test_failing_model_types_do_not_sink_the_others_and_all_failing_exits_1(tmp_path, monkeypatch):
    import training.model_types as model_types

    known = model_types.available()
    extra = {"broken_fit": _Exploding("broken_fit", "fit"), "broken_predict": _Exploding("broken_predict", "predict")}
    monkeypatch.setattr(model_types, "available", lambda: {**known, **extra})
    repo = fast_repo(tmp_path)
    out = tmp_path / "out.txt"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))

    r = run(repo, "train", "--no-download", "--model-types", "broken_fit,logistic_regression,broken_predict")
    assert r.code == 0, r.err
    assert "broken_fit: training failed: ValueError: boom in fit" in r.err
    assert "broken_predict: evaluation failed: RuntimeError: boom in predict_proba" in r.err
    promoted = outputs(out)["version"]
    assert "-logistic_regression-" in promoted
    assert json.loads((repo / "models/current/manifest.json").read_text())["version"] == promoted
    assert not (repo / "models/candidates").exists() or not any((repo / "models/candidates").iterdir())
    gates = sorted(p.name for p in (repo / "metadata/gates").iterdir())
    assert gates == [f"{promoted}.json"]  # no gate record for a type that never produced metrics

    before = tree_snapshot(repo / "models")
    r = run(repo, "train", "--no-download", "--model-types", "broken_predict,broken_fit")
    assert r.code == 1
    assert "no model type trained successfully" in r.err and "boom in predict_proba" in r.err
    assert tree_snapshot(repo / "models") == before


def _local_repo(tmp_path, edit, name="r", **extra):
    """A repo whose data is the FAST synthetic sample, changed by edit(df), as a local CSV."""
    from mlops.synthetic import generate

    df = generate(4000, 11)
    edit(df)
    repo = fast_repo(tmp_path, name, dataset={"source": "local", "local": {"path": "datasets/local/data.csv"}}, **extra)
    (repo / "datasets/local").mkdir(parents=True)
    df.to_csv(repo / "datasets/local/data.csv", index=False)
    return repo


@pytest.mark.parametrize(
    ("column", "values"),
    [("signup", ["2020-01-02"] * 4000), ("signup", ["2020-01-02 03:04:05"] * 4000)],
    ids=["date", "datetime"],
)
def test_a_date_column_is_refused_with_the_fix_and_nothing_written(tmp_path, column, values):
    repo = _local_repo(tmp_path, lambda df: df.insert(0, column, values))
    before = tree_snapshot(repo)
    r = run(repo, "train", "--no-download", "--model-types", "logistic_regression")
    assert r.code == 2, r.err
    (line,) = [x for x in r.err.strip().splitlines() if x.startswith("error:")]
    assert f"datasets/local/data.csv: column {column!r}: holds dates or times" in line
    assert "/drop_columns" in line and tree_snapshot(repo) == before


def test_an_infinite_value_is_refused_naming_the_column_and_line(tmp_path):
    def edit(df):
        df.loc[[7, 9], "income"] = float("inf")

    repo = _local_repo(tmp_path, edit)
    before = tree_snapshot(repo)
    r = run(repo, "train", "--no-download", "--model-types", "logistic_regression")
    assert r.code == 2, r.err
    assert (
        "datasets/local/data.csv: column 'income' line 9: an infinite value in a numeric column (2 such row(s))"
        in r.err
    )
    assert tree_snapshot(repo) == before


def test_huge_but_finite_values_train(tmp_path):
    def edit(df):
        df["noise_normal"] = df["noise_normal"] * 1e200  # the variance overflows to inf

    repo = _local_repo(tmp_path, edit)
    # trees do not care about scale (a StandardScaler would overflow on these values)
    r = run(repo, "train", "--no-download", "--no-tracking", "--model-types", "hist_gradient_boosting")
    assert r.code == 0, r.err
    profile = json.loads((repo / "models/current/reference-profile.json").read_text())
    assert 1e199 < profile["columns"]["noise_normal"]["std"] < 1e201


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_a_seed_out_of_range_is_refused_as_the_seed(tmp_path, seed):
    repo = fast_repo(tmp_path)
    before = tree_snapshot(repo)
    r = run(repo, "train", "--no-download", "--seed", seed)
    assert r.code == 2 and f"error: --seed: {seed} is outside 0..4294967295" in r.err
    assert tree_snapshot(repo) == before


def test_an_mlflow_store_that_cannot_open_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    repo = fast_repo(tmp_path)
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/afile/mlflow.db")
    before = tree_snapshot(repo)
    r = run(repo, "train", "--no-download", "--model-types", "logistic_regression")
    assert r.code == 2, r.err
    assert r.err.startswith("error: MLFLOW_TRACKING_URI: cannot create ") and "is not a writable folder" in r.err
    assert tree_snapshot(repo) == before and not (repo / "metadata/reports").exists()


def test_a_missing_audit_signing_key_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    from mlops import audit
    from mlops.repo import Repo

    repo = fast_repo(tmp_path)
    audit.keygen(Repo.at(repo))  # the repository now signs its checkpoints
    monkeypatch.delenv(audit.SIGNING_KEY_ENV, raising=False)
    before = tree_snapshot(repo)
    r = run(repo, "train", "--no-download", "--model-types", "logistic_regression")
    assert r.code == 2 and f"error: {audit.SIGNING_KEY_ENV}:" in r.err
    assert tree_snapshot(repo) == before and not (repo / "metadata/reports").exists()


def test_a_failure_while_recording_leaves_mlflow_and_models_as_they_were(tmp_path, monkeypatch):
    import mlflow

    import mlops.train

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(mlops.train, "_build_profile", broken)
    repo = fast_repo(tmp_path)
    r = run(repo, "train", "--no-download", "--model-types", "logistic_regression")
    assert r.code == 3 and "disk full" in r.err
    assert not (repo / "models/current").exists() and not list((repo / "models").glob(".incoming-*"))
    client = mlflow.MlflowClient(f"sqlite:///{repo}/.mlflow/mlflow.db")
    (parent,) = client.search_runs(
        [client.get_experiment_by_name("customer-churn").experiment_id], "tags.mlflow.parentRunId IS NULL"
    )  # fmt: skip
    assert parent.info.status == "FAILED" and "mlops.promoted_version" not in parent.data.tags
    assert not client.get_registered_model("customer-churn-classifier").aliases


def test_outputs_name_the_promoted_versions_gate_record_and_challenger_passed_the_gate(tmp_path, monkeypatch):
    import mlflow

    # precision ranks the rejected (ECE > 0.02) gradient boosting first; logistic regression passes
    repo = fast_repo(tmp_path, training={"primary_metric": "precision"},
                     training_schedule={"performance_thresholds": {"ece_max": 0.02},
                                        "datasets": {"minimum_samples": 1000}})  # fmt: skip
    out = tmp_path / "out.txt"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    r = run(repo, "train", "--no-download", "--model-types", "logistic_regression,hist_gradient_boosting")
    assert r.code == 0, r.err
    o = outputs(out)
    gates = {
        json.loads(p.read_text())["version"]: json.loads(p.read_text()) for p in (repo / "metadata/gates").glob("*")
    }
    best = next(g for g in gates.values() if g["best_of_run"])
    assert "-hist_gradient_boosting-" in best["version"] and best["decision"] == "rejected"
    assert best["promotion_reason"] is None  # the reason belongs to the promoted model's record
    assert o["promoted"] == "true" and "-logistic_regression-" in o["version"]
    assert json.loads((repo / o["gate_record"]).read_text())["version"] == o["version"]
    assert gates[o["version"]]["decision"] == "promoted" and gates[o["version"]]["promotion_reason"]
    client = mlflow.MlflowClient(f"sqlite:///{repo}/.mlflow/mlflow.db")
    challenger = client.get_model_version_by_alias("customer-churn-classifier", "challenger")
    assert challenger.tags["mlops.version"] == o["version"]
    parent = client.get_run(json.loads((repo / "models/current/manifest.json").read_text())["mlflow"]["parent_run_id"])
    assert parent.data.metrics["candidates"] == 2.0


def test_the_champion_is_rescored_on_the_candidates_test_split(tmp_path, monkeypatch):
    from mlops import config, data, registry, train
    from mlops.metrics import classification_metrics
    from mlops.profile import positive_scores
    from mlops.repo import Repo

    repo = fast_repo(tmp_path)
    argv = ("train", "--no-download", "--no-tracking", "--model-types", "logistic_regression")
    assert run(repo, *argv).code == 0
    first = json.loads((repo / "models/current/manifest.json").read_text())
    champion, _ = registry.load_model(repo / "models/current", Repo.at(repo))
    (repo / "config/dataset.json").write_text(
        json.dumps({**json.loads((repo / "config/dataset.json").read_text()), "synthetic": {"rows": 4000, "seed": 12}})
    )  # new data: the champion's stored metrics were measured on other rows
    out = tmp_path / "out.txt"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    assert run(repo, *argv).code == 0
    gate = json.loads((repo / outputs(out)["gate_record"]).read_text())
    # score the old champion ourselves on the new run's test split
    cfg = config.load(Repo.at(repo))
    dataset = data.acquire(cfg, no_download=True)
    prepared = data.prepare(cfg, data.read_table(dataset.path), "data")
    parts = train.split(prepared, cfg, cfg.training.seed)
    want = classification_metrics(parts["y_test"], positive_scores(champion, parts["X_test"]), cfg.training.ece_bins)
    assert gate["champion"]["version"] == first["version"]
    assert gate["champion"]["metrics"] == json.loads(json.dumps(want))
    assert gate["champion"]["stored_metrics"] == first["metrics"] != gate["champion"]["metrics"]
    scored_on = {"split": "test", "rows": len(parts["y_test"])}
    assert gate["champion"]["scored_on"] == gate["candidate"]["scored_on"] == scored_on
    check = next(c for c in gate["checks"] if c["name"] == "champion_f1")
    assert check["champion_value"] == gate["champion"]["metrics"]["f1"]
    assert gate["champion_delta"] == pytest.approx(gate["candidate"]["metrics"]["f1"] - want["f1"])
