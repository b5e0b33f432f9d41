"""GB 11643-1999 citizen ID numbers: the check digit, the birth date, and the reason given for a bad one."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.serial.id_card_codec import is_valid_id_number
from station.id_number import InvalidIdNumber, china_date, citizen_id_number

TODAY = date(2026, 9, 1)


@pytest.mark.parametrize("number", ["110101199001010015", "11010519491231002X",
                                    "440305200002291232"])  # 2000-02-29: a leap day is a date
def test_valid_numbers_come_back_as_they_are(number: str) -> None:
    assert citizen_id_number(number, TODAY) == number


def _check(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights, strict=True)) % 11]


def test_a_lower_case_x_is_accepted_and_stored_upper_case() -> None:
    assert citizen_id_number("11010519491231002x", TODAY) == "11010519491231002X"


@pytest.mark.parametrize(("number", "reason"), [
    ("110101199001010011", "check digit should be 5, not 1"),
    ("11010519491231003X", "check digit should be 8, not X"),
    ("110101199013010010", "birth date 19901301 is not a date"),
    ("110101199002300010", "birth date 19900230 is not a date"),
    ("110101190002290010", "birth date 19000229 is not a date"),  # 1900 was no leap year
    ("110101189912310010", "birth date 18991231 is before 1900"),
    ("110101202609020010", "birth date 20260902 is in the future"),
    ("11010119900101001", "has 17 characters, expected 18"),
    ("1101011990010100151", "has 19 characters, expected 18"),
    ("", "has 0 characters, expected 18"),
    ("11010119900101X015", "character 15 is 'X', expected a digit"),
    ("110101199001010 15", "character 16 is ' ', expected a digit"),
    ("11010119900101001Y", "character 18 is 'Y', expected a digit or X"),
    ("１10101199001010015", "character 1 is '１', expected a digit"),  # a full-width digit
])
def test_an_invalid_number_says_why(number: str, reason: str) -> None:
    with pytest.raises(InvalidIdNumber) as caught:
        citizen_id_number(number, TODAY)
    assert str(caught.value) == reason


def test_born_today_is_valid_born_tomorrow_is_not() -> None:
    assert citizen_id_number("110101202609010018", TODAY) == "110101202609010018"
    tomorrow = "11010120260902001"
    with pytest.raises(InvalidIdNumber, match="birth date 20260902 is in the future"):
        citizen_id_number(tomorrow + _check(tomorrow), TODAY)


def test_today_is_the_date_in_china() -> None:
    # 2026-08-31 20:00 UTC is already 1 September in Beijing
    utc_ns = 1_788_206_400 * 1_000_000_000
    assert china_date(utc_ns) == date(2026, 9, 1)


@given(st.dates(min_value=date(1900, 1, 1), max_value=TODAY), st.integers(0, 999), st.integers(0, 16),
       st.integers(1, 9))
def test_any_one_digit_changed_is_caught(birth: date, sequence: int, position: int, delta: int) -> None:
    first17 = f"110101{birth:%Y%m%d}{sequence:03d}"
    number = first17 + _check(first17)
    assert citizen_id_number(number, TODAY) == number
    assert is_valid_id_number(number)  # the ID-card reader agrees
    changed = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1:]
    with pytest.raises(InvalidIdNumber):
        citizen_id_number(changed, TODAY)
