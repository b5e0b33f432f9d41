"""Incremental decoding of manikin-frame-v1 from whatever bytes a serial port delivers.

Why apart from the codec: the codec (`manikin_codec`) says what one frame is; this finds frames in
a stream that may hold line noise, cut frames and lost bytes, resynchronising one byte at a time
and counting what it dropped, so the reader can report the line's health. Pure: no port, no clock.
"""

from __future__ import annotations

from devices.serial.manikin_codec import (
    CRC_LEN,
    HEADER_LEN,
    MAX_PAYLOAD_LEN,
    PAYLOAD_LEN,
    SOF,
    VERSION,
    Frame,
    MalformedFrame,
    crc16_modbus,
    parse_payload,
)


class FrameDecoder:
    """Incremental decoder: feed it whatever the port delivered, get back whole, CRC-checked frames.

    It never raises on input bytes and never returns a frame whose CRC fails. When a candidate
    frame is rejected (bad version, impossible length, CRC mismatch) only its first SOF byte is
    dropped and the search restarts one byte later, so a real frame hidden behind garbage that
    happened to contain a SOF is still found. The counters only grow; read them, do not set them.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._last_seq: int | None = None
        self.frames_ok = 0
        """Frames returned."""
        self.crc_errors = 0
        """Candidate frames whose header was plausible but whose CRC did not match."""
        self.resyncs = 0
        """Candidate frames rejected (any reason), each costing one byte of resynchronisation."""
        self.garbage_bytes = 0
        """Bytes dropped because they were not part of any valid frame."""
        self.lost_frames = 0
        """Frames missing according to sequence-number gaps (gaps of 256 or more are invisible)."""
        self.unknown_frames = 0
        """CRC-valid frames of a type this codec does not know (skipped whole, for newer firmware)."""
        self.malformed_frames = 0
        """CRC-valid frames of a known type with content that breaks the spec (skipped whole)."""

    @property
    def pending_bytes(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget the partial frame and the last sequence number (after the port was reopened).

        The held-back bytes count as garbage; counters are kept.
        """
        self.garbage_bytes += len(self._buf)
        self._buf.clear()
        self._last_seq = None

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Add bytes from the line; return every frame completed by them, in order."""
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        pos, n = 0, len(buf)
        while True:
            start = buf.find(SOF, pos)
            if start < 0:
                keep = 1 if n > pos and buf[n - 1] == SOF[0] else 0  # maybe the first half of a SOF
                self.garbage_bytes += n - pos - keep
                pos = n - keep
                break
            self.garbage_bytes += start - pos
            pos = start
            if n - pos < HEADER_LEN:
                break
            version, frame_type, seq, length = buf[pos + 2], buf[pos + 3], buf[pos + 4], buf[pos + 5]
            expected = PAYLOAD_LEN.get(frame_type)
            if version != VERSION or length > MAX_PAYLOAD_LEN or expected not in (None, length):
                pos = self._reject(pos)
                continue
            end = pos + HEADER_LEN + length + CRC_LEN
            if n < end:
                break
            if crc16_modbus(memoryview(buf)[pos + 2 : end - 2]) != buf[end - 2] | buf[end - 1] << 8:
                self.crc_errors += 1
                pos = self._reject(pos)
                continue
            self._track_seq(seq)
            payload = bytes(buf[pos + HEADER_LEN : end - CRC_LEN])
            pos = end
            if expected is None:
                self.unknown_frames += 1
                continue
            try:
                frames.append(parse_payload(frame_type, seq, payload))
            except MalformedFrame:
                self.malformed_frames += 1
                continue
            self.frames_ok += 1
        del buf[:pos]
        return frames

    def _reject(self, pos: int) -> int:
        self.resyncs += 1
        self.garbage_bytes += 1
        return pos + 1

    def _track_seq(self, seq: int) -> None:
        if self._last_seq is not None:
            self.lost_frames += (seq - self._last_seq - 1) & 0xFF
        self._last_seq = seq
