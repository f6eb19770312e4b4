"""Cards checked against the standards they claim (issue 16): Model Card Toolkit's own JSON schema (v0.0.2,
vendored under tests/mct/) and Hugging Face's model card metadata, read offline by huggingface_hub.

Two trained repositories: the seeded synthetic one the other card tests share, and one trained on a real
public data set shipped inside a PyPI package (Fair 1978, from the statsmodels wheel: tests/support/public_data.py).
"""

import base64
import json

import pytest

from mlops import cards
from mlops.repo import Repo
from tests.support.public_data import trained_fair
from tests.support.repo import ROOT
from tests.support.trained import shared, trained_twice

pytestmark = pytest.mark.slow
MCT_SCHEMA = json.loads((ROOT / "tests/mct/model_card.schema.json").read_text())


@pytest.fixture(scope="module", params=["synthetic", "fair"])
def trained(request, tmp_path_factory):
    if request.param == "synthetic":
        return shared(tmp_path_factory, "cards", lambda folder: trained_twice(folder / "repo"))
    return shared(tmp_path_factory, "fair-cards", lambda folder: trained_fair(folder / "repo"))


def _versions(repo):
    return cards.all_card_versions(Repo.at(repo))


def _mct_validator():
    import jsonschema

    # MCT's file spells one reference "#definitions/graphic" (no slash); MCT's proto means #/definitions/graphic.
    text = json.dumps(MCT_SCHEMA).replace('"#definitions/graphic"', '"#/definitions/graphic"')
    return jsonschema.Draft7Validator(json.loads(text), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def _undeclared(instance, schema, root, where=""):
    """Keys MCT's schema does not declare (its protobuf loader refuses them even where the schema is open)."""
    if "$ref" in schema:
        schema = root["definitions"][schema["$ref"].rsplit("/", 1)[-1]]
    out = []
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        for key, value in instance.items():
            if key not in props:
                out.append(f"{where}/{key}")
            else:
                out += _undeclared(value, props[key], root, f"{where}/{key}")
    elif isinstance(instance, list):
        for i, item in enumerate(instance):
            out += _undeclared(item, schema.get("items", {}), root, f"{where}/{i}")
    return out


def test_every_mct_export_has_zero_violations_of_mct_s_schema(trained):
    repo = trained["repo"]
    versions = _versions(repo)
    assert len(versions) == 2
    validator = _mct_validator()
    for version in versions:
        export = json.loads(cards.mct_path(Repo.at(repo), version).read_text())
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:80]}" for e in validator.iter_errors(export)]
        assert errors == [], (version, errors[:5])
        assert _undeclared(export, MCT_SCHEMA, MCT_SCHEMA) == []
        assert export["schema_version"] == "0.0.2"
        card = json.loads((repo / "metadata/cards" / f"{version}.json").read_text())
        # every metric of the card, as MCT's strings that parse back to the card's numbers exactly
        perf = card["quantitative_analysis"]["performance_metrics"]
        assert len(export["quantitative_analysis"]["performance_metrics"]) == len(perf)
        for mine, theirs in zip(perf, export["quantitative_analysis"]["performance_metrics"], strict=True):
            assert isinstance(theirs["value"], str)
            assert mine["value"] is None or float(theirs["value"]) == mine["value"]
            if "confidence_interval" in mine:
                assert float(theirs["confidence_interval"]["lower_bound"]) == mine["confidence_interval"]["lower_bound"]
        # graphics embedded as base64 of the very PNG files the Markdown shows
        for graphic in export["quantitative_analysis"]["graphics"]["collection"]:
            png = cards.plot_path(Repo.at(repo), version, graphic["name"]).read_bytes()
            assert base64.b64decode(graphic["image"]) == png
        features = card["model_parameters"]["input_format"]
        assert {m["key"] for m in export["model_parameters"]["input_format_map"]} == {
            *features["numeric"],
            *features["categorical"],
        }


def test_the_vendored_schema_is_mct_s_own_and_refuses_the_old_card_format():
    """The check can fail: numbers where MCT wants strings and an object input_format are violations."""
    assert (ROOT / "tests/mct/LICENSE").read_text().find("Apache License") > 0
    bad = {"model_parameters": {"input_format": {"numeric": ["a"]}},
           "quantitative_analysis": {"performance_metrics": [{"type": "accuracy", "value": 0.9}]},
           "gate": {}}  # fmt: skip
    messages = sorted(e.message for e in _mct_validator().iter_errors(bad))
    assert len(messages) == 3, messages
    assert any("not of type 'string'" in m for m in messages)
    assert any("'gate' was unexpected" in m for m in messages)


def test_markdown_front_matter_loads_with_huggingface_hub_and_round_trips_the_model_index(trained):
    from huggingface_hub import ModelCard, metadata_load

    repo = trained["repo"]
    for version in _versions(repo):
        path = repo / "metadata/cards" / f"{version}.md"
        card = json.loads((repo / "metadata/cards" / f"{version}.json").read_text())
        meta = metadata_load(path)
        assert meta == card["huggingface"]
        hub = ModelCard.load(path)  # offline: a local path is read, nothing is fetched
        assert hub.data.library_name == "sklearn" and hub.data.pipeline_tag == "tabular-classification"
        assert hub.data.license == "apache-2.0"
        assert hub.data.to_dict()["model-index"] == meta["model-index"]
        reported = {r.metric_type: r.metric_value for r in hub.data.eval_results}
        test = {p["type"]: p["value"] for p in card["quantitative_analysis"]["performance_metrics"]
                if p["slice"] == "overall" and p["split"] == "test" and p["type"] != "n"}  # fmt: skip
        assert reported == test and {"ece", "brier"} <= set(reported)
        dataset = meta["model-index"][0]["results"][0]["dataset"]
        assert dataset["type"] == dataset["name"] == card["model_details"]["dataset_name"]
        assert dataset["name"] in {"customer-churn", "fair-affairs"}
        assert ("synthetic-data" in meta["tags"]) == (dataset["name"] == "customer-churn")


def test_a_hub_dataset_id_and_a_named_other_licence_reach_the_front_matter():
    from huggingface_hub import ModelCard

    from mlops.cards.hub import front_matter, hf_metadata

    card = {
        "model_details": {"name": "m-classifier", "model_type": "logistic_regression", "dataset_name": "churn",
                          "licenses": [{"identifier": "other"}], "license_name": "acme-licence"},
        "lineage": {"dataset": {"sha256": "ab" * 32, "synthetic": False}},
    }  # fmt: skip
    meta = hf_metadata(card, {"accuracy": 0.9, "ece": 0.05, "n": 100}, "scikit-learn/churn")
    hub = ModelCard(front_matter(meta) + "\n\n# m\n")
    assert hub.data.license == "other" and hub.data.license_name == "acme-licence"
    assert hub.data.datasets == ["scikit-learn/churn"]
    (result,) = hub.data.eval_results[:1]
    assert result.dataset_type == "scikit-learn/churn" and result.dataset_name == "churn"
    assert {r.metric_type for r in hub.data.eval_results} == {"accuracy", "ece"}
