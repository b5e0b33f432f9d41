"""Raw Modbus words and bits <-> engineering values, per profile point. Pure: no IO.

The simulator uses `encode_point` to lay its state out exactly as the client will decode it, so
both sides share one definition of the register map.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import cache

from devices.profile import RegisterPoint

Value = bool | int | float


class Unrepresentable(ValueError):
    """The registers hold something the point cannot mean: NaN or infinity in a float32, or a value
    outside the range the profile says the device can report. The poller records a device fault
    with `raw` (the words as the device sent them), never a sample."""

    def __init__(self, point: RegisterPoint, words: Sequence[int] | Sequence[bool], reason: str) -> None:
        self.raw = " ".join(f"0x{int(w) & 0xFFFF:04X}" for w in words)
        self.reason = reason
        super().__init__(f"{point.signal}: registers {self.raw} {reason}")


def _in_range(point: RegisterPoint, value: float, words: Sequence[int] | Sequence[bool]) -> None:
    if not math.isfinite(value):
        raise Unrepresentable(point, words, f"decode to {value}, which no device can measure")
    if point.min is not None and value < point.min:
        raise Unrepresentable(point, words, f"decode to {value:g} {point.unit}, below the profile's min {point.min:g}")
    if point.max is not None and value > point.max:
        raise Unrepresentable(point, words, f"decode to {value:g} {point.unit}, above the profile's max {point.max:g}")


def decode_point(point: RegisterPoint, raw: Sequence[int] | Sequence[bool], block_start: int) -> Value:
    """Decode `point` out of a block read starting at `block_start`.

    Bits (coil/discrete) come as bools, registers as 0..65535 ints. Scaling applies to numbers,
    never to bools; a scaled value is a float, an unscaled integer stays an int (counts and enums).
    Raises Unrepresentable for NaN, infinity, or a value outside the point's min/max.
    """
    value = _decode(point, raw, block_start)
    if not isinstance(value, bool):
        _in_range(point, value, raw[point.address - block_start: point.address - block_start + point.words])
    return value


def _decode(point: RegisterPoint, raw: Sequence[int] | Sequence[bool], block_start: int) -> Value:
    i = point.address - block_start
    if point.table in ("coil", "discrete"):
        return bool(raw[i])
    if point.type == "bool":
        return bool((int(raw[i]) >> (point.bit or 0)) & 1)
    words = [int(w) & 0xFFFF for w in raw[i : i + point.words]]
    if point.word_order == "little":
        words.reverse()
    number: int | float
    if point.type == "uint16":
        number = words[0]
    elif point.type == "int16":
        number = words[0] - 0x10000 if words[0] & 0x8000 else words[0]
    else:
        packed = struct.pack(">HH", words[0], words[1])
        fmt = {"uint32": ">I", "int32": ">i", "float32": ">f"}[point.type]
        number = struct.unpack(fmt, packed)[0]
    if point.scale == 1.0 and point.offset == 0.0:
        return number
    value = number * point.scale + point.offset
    if point.type == "float32":
        return value
    # An integer register scaled by 0.1 carries exactly one decimal: 2200 * 0.1 is 220.0, not
    # 220.00000000000003, so equal readings compare equal and print as the device shows them.
    return round(value, max(_decimals(point.scale), _decimals(point.offset)))


@cache
def _decimals(x: float) -> int:
    exponent = Decimal(repr(x)).as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def encode_point(point: RegisterPoint, value: Value, current: int = 0) -> list[int]:
    """Registers that make `point` read back as `value` (for a bit in a register: `current` updated).

    Raises ValueError when the value does not fit the point's type: the simulator must never
    serve a register the real device could not hold.
    """
    if point.table in ("coil", "discrete"):
        return [1 if value else 0]
    if point.type == "bool":
        mask = 1 << (point.bit or 0)
        return [(current | mask) if value else (current & ~mask & 0xFFFF)]
    if point.type == "float32":
        number: int | float = (float(value) - point.offset) / point.scale
    else:
        number = round((float(value) - point.offset) / point.scale)
    if point.type == "uint16":
        _check(point, int(number), 0, 0xFFFF)
        return [int(number)]
    if point.type == "int16":
        _check(point, int(number), -0x8000, 0x7FFF)
        return [int(number) & 0xFFFF]
    if point.type == "float32":
        if math.isnan(number) or math.isinf(number):
            raise ValueError(f"{point.signal}: {value!r} is not a finite number")
        packed = struct.pack(">f", number)
    elif point.type == "uint32":
        _check(point, int(number), 0, 0xFFFFFFFF)
        packed = struct.pack(">I", int(number))
    else:
        _check(point, int(number), -0x80000000, 0x7FFFFFFF)
        packed = struct.pack(">i", int(number))
    hi, lo = struct.unpack(">HH", packed)
    return [hi, lo] if point.word_order == "big" else [lo, hi]


def _check(point: RegisterPoint, raw: int, low: int, high: int) -> None:
    if not low <= raw <= high:
        raise ValueError(
            f"{point.signal}: raw value {raw} is outside {point.type} range {low}..{high} "
            f"(scale {point.scale}, offset {point.offset})"
        )


Decoder = Callable[[Sequence[int] | Sequence[bool]], Value]


def compile_decoder(point: RegisterPoint, block_start: int) -> Decoder:
    """A decoder for `point` inside a block read at `block_start`, with its index, scaling and
    rounding worked out once: the poller runs it for every point of every poll (hot path)."""
    i = point.address - block_start
    if point.table in ("coil", "discrete"):
        return lambda raw: bool(raw[i])
    if point.type == "bool":
        mask = 1 << (point.bit or 0)
        return lambda raw: bool(int(raw[i]) & mask)
    if point.min is not None or point.max is not None or point.type == "float32":
        return lambda raw: decode_point(point, raw, block_start)  # checked: a range, or NaN and infinity
    if point.type == "uint16" and point.scale == 1.0 and point.offset == 0.0:
        return lambda raw: int(raw[i])
    if point.type in ("uint16", "int16"):
        scale, offset = point.scale, point.offset
        digits = max(_decimals(scale), _decimals(offset))
        signed = point.type == "int16"

        def scaled(raw: Sequence[int] | Sequence[bool]) -> Value:
            w = int(raw[i])
            if signed and w & 0x8000:
                w -= 0x10000
            return round(w * scale + offset, digits)

        return scaled
    return lambda raw: decode_point(point, raw, block_start)
