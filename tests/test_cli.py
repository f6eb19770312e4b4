import subprocess
import sys

from tests.support.cli import run

HEAVY = ("pandas", "numpy", "sklearn", "mlflow", "evidently", "github", "matplotlib", "pyarrow", "skops", "scipy")


def test_help_imports_no_heavy_library():
    # `mlops --help` must stay instant: heavy libraries are imported inside commands only.
    code = (
        "import sys\n"
        "from mlops.cli import build_parser\n"
        "build_parser().format_help()\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_lists_stages():
    r = run(None, "--help")
    assert r.code == 0
    for command in ("train", "config"):
        assert command in r.out


def test_unknown_command_is_usage_error():
    r = run(None, "frobnicate")
    assert r.code == 2
    assert "invalid choice: 'frobnicate'" in r.err


def test_no_config_folder_is_bad_input(tmp_path):
    r = run(tmp_path, "train")
    assert r.code == 2
    assert (
        r.err.strip()
        == f"error: {tmp_path}/config: no config/ folder here; run from the repository root or pass --repo"
    )


def test_ctrl_c_exits_130_with_one_line(monkeypatch, capsys):
    import argparse

    from mlops import cli

    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    real = cli.build_parser

    def parser_with_a_slow_command() -> argparse.ArgumentParser:
        parser = real()
        parser.set_defaults(func=interrupted)
        return parser

    monkeypatch.setattr(cli, "build_parser", parser_with_a_slow_command)
    assert cli.main([]) == 130  # 128 + SIGINT, as a shell reports Ctrl-C
    assert capsys.readouterr().err == "error: interrupted\n"
