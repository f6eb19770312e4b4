from mlops import gha


def test_outputs_and_summary_only_when_set(tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    gha.set_outputs(a=1)  # no file, no error
    gha.add_summary("x")
    out, summary = tmp_path / "out", tmp_path / "summary"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    gha.set_outputs(promoted=True, version="v1", body="two\nlines")
    gha.add_summary("## Title\n")
    gha.add_summary("text")
    assert out.read_text() == "promoted=true\nversion=v1\nbody<<MLOPS_EOF\ntwo\nlines\nMLOPS_EOF\n"
    assert summary.read_text() == "## Title\n\ntext\n\n"


def test_warn_is_an_annotation_in_actions(monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    gha.warn("disk low")
    monkeypatch.delenv("GITHUB_ACTIONS")
    gha.warn("disk low")
    assert capsys.readouterr().err == "::warning::disk low\nwarning: disk low\n"


def test_progress_prints_plain_lines_when_piped(monkeypatch, capsys):
    monkeypatch.setenv("CI", "true")
    assert list(gha.progress(["a", "b"], "fit")) == ["a", "b"]
    assert capsys.readouterr().err == "fit: 1/2\nfit: 2/2\n"
