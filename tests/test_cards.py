"""Model cards on a really trained repo: GitHub-like rendering, schema, byte-exact re-rendering, numbers vs MLflow."""

import copy
import json
import re
import struct

import pytest

from mlops import cards
from mlops.repo import Repo
from tests.support.cli import run
from tests.support.repo import ROOT, tree_snapshot
from tests.support.trained import shared, trained_twice

SCHEMA = json.loads((ROOT / "config/schemas" / cards.SCHEMA_FILE).read_text())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return shared(tmp_path_factory, "cards", lambda folder: trained_twice(folder / "repo"))


def _card(repo, version):
    return json.loads((repo / "metadata/cards" / f"{version}.json").read_text())


def _md(repo, version):
    return (repo / "metadata/cards" / f"{version}.md").read_text()


def _png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, kinds = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kinds.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return kinds


def test_training_writes_a_card_per_candidate_that_renders_like_github(trained):
    from markdown_it import MarkdownIt

    repo = trained["repo"]
    versions = [trained["champion"], *trained["second_run"]]
    assert len(versions) == 2
    md_parser = MarkdownIt("commonmark", {"html": True}).enable("table")
    for version in versions:
        html = md_parser.render(_md(repo, version))
        assert html.count("<table>") >= 6, version
        images = re.findall(r'<img src="([^"]+)"', html)
        assert sorted(images) == sorted(f"{version}/{n}.png" for n in cards.PLOTS)
        for src in images:  # relative to the Markdown file, as GitHub resolves them
            assert (repo / "metadata/cards" / src).read_bytes()[:4] == b"\x89PNG"
        assert html.count("<details>") >= 3 and "<summary>" in html
        # Markdown inside <details> is rendered (GitHub needs the blank line after <summary>).
        inside = html.split("<details>", 1)[1].split("</details>", 1)[0]
        assert "<table>" in inside
        for heading in ("Model details", "Intended use", "Factors", "Metrics", "Evaluation data", "Training data",
                        "Quantitative analyses", "Ethical considerations", "Caveats and recommendations",
                        "Gate and lineage"):  # fmt: skip
            assert f"<h2>{heading}</h2>" in html, heading


