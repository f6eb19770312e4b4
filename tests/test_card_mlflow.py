"""The MLflow side of issue 16: the registered model serves positive-class scores (the same as `mlops predict`),
and each run carries its card, gate record, reference profile and data set (one repo trained on Fair 1978)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mlops import config, data, registry
from mlops.repo import Repo
from tests.support.cli import run
from tests.support.public_data import trained_fair
from tests.support.trained import shared

pytestmark = pytest.mark.slow
MODEL = "fair-affairs-classifier"


@pytest.fixture(scope="module")
def fair(tmp_path_factory):
    return shared(tmp_path_factory, "fair-cards", lambda folder: trained_fair(folder / "repo"))


def _store(repo: Path) -> str:
    return f"sqlite:///{repo / '.mlflow' / 'mlflow.db'}"


def _test_rows(repo: Path, n: int):
    """The first n rows of the champion's own test split (same seed, same stratified split as training)."""
    from mlops.train import split

    cfg = config.load(Repo.at(repo))
    manifest = json.loads((repo / "models/current/manifest.json").read_text())
    dataset = data.acquire(cfg, no_download=True)
    assert dataset.sha256 == manifest["dataset"]["sha256"]
    prepared = data.prepare(cfg, data.read_table(dataset.path), "fair")
    return split(prepared, cfg, manifest["seed"])["X_test"].head(n)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _wait_ready(proc: subprocess.Popen, url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"mlflow models serve did not answer {url} within {seconds} s")


def test_mlflow_models_serve_answers_the_scores_mlops_predict_gives_for_20_test_rows(fair, tmp_path):
    repo = fair["repo"]
    rows = _test_rows(repo, 20)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    deployed = run(repo, "deploy", "--mode", "full", "--reason", "issue 16 test")
    assert deployed.code == 0, deployed.err
    r = run(repo, "predict", "--input", str(tmp_path / "rows.csv"), "--output", str(tmp_path / "scores.csv"))
    assert r.code == 0, r.err
    import pandas as pd

    expected = pd.read_csv(tmp_path / "scores.csv")
    assert set(expected["model_version"]) == {fair["champion"]}

    port = _free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    path = f"{mlflow_cli.parent}{os.pathsep}{os.environ.get('PATH', '')}"  # the server execs the venv's uvicorn
    env = {**os.environ, "MLFLOW_TRACKING_URI": _store(repo), "MLFLOW_DISABLE_TELEMETRY": "true", "PATH": path}
    proc = subprocess.Popen(
        [str(mlflow_cli), "models", "serve", "-m", f"models:/{MODEL}@champion", "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port), "--workers", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_ready(proc, f"http://127.0.0.1:{port}/ping", 90)
        answer = _post(f"http://127.0.0.1:{port}/invocations", {"dataframe_split": rows.to_dict(orient="split")})
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group: its workers stop with it
        proc.wait(timeout=30)
    served = answer["predictions"]
    assert len(served) == 20 and all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in served)  # scores, not 0/1
    assert served == pytest.approx(expected["score"].tolist(), abs=1e-9)


def test_each_run_logs_its_card_gate_record_profile_and_data_set(fair):
    import mlflow

    repo = fair["repo"]
    client = mlflow.MlflowClient(tracking_uri=_store(repo))
    for version in fair["versions"]:
        manifest = json.loads((registry.find_version(Repo.at(repo), version) / "manifest.json").read_text())
        run_id = manifest["mlflow"]["run_id"]
        logged = {a.path for a in client.list_artifacts(run_id, "card")}
        logged |= {a.path for a in client.list_artifacts(run_id, f"card/{version}")}
        logged |= {a.path for a in client.list_artifacts(run_id, "gate")}
        assert {f"card/{version}.json", f"card/{version}.md", f"card/{version}/mct.json",
                f"card/{version}/roc.png", f"gate/{version}.json"} <= logged, logged  # fmt: skip
        local = client.download_artifacts(run_id, f"card/{version}.json")
        assert Path(local).read_bytes() == (repo / "metadata/cards" / f"{version}.json").read_bytes()
        promoted = version == fair["champion"]
        assert bool(client.list_artifacts(run_id, "profile")) == promoted  # only the champion has a profile
        (entry,) = client.get_run(run_id).inputs.dataset_inputs
        sha = manifest["dataset"]["sha256"]
        assert entry.dataset.name == "fair-affairs" and sha.startswith(entry.dataset.digest)
        assert json.loads(entry.dataset.source) == {"uri": manifest["dataset"]["path"], "sha256": sha}
        assert {t.key: t.value for t in entry.tags}["mlops.dataset_sha256"] == sha
        # the logged model: a pyfunc whose signature and example describe one score per row
        info = mlflow.models.get_model_info(manifest["mlflow"]["model_uri"])
        assert info.saved_input_example_info is not None
        (output,) = info.signature.outputs.inputs
        assert output.type.name == "float64" and output.shape == (-1,)
