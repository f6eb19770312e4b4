"""The model registry on disk: version ids, integrity before loading, staged folders and recovery."""

from __future__ import annotations

import pytest

from mlops import jsonio, registry
from mlops.errors import BadInput
from mlops.repo import Repo


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "models").mkdir()
    return Repo.at(tmp_path)


@pytest.fixture(scope="module")
def pipeline():
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    X = np.arange(40, dtype=float).reshape(20, 2)
    return Pipeline([("model", LogisticRegression())]).fit(X, [0, 1] * 10)


def staged_model(repo: Repo, pipeline, version: str):
    folder = registry.stage(repo, version)
    sha, trusted = registry.dump_model(pipeline, folder / registry.MODEL_FILE)
    jsonio.write_json(folder / registry.MANIFEST, {"version": version, "model_sha256": sha})
    return folder, sha, trusted


def test_a_version_id_sorts_by_time_names_its_type_and_matches_the_pattern():
    a = registry.new_version("2026-11-22T02:00:00Z", "hist_gradient_boosting", "sha", "42", "commit")
    b = registry.new_version("2026-11-29T02:00:00Z", "hist_gradient_boosting", "sha", "42", "commit")
    assert a.startswith("20261122T020000Z-hist_gradient_boosting-") and registry.VERSION_RE.fullmatch(a)
    assert a < b
    assert a == registry.new_version("2026-11-22T02:00:00Z", "hist_gradient_boosting", "sha", "42", "commit")
    assert a != registry.new_version("2026-11-22T02:00:00Z", "hist_gradient_boosting", "sha", "43", "commit")


def test_a_model_loads_only_when_its_sha256_matches(repo, pipeline):
    version = registry.new_version("2026-11-22T02:00:00Z", "logistic_regression", "x")
    folder, sha, _ = staged_model(repo, pipeline, version)
    assert registry.sha256_file(folder / registry.MODEL_FILE) == sha
    loaded, manifest = registry.load_model(folder, repo)
    assert manifest["version"] == version and hasattr(loaded, "predict_proba")
    data = bytearray((folder / registry.MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / registry.MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(BadInput, match=r"model\.skops: sha256 .* does not match the manifest's"):
        registry.load_model(folder, repo)
    (folder / registry.MODEL_FILE).unlink()
    with pytest.raises(BadInput, match="the model file is missing"):
        registry.verify_integrity(folder, repo)


def test_promote_archives_the_previous_current_and_candidates_are_found(repo, pipeline):
    first = registry.new_version("2026-11-22T02:00:00Z", "logistic_regression", "a")
    second = registry.new_version("2026-11-29T02:00:00Z", "logistic_regression", "b")
    third = registry.new_version("2026-11-29T02:00:00Z", "random_forest", "b")
    assert registry.promote(repo, staged_model(repo, pipeline, first)[0]) is None
    assert registry.promote(repo, staged_model(repo, pipeline, second)[0]) == first
    registry.place_candidate(repo, staged_model(repo, pipeline, third)[0], third)
    assert registry.current_manifest(repo)["version"] == second
    assert registry.find_version(repo, first) == repo.archived / first
    assert registry.find_version(repo, second) == repo.current
    assert registry.find_version(repo, third) == repo.candidates / third
    assert set(registry.all_versions(repo)) == {first, second, third}
    assert not list(repo.models.glob(".incoming-*")) and not (repo.current / ".promote").exists()


@pytest.mark.parametrize("version", ["../x", "current", "20261122T020000Z-Bad-12345678", 7])
def test_a_malformed_version_id_is_refused_before_any_path_is_built(repo, version):
    with pytest.raises(BadInput, match="is not a model version id"):
        registry.find_version(repo, version)


def test_an_unknown_version_is_one_line(repo):
    with pytest.raises(BadInput, match="no such model in models/current, models/candidates or models/archived"):
        registry.find_version(repo, "20261122T020000Z-logistic_regression-12345678")
    with pytest.raises(BadInput, match="no current model"):
        registry.load_current(repo)


def test_recover_finishes_a_marked_promotion_and_discards_other_staged_folders(repo, pipeline):
    marked = registry.new_version("2026-11-22T02:00:00Z", "logistic_regression", "a")
    other = registry.new_version("2026-11-22T02:00:00Z", "random_forest", "a")
    folder, _, _ = staged_model(repo, pipeline, marked)
    (folder / ".promote").touch()  # a crash after the marker, before the rename into current/
    staged_model(repo, pipeline, other)  # a crash before any rename: the run never finished
    registry.recover(repo)
    assert registry.current_manifest(repo)["version"] == marked and not (repo.current / ".promote").exists()
    assert not list(repo.models.glob(".incoming-*"))