def test_card_json_validates_and_render_reproduces_markdown_and_plots_byte_for_byte(trained):
    import jsonschema

    repo = trained["repo"]
    version = trained["champion"]
    card = _card(repo, version)
    jsonschema.Draft202012Validator(SCHEMA).validate(card)
    for key in ("model_details", "model_parameters", "quantitative_analysis", "considerations"):
        assert key in card
    folder = repo / "metadata/cards"
    originals = {p: p.read_bytes() for p in [folder / f"{version}.md", *(folder / version).glob("*.*")]}
    assert len(originals) == 2 + len(cards.PLOTS)  # Markdown, MCT export, plots
    for p in originals:
        p.unlink()
    r = run(repo, "card", "render", version)
    assert r.code == 0, r.err
    for p, data in originals.items():
        assert p.read_bytes() == data, p.name
    assert run(repo, "card", "check", "--all").code == 0
    again = run(repo, "card", "render", version)
    assert "unchanged" in again.out
    # A fresh process (other font cache, other import order) renders the same bytes as the training run did.
    import subprocess
    import sys

    fresh = subprocess.run([sys.executable, "-m", "mlops", "--repo", str(repo), "card", "check", "--all"],
                           capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert fresh.returncode == 0, fresh.stderr
    assert "cards ok: 2 card(s) match their JSON" in fresh.stdout


@pytest.mark.parametrize("edit", ["drop_huggingface", "no_plots"])
def test_a_card_json_missing_a_generated_part_is_one_line_exit_2(trained, edit):
    repo = trained["repo"]
    version = trained["second_run"][0]
    path = repo / "metadata/cards" / f"{version}.json"
    original = path.read_bytes()
    card = json.loads(original)
    if edit == "drop_huggingface":
        card.pop("huggingface")  # the schema does not require it; the renderer reads it
    else:
        card["quantitative_analysis"]["graphics"]["collection"] = []
    try:
        path.write_text(json.dumps(card))
        r = run(repo, "card", "check", version)
        assert r.code == 2, r.err
        (line,) = r.err.strip().splitlines()
        assert f"metadata/cards/{version}.json: cannot be rendered" in line and "mlops card build" in line
    finally:
        path.write_bytes(original)


def test_card_check_fails_on_a_hand_edited_card_and_names_the_fix(trained):
    repo = trained["repo"]
    version = trained["second_run"][0]
    md = repo / "metadata/cards" / f"{version}.md"
    original = md.read_bytes()
    try:
        md.write_bytes(original.replace(b"## Factors", b"## Factors (edited)"))
        r = run(repo, "card", "check", version)
        assert r.code == 1
        assert f"metadata/cards/{version}.md differ from what" in r.err
        assert f"run `mlops card render {version}`" in r.err
    finally:
        md.write_bytes(original)


def test_a_card_json_that_breaks_the_schema_is_refused_and_nothing_is_written(trained):
    repo = trained["repo"]
    version = trained["second_run"][0]
    path = repo / "metadata/cards" / f"{version}.json"
    original = path.read_bytes()
    try:
        card = json.loads(original)
        card["quantitative_analysis"]["performance_metrics"][0]["value"] = "high"
        path.write_text(json.dumps(card))
        (repo / "metadata/cards" / f"{version}.md").write_text("stale\n")
        before = tree_snapshot(repo)
        r = run(repo, "card", "render", version)
        assert r.code == 2
        assert re.search(r"/quantitative_analysis/performance_metrics/0/value: expected a value of type", r.err)
        assert "mlops card build VERSION" in r.err
        assert tree_snapshot(repo) == before
    finally:
        path.write_bytes(original)
        assert run(repo, "card", "render", version).code == 0


def test_unknown_version_is_bad_input(trained):
    r = run(trained["repo"], "card", "render", "20990101T000000Z-nope-00000000")
    assert r.code == 2
    assert "no card for this version" in r.err and "mlops card build" in r.err
    r = run(trained["repo"], "card", "build", "20990101T000000Z-nope-00000000")
    assert r.code == 2 and "no such model" in r.err


def test_every_number_equals_the_manifest_and_mlflow(trained):
    import mlflow

    repo = trained["repo"]
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{repo / '.mlflow' / 'mlflow.db'}")
    for version in [trained["champion"], *trained["second_run"]]:
        folder = repo / "models" / ("current" if version == trained["champion"] else f"candidates/{version}")
        manifest = json.loads((folder / "manifest.json").read_text())
        card = _card(repo, version)
        md = _md(repo, version)
        mlrun = client.get_run(manifest["mlflow"]["run_id"])
        qa = card["quantitative_analysis"]
        overall = {p["type"]: p for p in qa["performance_metrics"] if p["slice"] == "overall" and p["split"] == "test"}
        assert set(overall) == set(manifest["metrics"])
        for name, value in manifest["metrics"].items():
            assert overall[name]["value"] == value
            if value is not None:
                assert mlrun.data.metrics[name] == value, name  # MLflow stores the same float64
                shown = str(value) if isinstance(value, int) else f"{value:.4f}"
                assert re.search(rf"^\| {name} \| {re.escape(shown)} \|", md, re.M), name
            ci = overall[name].get("confidence_interval")
            if name in manifest["intervals"]:
                low, high = manifest["intervals"][name]["low"], manifest["intervals"][name]["high"]
                assert (ci["lower_bound"], ci["upper_bound"]) == (low, high)
                assert f"{low:.4f} – {high:.4f}" in md
            else:
                assert ci is None
        val = {p["type"]: p["value"] for p in qa["performance_metrics"] if p["split"] == "validation"}
        assert val == manifest["validation_metrics"]
        for column, values in manifest["slices"].items():
            for value, metrics in values.items():
                mine = [p for p in qa["performance_metrics"] if p["slice"] == f"{column}={value}"]
                assert {p["type"]: p["value"] for p in mine} == {k: v for k, v in metrics.items() if k != "intervals"}
                for p in mine:  # every slice metric but n carries the manifest's bootstrap interval (issue 16)
                    bounds = metrics["intervals"].get(p["type"])
                    ci = p.get("confidence_interval")
                    assert (ci and (ci["lower_bound"], ci["upper_bound"])) == (
                        bounds and (bounds["low"], bounds["high"])
                    )
                assert f"| `{value}` | {metrics['n']} | {metrics['accuracy']:.4f} |" in md
        hf = card["huggingface"]["model-index"][0]["results"][0]
        # every reported test metric, ECE and Brier included (issue 16); n is a count, not a metric
        assert {m["type"]: m["value"] for m in hf["metrics"]} == {
            k: v for k, v in manifest["metrics"].items() if k != "n"
        }
        assert hf["dataset"]["revision"] == manifest["dataset"]["sha256"]
        assert qa["confusion"] == manifest["curves"]["confusion"]
        c = manifest["curves"]["confusion"]
        assert f"| actual positive | {c['tp']} | {c['fn']} |" in md
        assert qa["roc"] == manifest["curves"]["roc"] and qa["reliability"] == manifest["reliability"]
        lin = card["lineage"]
        assert lin["mlflow"]["run_id"] == manifest["mlflow"]["run_id"] == mlrun.info.run_id
        assert mlrun.data.tags["mlops.version"] == version
        registered = client.get_model_version(lin["mlflow"]["registered_model"], lin["mlflow"]["model_version"])
        assert registered.tags["mlops.version"] == version and registered.run_id == mlrun.info.run_id
        assert registered.tags["mlops.dataset_sha256"] == manifest["dataset"]["sha256"]
        assert registered.tags["mlops.model_type"] == manifest["model_type"]
        assert lin["dataset"]["sha256"] == manifest["dataset"]["sha256"] == mlrun.data.tags["mlops.dataset_sha256"]
        assert lin["commit"] == manifest["commit"] == mlrun.data.tags["mlops.commit"]
        assert lin["model_sha256"] == manifest["model_sha256"]
        gate = json.loads((repo / manifest["gate"]["record"]).read_text())
        assert card["gate"]["checks"] == [
            {k: c[k] for k in ("name", "op", "threshold", "value", "passed")} for c in gate["checks"]
        ]
        for check in gate["checks"]:
            assert f"| {check['name']} | {check['value']:.4f} | {check['op']} | {check['threshold']:.4f} |" in md
        # Every number in every table cell of the Markdown is one the manifest or the gate record holds.
        recorded = _numbers(manifest) | _numbers(gate)
        # ...or the model file (its non-default hyper-parameters) or the reference profile (permutation importance)
        from mlops import registry
        from mlops.cards.extras import non_default_params

        pipeline, _ = registry.load_model(folder)
        assert card["model_details"]["hyperparameters"]["non_default"] == non_default_params(pipeline.steps[-1][1])
        profile = folder / registry.PROFILE
        importance = json.loads(profile.read_text())["importance"] if profile.exists() else None
        assert card["quantitative_analysis"]["importance"] == importance
        recorded |= _numbers(card["model_details"]["hyperparameters"]) | _numbers(importance)
        if gate["champion"]:  # the diff column: this model's metric minus the champion's, as the gate measured both
            champ = gate["champion"]["metrics"]
            ours = gate["candidate"]["metrics"]
            recorded |= {f"{ours[k] - champ[k]:+.4f}" for k in champ if isinstance(champ[k], float) and ours.get(k)}
        cells = [c.strip() for line in md.splitlines() if line.startswith("|") for c in line.strip("|").split("|")]
        checked = 0
        for cell in cells:
            for token in cell.split(" – "):
                if re.fullmatch(r"-?\d+\.\d{4}|\d+", token):
                    assert token in recorded, (version, token)
                    checked += 1
        assert checked > 100


def _numbers(value) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_numbers(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_numbers(v) for v in value)) if value else set()
    if isinstance(value, bool) or value is None:
        return set()
    if isinstance(value, int):
        return {str(value), f"{value:.4f}"}
    if isinstance(value, float):
        return {f"{value:.4f}"}
    return set()


