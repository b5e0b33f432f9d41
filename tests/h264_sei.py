"""Read the simulated cameras' frame counters back from H.264 bytes, written from the documented format.

Independent of `hardware_sim` on purpose (it must not import it): if the simulator and this reader
disagree, a test fails instead of both being wrong the same way. The format, as the docstring of
`hardware_sim/h264_clip.py` and `docs/evidence.md` state it: before each frame's slice NAL units, an
SEI NAL unit (type 6) holding one user_data_unregistered message (payload type 5) of 32 bytes: the
UUID e5a7c3f0-6a1b-4d3e-9f2a-0c1b2d3e4f50, the frame counter (8 bytes, big-endian, unsigned) and the
capture time (8 bytes, big-endian, unsigned UTC nanoseconds), emulation-prevention bytes inserted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

COUNTER_UUID: Final = uuid.UUID("e5a7c3f0-6a1b-4d3e-9f2a-0c1b2d3e4f50").bytes


@dataclass(frozen=True, slots=True)
class FrameStamp:
    counter: int
    capture_utc_ns: int


def nal_units(annexb: bytes) -> list[bytes]:
    """NAL units (header byte first) of an Annex-B stream, split on 00 00 01 start codes."""
    units = []
    start = annexb.find(b"\x00\x00\x01")
    while start >= 0:
        begin = start + 3
        nxt = annexb.find(b"\x00\x00\x01", begin)
        end = nxt if nxt >= 0 else len(annexb)
        unit = annexb[begin:end].rstrip(b"\x00")  # a 4-byte start code's leading zero, trailing zeros
        if unit:
            units.append(unit)
        start = nxt
    return units


def unescape(ebsp: bytes) -> bytes:
    """Remove emulation-prevention bytes: every 03 that follows two zero bytes."""
    out = bytearray()
    zeros = 0
    for byte in ebsp:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def sei_stamps(nal: bytes) -> list[FrameStamp]:
    """The counter stamps in one SEI NAL unit (none if it is not one of ours)."""
    if nal[0] & 0x1F != 6:
        return []
    rbsp = unescape(nal[1:])
    stamps, at = [], 0
    while at < len(rbsp) and rbsp[at] != 0x80:  # 0x80: the rbsp trailing bits
        kind = size = 0
        while rbsp[at] == 0xFF:
            kind, at = kind + 255, at + 1
        kind, at = kind + rbsp[at], at + 1
        while rbsp[at] == 0xFF:
            size, at = size + 255, at + 1
        size, at = size + rbsp[at], at + 1
        payload = rbsp[at : at + size]
        at += size
        if kind == 5 and size == 32 and payload[:16] == COUNTER_UUID:
            stamps.append(FrameStamp(int.from_bytes(payload[16:24], "big"), int.from_bytes(payload[24:32], "big")))
    return stamps


def stamps_of(annexb: bytes) -> list[FrameStamp]:
    """Every frame stamp of an Annex-B stream (e.g. `ffmpeg -c copy -f h264`), in stream order."""
    return [stamp for nal in nal_units(annexb) for stamp in sei_stamps(nal)]
