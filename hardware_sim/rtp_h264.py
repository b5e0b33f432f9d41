"""RTP packetization of H.264 (RFC 6184, packetization-mode=1) framed for RTSP over TCP.

Why its own module: the RTSP camera must send every access unit to every client at well under 1 %
of a core, so the expensive part (cutting NAL units into FU-A fragments) is done once per clip
frame by `FramePlan`, and per frame sent only the 16 bytes of headers of each packet are packed.
Each packet goes out as RTSP interleaved data (RFC 2326 10.12): `$`, channel, 16-bit length, then
the RTP packet (12-byte header, payload type 96, marker bit on the last packet of an access unit).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

PAYLOAD_TYPE: Final = 96
CLOCK_RATE_HZ: Final = 90_000
MAX_PAYLOAD: Final = 1400
"""Bytes of RTP payload per packet: what cameras use to stay under an Ethernet MTU with UDP."""
_FU_A: Final = 28
_HEADER: Final = struct.Struct(">cBHBBHII")  # '$', channel, length, then the 12-byte RTP header


@dataclass(frozen=True, slots=True)
class FramePlan:
    """The RTP payloads of one access unit: single NAL unit packets or FU-A fragments, in order."""

    payloads: tuple[bytes, ...]

    @classmethod
    def of(cls, nals: Sequence[bytes], max_payload: int = MAX_PAYLOAD) -> FramePlan:
        """Cut NAL units (no start codes) into payloads of at most `max_payload` bytes."""
        payloads: list[bytes] = []
        for nal in nals:
            payloads.extend(fragment(nal, max_payload))
        return cls(tuple(payloads))


def fragment(nal: bytes, max_payload: int = MAX_PAYLOAD) -> list[bytes]:
    """One payload (single NAL unit packet) if it fits, else FU-A fragments (RFC 6184 5.8)."""
    if len(nal) <= max_payload:
        return [nal]
    indicator = (nal[0] & 0xE0) | _FU_A
    kind = nal[0] & 0x1F
    body = nal[1:]
    step = max_payload - 2
    out = []
    for offset in range(0, len(body), step):
        start = 0x80 if offset == 0 else 0
        end = 0x40 if offset + step >= len(body) else 0
        out.append(bytes((indicator, start | end | kind)) + body[offset : offset + step])
    return out


class RtpSender:
    """Sequence numbers and SSRC of one RTP stream; turns payloads into interleaved packets."""

    def __init__(self, ssrc: int, first_sequence: int, channel: int = 0) -> None:
        self.ssrc = ssrc
        self.sequence = first_sequence & 0xFFFF
        self.channel = channel

    def frame(self, payloads: Sequence[bytes], rtp_timestamp: int) -> bytes:
        """All packets of one access unit, interleaved-framed and joined, marker on the last one."""
        parts: list[bytes] = []
        last = len(payloads) - 1
        timestamp = rtp_timestamp & 0xFFFF_FFFF
        for index, payload in enumerate(payloads):
            marker = 0x80 if index == last else 0
            parts.append(_HEADER.pack(b"$", self.channel, 12 + len(payload), 0x80, marker | PAYLOAD_TYPE,
                                      self.sequence, timestamp, self.ssrc))
            parts.append(payload)
            self.sequence = (self.sequence + 1) & 0xFFFF
        return b"".join(parts)