def test_gate_and_lineage_section_shows_champion_diff_audit_seq_and_checkpoint(trained):
    repo = trained["repo"]
    champion = trained["champion"]
    entries = [json.loads(line) for p in sorted((repo / "metadata/audit").glob("entries-*.jsonl"))
               for line in p.read_text().splitlines()]  # fmt: skip
    checkpoints = [json.loads(x) for x in (repo / "metadata/audit/checkpoints.jsonl").read_text().splitlines()]
    promo = next(e for e in entries if e["type"] == "promotion" and e["payload"]["version"] == champion)
    card = _card(repo, champion)
    ref = card["lineage"]["audit"]["promotion"]
    assert ref["seq"] == promo["seq"]
    first_cover = next(i for i, ck in enumerate(checkpoints) if ck["size"] > promo["seq"])
    assert ref["checkpoint"]["index"] == first_cover
    assert ref["checkpoint"]["root"] == checkpoints[first_cover]["root"]
    md = _md(repo, champion)
    assert f"| audit: promotion | seq {promo['seq']}, leaf `" in md
    assert f"mlops lineage {champion} --proof-out proof.json" in md
    assert "mlops audit check-proof proof.json" in md

    candidate = trained["second_run"][0]
    cmd = _md(repo, candidate)
    card2 = _card(repo, candidate)
    assert card2["gate"]["champion"]["version"] == champion
    assert card2["lineage"]["audit"]["promotion"] is None
    assert f"Champion comparison with `{champion}`" in cmd
    champ_f1 = card2["gate"]["champion"]["metrics"]["f1"]
    mine = next(p["value"] for p in card2["quantitative_analysis"]["performance_metrics"] if p["type"] == "f1")
    assert f"| f1 | {champ_f1:.4f} | {mine:.4f} | {mine - champ_f1:+.4f}" in cmd
    assert "| audit: promotion | none: this version was not promoted |" in cmd


