"""The citizen ID number (居民身份证号码) of GB 11643-1999: what makes one valid, and why one is not.

18 characters: a 6-digit address code, the birth date as YYYYMMDD, a 3-digit sequence code and a
check character (ISO 7064 MOD 11-2 over the first 17 digits, 0-9 or X). A number is valid here
when its check character is right and its birth date is a real date from 1900 up to today. A
lower-case x (as people type it) is accepted and stored as X, the only form the province takes.

Registration and the candidate import both check numbers here, so the invigilator's screen and
the batch file agree; the check character itself is the ID-card reader codec's, so the reader and
registration agree too.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from devices.serial.id_card_codec import check_digit

LENGTH = 18
EARLIEST_BIRTH = date(1900, 1, 1)
CHINA_TIME = timezone(timedelta(hours=8), "CST")
"""The ID numbers' birth dates are dates in China: compare them with today there."""


class InvalidIdNumber(ValueError):
    """The number is not a valid citizen ID number; the message says what is wrong with it, e.g.
    "check digit should be 5, not 1" (it names no candidate: the caller knows who)."""


def china_date(utc_ns: int) -> date:
    """The calendar date in China (UTC+8) at `utc_ns`: "today" for a birth date check."""
    return datetime.fromtimestamp(utc_ns / 1e9, CHINA_TIME).date()


def citizen_id_number(text: str, today: date) -> str:
    """`text` as a valid citizen ID number, normalised (a final x becomes X).

    Raises InvalidIdNumber with the first thing wrong: the length, a character that is not a
    digit, the birth date (not a date, in the future, before 1900) or the check digit.
    """
    if len(text) != LENGTH:
        raise InvalidIdNumber(f"has {len(text)} characters, expected {LENGTH}")
    number = text[:17] + text[17].upper()
    for position, char in enumerate(number, start=1):
        if not ("0" <= char <= "9" or (position == LENGTH and char == "X")):
            allowed = "a digit or X" if position == LENGTH else "a digit"
            raise InvalidIdNumber(f"character {position} is {text[position - 1]!r}, expected {allowed}")
    born = number[6:14]
    try:
        birth = date(int(born[:4]), int(born[4:6]), int(born[6:]))
    except ValueError:
        raise InvalidIdNumber(f"birth date {born} is not a date") from None
    if birth < EARLIEST_BIRTH:
        raise InvalidIdNumber(f"birth date {born} is before 1900")
    if birth > today:
        raise InvalidIdNumber(f"birth date {born} is in the future")
    expected = check_digit(number[:17])
    if number[17] != expected:
        raise InvalidIdNumber(f"check digit should be {expected}, not {number[17]}")
    return number

