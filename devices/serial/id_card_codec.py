"""Pure codec for idcard-line-v1, the ID-card reader's (二代身份证阅读器) serial line protocol.

Why a separate, pure module: what counts as a card read (line framing, the GB 11643-1999 check
digit) must be exactly right and is easiest to prove with property tests, so it has no asyncio,
no serial port and no clock. The reader (`id_card_reader.py`) and the simulator
(`hardware_sim/id_card_reader.py`) both build on it. The wire format is specified in
docs/devices/id-card-reader.md; the constants below are that document in code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from devices.sample import Scalar

PREFIX: Final = "CARD"
"""First field of every card line."""
MAX_LINE_BYTES: Final = 200
"""Longest acceptable line, terminator included; a longer one is line noise, not a card."""
ID_LENGTH: Final = 18

_WEIGHTS: Final = tuple(pow(2, 17 - i, 11) for i in range(17))
"""ISO 7064 MOD 11-2 weights of the first 17 digits: 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2."""
_CHECK_CHARS: Final = "10X98765432"
"""Check character for (weighted sum mod 11) = 0..10."""


def check_digit(first17: str) -> str:
    """The GB 11643-1999 check character (ISO 7064 MOD 11-2) of the first 17 digits: 0-9 or X."""
    if len(first17) != 17 or not all("0" <= c <= "9" for c in first17):
        raise ValueError(f"{first17!r}: the check digit needs exactly 17 ASCII digits")
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def id_number_problem(id_number: str) -> str:
    """Why `id_number` is not a valid 18-character citizen ID number; empty when it is valid."""
    if len(id_number) != ID_LENGTH:
        return f"the ID number has {len(id_number)} characters, expected {ID_LENGTH}"
    head, last = id_number[:17], id_number[17]
    if not all("0" <= c <= "9" for c in head) or not ("0" <= last <= "9" or last == "X"):
        return "the ID number must be 17 digits and a digit or X"
    expected = check_digit(head)
    if last != expected:
        return f"check digit is {last}, expected {expected}"
    return ""


def is_valid_id_number(id_number: str) -> bool:
    """Whether `id_number` is 18 characters with a correct GB 11643-1999 check digit."""
    return not id_number_problem(id_number)


@dataclass(frozen=True, slots=True)
class CardRead:
    """One card placed on the reader: what its chip said."""

    NAME: ClassVar[str] = "card"
    id_number: str
    name: str


FRAME_FIELDS: Final[dict[str, tuple[str, ...]]] = {"card": ("id_number", "name")}
"""Frame name -> the keys `card_fields` produces, so a profile can be checked against the codec."""


def encode(id_number: str, name: str) -> bytes:
    """The wire bytes of one card line (not validated: a simulator may send a bad card on purpose)."""
    return f"{PREFIX},{id_number},{name}\r\n".encode()


def card_fields(card: CardRead) -> dict[str, Scalar]:
    """The card as a flat record: the value of its signal."""
    return {"id_number": card.id_number, "name": card.name}


def _parse(line: bytes) -> CardRead:
    """Decode one line without its terminator; ValueError says what is wrong with it."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the line is not UTF-8") from None
    parts = text.split(",")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise ValueError(f"expected {PREFIX},<id number>,<name>")
    _, id_number, name = parts
    problem = id_number_problem(id_number)
    if problem:
        raise ValueError(problem)
    if not name.strip() or not name.isprintable():
        raise ValueError("the name is empty or holds control characters")
    return CardRead(id_number, name)


class LineDecoder:
    """Incremental decoder: feed it whatever the port delivered, get back whole, valid card reads.

    It never raises on input bytes and never returns a card whose ID number fails its check
    digit. Lines end with LF (a CR before it is dropped); empty lines are ignored. A line longer
    than MAX_LINE_BYTES is dropped up to its end, holding at most that many bytes meanwhile. The
    counters only grow; read them, do not set them.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._skipping = False
        self.cards_ok = 0
        """Card reads returned."""
        self.bad_lines = 0
        """Complete lines rejected: not UTF-8, wrong fields, bad ID number or check digit, bad name."""
        self.overlong_lines = 0
        """Lines dropped for exceeding MAX_LINE_BYTES."""
        self.discarded_bytes = 0
        """Bytes dropped in rejected or overlong lines, or held back when `reset` was called."""
        self.last_problem = ""
        """Why the latest rejected line was rejected (no personal data in it), for logs."""

    @property
    def errors(self) -> int:
        """Lines rejected for any reason."""
        return self.bad_lines + self.overlong_lines

    @property
    def pending_bytes(self) -> int:
        """Bytes held back waiting for the end of a line."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget the partial line (after the port was reopened); its bytes count as discarded."""
        self.discarded_bytes += len(self._buf)
        self._buf.clear()
        self._skipping = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[CardRead]:
        """Add bytes from the line; return every card completed by them, in order."""
        cards: list[CardRead] = []
        raw = bytes(data)
        pos = 0
        while pos < len(raw):
            end = raw.find(b"\n", pos)
            stop = len(raw) if end < 0 else end + 1
            chunk, pos = raw[pos:stop], stop
            if self._skipping:
                self.discarded_bytes += len(chunk)
                self._skipping = end < 0
                continue
            self._buf += chunk
            if len(self._buf) > MAX_LINE_BYTES:
                self._overlong(skip=end < 0)
                continue
            if end < 0:
                break
            line = bytes(self._buf[:-1]).removesuffix(b"\r")
            self._buf.clear()
            if not line:
                continue
            try:
                cards.append(_parse(line))
            except ValueError as err:
                self.bad_lines += 1
                self.discarded_bytes += len(line) + 1
                self.last_problem = str(err)
                continue
            self.cards_ok += 1
        return cards

    def _overlong(self, *, skip: bool) -> None:
        self.overlong_lines += 1
        self.discarded_bytes += len(self._buf)
        self._buf.clear()
        self._skipping = skip
        self.last_problem = f"line longer than {MAX_LINE_BYTES} bytes"