def test_synthetic_data_is_stated_prominently_and_real_data_is_not_flagged(trained):
    repo = trained["repo"]
    version = trained["champion"]
    md = _md(repo, version)
    head = md.split("## Model details")[0]
    assert "> [!WARNING]" in head and "**Synthetic data.**" in head
    card = _card(repo, version)
    assert card["model_details"]["synthetic_data"] is True and card["lineage"]["dataset"]["synthetic"] is True
    manifest = json.loads((repo / "models/current/manifest.json").read_text())
    manifest["dataset"].update(source="local", detail="datasets/local/train.csv", path="datasets/local/train.csv")
    real = cards.assemble(manifest, None, {"available": False}, None, model_name="m", gate_record_path=None)
    assert real["model_details"]["synthetic_data"] is False
    real_md = cards.render_markdown(real)
    assert "Synthetic data" not in real_md and "[!WARNING]" not in real_md


def test_plots_are_deterministic_and_carry_no_software_or_time_metadata(trained):
    card = _card(trained["repo"], trained["champion"])
    first, second = cards.render_plots(card), cards.render_plots(copy.deepcopy(card))
    assert first == second
    for name, data in first.items():
        chunks = _png_chunks(data)
        assert b"tIME" not in chunks, name
        assert b"Software" not in data and b"matplotlib" not in data, name
    changed = copy.deepcopy(card)
    changed["quantitative_analysis"]["confusion"]["tp"] += 1
    other = cards.render_plots(changed)
    assert other["confusion"] != first["confusion"] and other["reliability"] == first["reliability"]
    assert other["roc"] != first["roc"]  # the operating point on the ROC curve comes from the confusion counts


def test_missing_curves_render_a_not_recorded_note(trained):
    manifest = json.loads((trained["repo"] / "models/current/manifest.json").read_text())
    del manifest["curves"]
    card = cards.assemble(manifest, None, {"available": False}, None, model_name="m", gate_record_path=None)
    cards.validate(card, Repo.at(trained["repo"]), "card")
    md = cards.render_markdown(card)
    assert "_ROC curve: not recorded" in md and "_Confusion matrix: not recorded" in md
    assert "roc.png" not in md
    assert "_No gate record found for this version._" in md
    assert "not written: edit config/model-card.json" in md  # no team text: said so, nothing invented
    assert set(cards.render_plots(card)) == set(cards.PLOTS)


