"""Engineering values survive the trip through registers for every point type."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.modbus.register_codec import Unrepresentable, decode_point, encode_point
from devices.profile import RegisterPoint


def point(type_: str, **kw: object) -> RegisterPoint:
    return RegisterPoint(signal="t.x", table="holding", address=10, type=type_, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("p", "value", "words"), [
    (point("uint16"), 65535, [0xFFFF]),
    (point("int16"), -2, [0xFFFE]),
    (point("int16", scale=0.1), -12.5, [0xFF83]),
    (point("uint32"), 128000, [0x0001, 0xF400]),
    (point("uint32", word_order="little"), 128000, [0xF400, 0x0001]),
    (point("int32"), -1, [0xFFFF, 0xFFFF]),
    (point("float32"), 1.5, [0x3FC0, 0x0000]),
    (point("uint16", scale=0.1), 220.0, [2200]),
    (point("uint16", scale=0.1, offset=-40.0), 25.0, [650]),
])
def test_known_encodings(p: RegisterPoint, value: float, words: list[int]) -> None:
    assert encode_point(p, value) == words
    assert decode_point(p, words, 10) == pytest.approx(value)


def test_bit_in_register_keeps_the_other_bits() -> None:
    p = point("bool", bit=3)
    assert encode_point(p, True, current=0b0001) == [0b1001]
    assert encode_point(p, False, current=0b1001) == [0b0001]
    assert decode_point(p, [0b1000], 10) is True


def test_out_of_range_value_is_refused_with_the_signal_named() -> None:
    with pytest.raises(ValueError, match=r"t\.x: raw value 70000 is outside uint16"):
        encode_point(point("uint16"), 70000)


def test_unscaled_integers_stay_integers() -> None:
    assert isinstance(decode_point(point("uint16"), [7], 10), int)
    assert isinstance(decode_point(point("uint16", scale=0.5), [7], 10), float)


@given(st.integers(-(2**31), 2**31 - 1), st.sampled_from(["big", "little"]))
def test_int32_round_trip(value: int, order: str) -> None:
    p = point("int32", word_order=order)
    assert decode_point(p, encode_point(p, value), 10) == value


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float32_round_trip(value: float) -> None:
    p = point("float32")
    got = decode_point(p, encode_point(p, value), 10)
    assert math.isclose(float(got), value, rel_tol=1e-6, abs_tol=1e-30)


@given(st.sampled_from(["uint16", "int16", "uint32", "int32", "float32", "bool"]),
       st.sampled_from([1.0, 0.1, 0.01, 0.5]), st.sampled_from([0.0, -40.0]),
       st.lists(st.integers(0, 0xFFFF), min_size=4, max_size=4))
def test_compiled_decoder_matches_reference(type_: str, scale: float, offset: float, words: list[int]) -> None:
    """The poller's precompiled decoders give exactly what decode_point gives."""
    from devices.modbus.register_codec import compile_decoder

    extra = {"bit": 5} if type_ == "bool" else {"scale": scale, "offset": offset}
    p = RegisterPoint(signal="t.x", table="input", address=11, type=type_, **extra)  # type: ignore[arg-type]
    try:
        want: object = decode_point(p, words, 10)
    except Unrepresentable as err:
        want = err.raw
    try:
        got: object = compile_decoder(p, 10)(words)
    except Unrepresentable as err:
        got = err.raw
    assert got == want


@pytest.mark.parametrize(("words", "why"), [
    ([0x7FC0, 0x0000], "decode to nan"), ([0x7F80, 0x0000], "decode to inf"), ([0xFF80, 0x0000], "decode to -inf"),
])
def test_a_float_register_holding_nan_or_infinity_is_not_a_reading(words: list[int], why: str) -> None:
    p = point("float32")
    with pytest.raises(Unrepresentable, match=why) as caught:
        decode_point(p, words, 10)
    assert caught.value.raw == " ".join(f"0x{w:04X}" for w in words)


def test_a_value_outside_the_profiles_range_is_not_a_reading() -> None:
    """A depth sensor's register reads 1500 (150.0 mm at 0.1 mm) where the profile says the device
    reports at most 100 mm: a fault with the raw word, for the poller to record, not a sample."""
    from devices.modbus.register_codec import compile_decoder

    p = RegisterPoint(signal="t.depth_mm", table="input", address=10, type="uint16", scale=0.1, unit="mm", min=0,
                      max=100)
    assert decode_point(p, [1000], 10) == 100.0 and compile_decoder(p, 10)([550]) == 55.0
    for decode in (lambda w: decode_point(p, w, 10), compile_decoder(p, 10)):
        with pytest.raises(Unrepresentable, match=r"150 mm, above the profile's max 100") as caught:
            decode([1500])
        assert caught.value.raw == "0x05DC"
