"""Splits the byte stream of FFmpeg's fragmented-MP4 muxer into what a browser's MSE player needs.

Why parse boxes instead of trusting write calls: the muxer writes through a buffer whose flushes
need not fall on box boundaries, and a viewer joining late must get the init segment (ftyp + moov,
cached) and then whole fragments (moof + mdat) starting at a keyframe. So the stream is cut at MP4
box headers (32-bit size and type, or size 1 and a 64-bit size), and each fragment's first sample
is classified as sync or not from its `trun`/`tfhd` sample flags (falling back to the `trex`
defaults of the moov), as ISO/IEC 14496-12 defines them. The MSE codec string (`avc1.PPCCLL`, RFC
6381) comes from the `avcC` box of the init segment, which FFmpeg copies from the camera's SPS.
Pure: bytes in, chunks out; no IO.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal

from devices.errors import ProtocolError

_SAMPLE_IS_NON_SYNC: Final = 0x0001_0000
_TFHD_DEFAULT_FLAGS: Final = 0x20
_TRUN_DATA_OFFSET: Final = 0x001
_TRUN_FIRST_FLAGS: Final = 0x004
_TRUN_DURATION: Final = 0x100
_TRUN_SIZE: Final = 0x200
_TRUN_FLAGS: Final = 0x400
_VISUAL_SAMPLE_ENTRY_BYTES: Final = 78
"""Fields of a VisualSampleEntry after its box header, before its child boxes (avcC)."""
_MAX_BOX_BYTES: Final = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Fmp4Chunk:
    """What a viewer appends to its SourceBuffer: the init segment, or one media fragment.

    `keyframe`: the fragment starts with a sync sample (a player may start there); always True for
    the init segment. `codec` is the RFC 6381 string, e.g. "avc1.42C01F"; `mime_type` is what to give
    `MediaSource.isTypeSupported` and `addSourceBuffer`.
    """

    kind: Literal["init", "media"]
    data: bytes
    keyframe: bool
    codec: str
    width: int
    height: int

    @property
    def mime_type(self) -> str:
        return f'video/mp4; codecs="{self.codec}"'


@dataclass(frozen=True, slots=True)
class InitInfo:
    codec: str
    width: int
    height: int
    default_sample_flags: int


def iter_boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each box in data[start:end]; raises on a truncated box."""
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        if end - pos < 8:
            raise ProtocolError(f"MP4: {end - pos} stray bytes at {pos}, not a box header")
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if end - pos < 16:
                raise ProtocolError(f"MP4: truncated 64-bit size of box {kind!r} at {pos}")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        if size < header or pos + size > end:
            raise ProtocolError(f"MP4: box {kind!r} at {pos} has size {size}, outside its parent (ends at {end})")
        yield kind, pos + header, pos + size
        pos += size


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int]:
    for found, payload, box_end in iter_boxes(data, start, end):
        if found == kind:
            return payload, box_end
    raise ProtocolError(f"MP4: no {kind.decode('latin-1')} box where FFmpeg's mp4 muxer writes one")


def _path(data: bytes, start: int, end: int, *kinds: bytes) -> tuple[int, int]:
    for kind in kinds:
        start, end = _child(data, start, end, kind)
    return start, end


def parse_init(init: bytes) -> InitInfo:
    """Codec string, size and default sample flags of an init segment (ftyp + moov, one video track)."""
    moov = _child(init, 0, len(init), b"moov")
    stbl = _path(init, *moov, b"trak", b"mdia", b"minf", b"stbl")
    stsd_start, stsd_end = _child(init, *stbl, b"stsd")
    entries = iter_boxes(init, stsd_start + 8, stsd_end)  # version/flags, entry_count
    kind, entry, entry_end = next(entries, (b"", 0, 0))
    if kind not in (b"avc1", b"avc3"):
        raise ProtocolError(f"MP4: sample entry {kind!r} is not H.264 (avc1/avc3)")
    width, height = struct.unpack_from(">HH", init, entry + 24)
    avcc, avcc_end = _child(init, entry + _VISUAL_SAMPLE_ENTRY_BYTES, entry_end, b"avcC")
    if avcc_end - avcc < 4:
        raise ProtocolError("MP4: avcC box too short for profile and level")
    profile, constraints, level = init[avcc + 1], init[avcc + 2], init[avcc + 3]
    flags = 0
    for box, payload, box_end in iter_boxes(init, *moov):
        if box == b"mvex":
            trex, _ = _child(init, payload, box_end, b"trex")
            (flags,) = struct.unpack_from(">I", init, trex + 20)
    return InitInfo(f"{kind.decode('ascii')}.{profile:02X}{constraints:02X}{level:02X}", width, height, flags)


