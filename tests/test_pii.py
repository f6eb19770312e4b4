"""PII scan: planted values are all found, numbers never are, check digits decide."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mlops import pii
from mlops.tabular import read_csv_checked

VALID_CARDS = [
    "4111111111111111",  # Visa
    "4012 8888 8888 1881",  # Visa, spaced
    "5555-5555-5555-4444",  # Mastercard, dashed
    "2223003122003222",  # Mastercard 2-series
    "378282246310005",  # American Express (15)
    "6011111111111117",  # Discover
    "3530111333300000",  # JCB
    "30569309025904",  # Diners (14)
]
VALID_IBANS = [
    "DE89 3704 0044 0532 0130 00",
    "GB82WEST12345698765432",
    "FR1420041010050500013M02606",
    "NL91ABNA0417164300",
]
EMAILS = ["jane.doe@example.com", "a+b@sub.example.co.uk"]
PHONES = ["+44 20 7946 0958", "(415) 555-2671", "415-555-2671", "+14155552671", "01 23 45 67 89", "06.12.34.56.78"]
SSNS = ["078-05-1120", "219-09-9999"]


def _luhn_invalid(rng, n):
    out = []
    while len(out) < n:
        s = "4" + "".join(rng.choice(list("0123456789"), 15))
        if not pii.luhn_valid(s):
            out.append(s)
    return out


def test_luhn_and_mod97():
    assert all(pii.luhn_valid(c.replace(" ", "").replace("-", "")) for c in VALID_CARDS)
    assert not pii.luhn_valid("4111111111111112")
    assert all(pii.iban_valid(i) for i in VALID_IBANS)
    assert not pii.iban_valid("DE89 3704 0044 0532 0130 01")  # one digit off breaks mod-97
    assert not pii.iban_valid("DE89 3704 0044 0532 0130")  # wrong length for DE


def test_random_floats_and_16_digit_numbers_give_no_findings(tmp_path):
    rng = np.random.default_rng(5)
    n = 100_000
    table = pa.table(
        {
            "uniform": rng.uniform(0, 1, n),
            "normal": rng.normal(0, 1e6, n),
            "sixteen_digit_floats": rng.uniform(1e15, 1e16, n).round(),
            "sixteen_digit_ints": rng.integers(10**15, 10**16, n),
            "card_like_ints": np.full(n, 4111111111111111, dtype=np.int64),
            "long_decimals": rng.uniform(0, 1, n).round(16),
        }
    )
    assert pii.scan_table(table) == []
    # The same numbers after a CSV round trip (what validation actually reads).
    import pyarrow.csv as pcsv

    path = tmp_path / "floats.csv"
    pcsv.write_csv(table, path)
    assert pii.scan_table(read_csv_checked(path, "floats.csv")) == []


def test_numbers_stored_as_text_with_decimals_are_not_cards():
    rng = np.random.default_rng(1)
    values = [f"{x:.16f}" for x in rng.uniform(0, 1, 20_000)] + [f"{x:.1f}" for x in rng.uniform(1e15, 1e16, 20_000)]
    assert pii.scan_table(pa.table({"as_text": values})) == []


def test_luhn_invalid_16_digit_strings_are_not_found():
    rng = np.random.default_rng(2)
    values = _luhn_invalid(rng, 5000)
    assert pii.scan_table(pa.table({"ids": values})) == []


@pytest.mark.parametrize("filler_count", [10, 5000])  # distinct-value path and whole-column path
def test_planted_values_are_all_found_with_rows(filler_count):
    rng = np.random.default_rng(3)
    planted = {
        "payment_card": [f"paid with {c} yesterday" for c in VALID_CARDS],
        "iban": [f"IBAN: {i}" for i in VALID_IBANS],
        "email": [f"contact {e} please" for e in EMAILS],
        "phone": [f"call {p}" for p in PHONES],
        "us_ssn": [f"ssn {s}" for s in SSNS],
    }
    filler = [f"note {i} about order {rng.integers(0, 10**6)}" for i in range(filler_count)]
    fillers = filler * max(1, 20_000 // filler_count)
    values = list(fillers)
    where = {}
    for kind, items in planted.items():
        where[kind] = []
        for item in items:
            pos = int(rng.integers(0, len(values)))
            values.insert(pos, item)
        # row numbers are recomputed after all inserts below
    for kind, items in planted.items():
        where[kind] = sorted(i + 1 for i, v in enumerate(values) if v in items)
    found = {f.kind: f for f in pii.scan_table(pa.table({"notes": values, "amount": rng.uniform(0, 1, len(values))}))}
    assert set(found) == set(planted)
    for kind, items in planted.items():
        assert found[kind].column == "notes"
        assert found[kind].count == len(items), kind
        assert found[kind].rows == where[kind][: pii.MAX_ROWS_SHOWN]


def test_findings_never_hold_values():
    table = pa.table({"t": ["mail me at jane.doe@example.com", "x"] * 5})
    (finding,) = pii.scan_table(table)
    assert "jane" not in str(finding.as_dict())
    assert finding.as_dict() == {"column": "t", "kind": "email", "count": 5, "rows": [1, 3, 5, 7, 9]}


def test_invalid_check_digits_and_never_issued_numbers_are_ignored():
    values = [
        "GB82WEST12345698765431",  # mod-97 fails
        "5555-5555-5555-4445",  # Luhn fails
        "1234567812345670",  # Luhn passes, no issuer uses prefix 12
        "000-12-3456",  # SSN area 000 is never issued
        "666-12-3456",
        "2024-01-15",  # a date, not a phone
        "192.168.100.200",
    ]
    assert pii.scan_table(pa.table({"t": values})) == []


def test_dictionary_columns_are_scanned_and_unknown_kind_refused():
    table = pa.table({"t": pa.array(["x", "jane@example.com"] * 3).dictionary_encode()})
    assert [f.kind for f in pii.scan_table(table)] == ["email"]
    with pytest.raises(ValueError, match="unknown PII kind"):
        pii.scan_table(table, kinds=("email", "passport"))


@pytest.mark.parametrize("text", ["4111 1111 1111 1111 123", "4111111111111111 12/25", "4012-8888-8888-1881-07/27"])
def test_a_card_number_followed_by_a_cvv_or_an_expiry_is_found(text):
    assert pii.is_card(text)
    (finding,) = pii.scan_table(pa.table({"notes": [f"paid: {text}"] * 3 + ["nothing here"] * 3}))
    assert (finding.kind, finding.count) == ("payment_card", 3)


def test_digit_groups_that_only_pass_luhn_as_a_whole_are_no_card():
    assert not pii.is_card("4111 1111 1111 1112 123")  # no prefix of whole groups is a valid card
