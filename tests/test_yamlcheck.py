import pytest

from mlops import yamlcheck
from mlops.errors import BadInput


def test_duplicate_yaml_key_names_the_line():
    text = "steps:\n  - if: a\n    if: b\n"
    with pytest.raises(
        BadInput, match=r"wf.yml: invalid YAML at line 3 column 5: found duplicate key 'if' \(first at line 2\)"
    ):
        yamlcheck.load_yaml(text, "wf.yml")
    assert yamlcheck.load_yaml("a: 1\nb: [1, 2]\n") == {"a": 1, "b": [1, 2]}


def test_duplicate_json_key_is_refused():
    with pytest.raises(BadInput, match=r"x.json: duplicate key 'a' in a JSON object; keep one of them"):
        yamlcheck.load_json('{"a": 1, "a": 2}', "x.json")
    with pytest.raises(BadInput, match=r"x.json: malformed JSON at line 1 column 2"):
        yamlcheck.load_json("{,}", "x.json")


def test_main_is_the_pre_commit_hook(tmp_path, capsys):
    good, bad = tmp_path / "good.json", tmp_path / "bad.yml"
    good.write_text('{"a": 1}')
    bad.write_text("a: 1\na: 2\n")
    assert yamlcheck.main([str(good)]) == 0
    assert yamlcheck.main([str(good), str(bad)]) == 1
    assert "duplicate key 'a'" in capsys.readouterr().err