def first_sample_is_sync(moof: bytes, default_sample_flags: int) -> bool:
    """Whether the fragment `moof` (a whole moof box) starts with a sync sample (a keyframe)."""
    traf = _path(moof, 0, len(moof), b"moof", b"traf")
    flags = default_sample_flags
    tfhd, _ = _child(moof, *traf, b"tfhd")
    (tfhd_flags,) = struct.unpack_from(">I", moof, tfhd)
    if tfhd_flags & _TFHD_DEFAULT_FLAGS:
        offset = tfhd + 8 + (8 if tfhd_flags & 0x01 else 0) + sum(4 for bit in (0x02, 0x08, 0x10) if tfhd_flags & bit)
        (flags,) = struct.unpack_from(">I", moof, offset)
    trun, _ = _child(moof, *traf, b"trun")
    (trun_flags, samples) = struct.unpack_from(">II", moof, trun)
    trun_flags &= 0xFF_FFFF
    offset = trun + 8 + (4 if trun_flags & _TRUN_DATA_OFFSET else 0)
    if trun_flags & _TRUN_FIRST_FLAGS:
        (flags,) = struct.unpack_from(">I", moof, offset)
    elif trun_flags & _TRUN_FLAGS and samples:
        offset += sum(4 for bit in (_TRUN_DURATION, _TRUN_SIZE) if trun_flags & bit)
        (flags,) = struct.unpack_from(">I", moof, offset)
    return not flags & _SAMPLE_IS_NON_SYNC


class Fmp4Splitter:
    """Fed the muxer's bytes in any pieces, returns the init segment once, then each fragment."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._head: list[bytes] = []
        self._pending: list[bytes] = []
        self._moof: bytes | None = None
        self.init: InitInfo | None = None

    def feed(self, data: bytes) -> list[Fmp4Chunk]:
        self._buffer += data
        chunks: list[Fmp4Chunk] = []
        while (box := self._take_box()) is not None:
            kind, raw = box
            if self.init is None:
                self._head.append(raw)
                if kind == b"moov":
                    init = b"".join(self._head)
                    info = self.init = parse_init(init)
                    chunks.append(Fmp4Chunk("init", init, True, info.codec, info.width, info.height))
                continue
            if kind == b"mfra":  # the trailer written at close: no media
                continue
            self._pending.append(raw)
            if kind == b"moof":
                self._moof = raw
            elif kind == b"mdat" and self._moof is not None:
                keyframe = first_sample_is_sync(self._moof, self.init.default_sample_flags)
                chunks.append(Fmp4Chunk("media", b"".join(self._pending), keyframe, self.init.codec,
                                        self.init.width, self.init.height))
                self._pending, self._moof = [], None
        return chunks

    def _take_box(self) -> tuple[bytes, bytes] | None:
        buffer = self._buffer
        if len(buffer) < 8:
            return None
        size, kind = struct.unpack_from(">I4s", buffer, 0)
        if size == 1:
            if len(buffer) < 16:
                return None
            (size,) = struct.unpack_from(">Q", buffer, 8)
        if size < 8 or size > _MAX_BOX_BYTES:
            raise ProtocolError(f"MP4 muxer output: box {bytes(kind)!r} has size {size}; the stream is not "
                                "fragmented MP4 (size 0 means an unfragmented file)")
        if len(buffer) < size:
            return None
        raw = bytes(buffer[:size])
        del buffer[:size]
        return bytes(kind), raw
