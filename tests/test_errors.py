import pytest

from mlops.errors import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_UNEXPECTED, BadInput, CheckFailed, MlopsError


def test_bad_input_is_one_line_where_problem_fix():
    exc = BadInput("config/x.json: /a", 'expected a number, found "b"', "fix config/x.json")
    assert str(exc) == 'config/x.json: /a: expected a number, found "b"; fix config/x.json'
    assert exc.exit_code == EXIT_BAD_INPUT


def test_bad_input_without_where_or_fix():
    assert str(BadInput("", "no data")) == "no data"
    assert str(BadInput("f.csv", "empty")) == "f.csv: empty"


def test_exit_codes_follow_the_design():
    assert (MlopsError.exit_code, CheckFailed.exit_code, BadInput.exit_code) == (EXIT_UNEXPECTED, EXIT_CHECK_FAILED, 2)
    assert EXIT_CHECK_FAILED == 1 and EXIT_UNEXPECTED == 3


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            PermissionError(13, "Permission denied"),
            "f.csv: cannot be read (permission denied); fix the file's permissions",
        ),
        (OSError(5, "Input/output error"), "f.csv: cannot be read (Input/output error); check the disk"),
    ],
)
def test_unreadable_names_the_os_reason(exc, expected):
    assert str(BadInput.unreadable("f.csv", exc, "check the disk")) == expected