def test_team_text_comes_from_config_model_card_json(trained):
    repo = trained["repo"]
    path = repo / "config/model-card.json"
    original = path.read_text()
    try:
        team = json.loads(original)
        team["intended_use"]["primary_uses"] = ["Score churn risk for the pilot market only."]
        path.write_text(json.dumps(team))
        assert run(repo, "card", "build", trained["champion"]).code == 0
        md = _md(repo, trained["champion"])
        assert "- Score churn risk for the pilot market only." in md
        team["limitations"] = []
        path.write_text(json.dumps(team))
        r = run(repo, "card", "build", trained["champion"])
        assert r.code == 2
        assert "config/model-card.json: /limitations: expected at least 1 item(s)" in r.err
    finally:
        path.write_text(original)
        assert run(repo, "card", "build", trained["champion"]).code == 0


def test_write_for_version_never_fails_training(trained, capsys):
    from mlops import config

    cfg = config.load(Repo.at(trained["repo"]))
    out = cards.write_for_version(cfg, "20990101T000000Z-nope-00000000")
    assert "no such model" in out["error"]
    assert "model card for 20990101T000000Z-nope-00000000 not written" in capsys.readouterr().err


def test_metrics_diff_markdown_as_dvc_metrics_diff():
    champ = {"version": "A", "metrics": {"accuracy": 0.8, "f1": 0.7, "ece": 0.05, "roc_auc": None, "n": 10,
                                         "predicted_positive_rate": 0.25},
             "dataset": {"sha256": "a" * 64}}  # fmt: skip
    cand = {"version": "B", "metrics": {"accuracy": 0.85, "f1": 0.7, "ece": 0.06, "roc_auc": 0.9, "n": 10,
                                        "predicted_positive_rate": 0.3},
            "dataset": {"sha256": "a" * 64}}  # fmt: skip
    md = cards.metrics_diff_markdown(cand, champ)
    lines = md.splitlines()
    assert lines[0] == "| metric | champion `A` | candidate `B` | change |"
    assert "| accuracy | 0.8000 | 0.8500 | +0.0500 (better) |" in lines
    assert "| f1 | 0.7000 | 0.7000 | +0.0000 |" in lines
    assert "| ece | 0.0500 | 0.0600 | +0.0100 (worse) |" in lines  # lower is better for ECE
    assert "| roc_auc | n/a | 0.9000 | n/a |" in lines
    assert "| predicted_positive_rate | 0.2500 | 0.3000 | +0.0500 |" in lines  # a rate, not a quality: no verdict
    assert not any(line.startswith("| n |") for line in lines)
    assert "Both measured on the same data set" in md
    cand["dataset"]["sha256"] = "b" * 64
    assert "Measured on different data sets" in cards.metrics_diff_markdown(cand, champ)
    assert cards.metrics_diff_markdown(cand, None) == "No champion to compare `B` with: it would be the first model."


def test_card_commands_without_a_version_are_bad_usage(repo):
    for action in ("build", "render", "check"):
        r = run(repo, "card", action)
        assert r.code == 2
        assert f"mlops card {action}: names no version; pass VERSION ... or --all" in r.err


def _cards_of(repo, versions):
    folder = repo / "metadata/cards"
    files = (p for p in folder.rglob("*") if p.is_file())
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in files
        if p.relative_to(folder).parts[0].startswith(tuple(versions))
    }


def test_cards_written_in_a_loop_are_the_same_bytes_and_one_failure_spares_the_others(trained, tmp_path, capsys):
    import shutil

    from mlops import config

    repo = tmp_path / "repo"
    shutil.copytree(trained["repo"], repo)
    versions = [trained["champion"], *trained["second_run"]]
    before = _cards_of(repo, versions)
    assert len(before) == len(versions) * (3 + len(cards.PLOTS))  # JSON, Markdown, MCT export, plots
    for path in (repo / "metadata/cards").iterdir():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    missing = "20990101T000000Z-nope-00000000"
    cards.write_for_versions(config.load(Repo.at(repo)), [versions[0], missing, *versions[1:]])
    assert _cards_of(repo, versions) == before
    assert f"model card for {missing} not written" in capsys.readouterr().err
