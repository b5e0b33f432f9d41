"""idcard-line-v1 codec: the GB 11643-1999 check digit, and properties over arbitrary bytes.

The properties are the promises the reader relies on: every valid card sent comes back whatever
the garbage lines around it and however the line splits it; an ID number with a wrong check digit
is never accepted; the decoder never raises and never holds more than one line's worth of bytes.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from devices.serial.id_card_codec import (
    MAX_LINE_BYTES,
    CardRead,
    LineDecoder,
    check_digit,
    encode,
    id_number_problem,
    is_valid_id_number,
)

REAL = "11010519491231002X"
"""The example number of GB 11643-1999 itself (a woman born 1949-12-31 in Beijing's Chaoyang)."""

first17_st = st.text(alphabet="0123456789", min_size=17, max_size=17)
names_st = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn")),
    min_size=1, max_size=15,
).filter(lambda n: "," not in n and n.strip() != "" and n.isprintable())


def valid(first17: str) -> str:
    return first17 + check_digit(first17)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def test_the_standards_example_is_valid_and_one_changed_digit_is_not() -> None:
    assert check_digit(REAL[:17]) == "X"
    assert is_valid_id_number(REAL)
    assert id_number_problem("11010519491231003X") == "check digit is X, expected 8"
    assert not is_valid_id_number("11010519491231002x")  # X is upper case on the wire
    assert id_number_problem(REAL[:17]) == "the ID number has 17 characters, expected 18"


@given(first17_st, st.integers(0, 16), st.integers(1, 9))
def test_any_single_changed_digit_is_caught(first17: str, index: int, delta: int) -> None:
    number = valid(first17)
    changed = str((int(number[index]) + delta) % 10)
    assert not is_valid_id_number(number[:index] + changed + number[index + 1 :])


@given(st.lists(st.tuples(first17_st, names_st), min_size=1, max_size=5),
       st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b), max_size=5),
       st.lists(st.integers(0, 2000), max_size=12))
def test_valid_cards_survive_garbage_lines_and_any_split(
    cards: list[tuple[str, str]], garbage: list[bytes], cuts: list[int]
) -> None:
    wire = b"".join(g + b"\r\n" for g in garbage) + b"".join(encode(valid(f), n) for f, n in cards)
    decoder = LineDecoder()
    got = [c for piece in split(wire, cuts) for c in decoder.feed(piece)]
    assert got == [CardRead(valid(f), n) for f, n in cards]
    assert decoder.cards_ok == len(cards)
    assert decoder.pending_bytes == 0


@given(first17_st, names_st)
def test_a_wrong_check_digit_is_counted_not_delivered(first17: str, name: str) -> None:
    right = check_digit(first17)
    wrong = "0" if right != "0" else "1"
    decoder = LineDecoder()
    assert decoder.feed(encode(first17 + wrong, name) + encode(valid(first17), name)) == [
        CardRead(valid(first17), name)
    ]
    assert (decoder.bad_lines, decoder.errors) == (1, 1)
    assert decoder.last_problem == f"check digit is {wrong}, expected {right}"


def test_an_overlong_line_is_dropped_to_its_end_and_the_next_card_is_read() -> None:
    decoder = LineDecoder()
    card = encode(REAL, "张三")
    assert decoder.feed(b"CARD," + b"9" * 150) == []
    assert decoder.feed(b"9" * 150) == []
    assert decoder.pending_bytes == 0  # dropped as soon as it grew too long, not held
    assert decoder.feed(b"9" * 500 + b"\r\n" + card) == [CardRead(REAL, "张三")]
    exact = f"CARD,{REAL},".encode() + b"A" * (MAX_LINE_BYTES - 24 - 2) + b"\r\n"
    assert len(exact) == MAX_LINE_BYTES and len(decoder.feed(exact)) == 1
    assert decoder.feed(exact[:-2] + b"A\r\n") == []
    assert (decoder.overlong_lines, decoder.bad_lines, decoder.cards_ok) == (2, 0, 2)


def test_malformed_lines_each_count_once() -> None:
    lines = [b"CARD," + REAL.encode(), b"CARD,%s,\xff\xfe" % REAL.encode(), b"ID,%s,A" % REAL.encode(),
             b"CARD,%s,A,B" % REAL.encode(), b"CARD,%s, " % REAL.encode(), b"CARD,%s,A\tB" % REAL.encode(),
             b"CARD,1101051949123100,A"]
    decoder = LineDecoder()
    assert decoder.feed(b"\r\n".join(lines) + b"\r\n\r\n\n") == []
    assert decoder.bad_lines == len(lines)


@given(st.binary(max_size=1200), st.lists(st.integers(0, 1200), max_size=10))
def test_never_raises_and_holds_at_most_one_line(data: bytes, cuts: list[int]) -> None:
    decoder = LineDecoder()
    for piece in split(data, cuts):
        for card in decoder.feed(piece):
            assert is_valid_id_number(card.id_number)
        assert decoder.pending_bytes <= MAX_LINE_BYTES
    decoder.reset()
    assert decoder.pending_bytes == 0
