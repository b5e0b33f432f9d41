"""Timestamps for the packets of one segment: start at 0, never go backwards, one frame a step.

Why this is needed: the demuxers do not give what a standalone segment needs. FFmpeg 8's RTSP
demuxer gives the first packet of a connection (its keyframe) no pts/dts at all; RTP timestamps
start anywhere and may jump (a camera that restarts its clock, a looped clip); and the multipart
MJPEG demuxer invents 25 fps. So each segment rebases the stream's own timestamps to start at 0,
gives a packet without a timestamp the previous one plus a frame, and turns a backwards step or a
jump of more than `max_jump_s` into one frame step. MJPEG (`wall_clock`) uses the arrival times.
Pure: no IO, no clocks; time comes in as data.
"""

from __future__ import annotations

from fractions import Fraction


class PacketTimeline:
    """Rebases one segment's packet timestamps into `time_base` units."""

    def __init__(self, time_base: Fraction, *, wall_clock: bool, start_mono_ns: int, nominal_frame_ns: int | None,
                 max_jump_s: float = 5.0) -> None:
        self.time_base = time_base
        self._wall_clock = wall_clock
        self._start_mono_ns = start_mono_ns
        self._step = self.from_ns(nominal_frame_ns) if nominal_frame_ns else max(1, self.from_ns(100_000_000))
        self._max_jump = self.from_ns(int(max_jump_s * 1e9))
        self._base: int | None = None
        self._last: int | None = None
        self.repaired = 0
        """Packets whose own timestamp was missing, backwards or a jump, and got one frame step instead."""

    def from_ns(self, ns: int) -> int:
        return max(0, round(Fraction(ns, 1_000_000_000) / self.time_base))

    def to_ns(self, ticks: int) -> int:
        return round(ticks * self.time_base * 1_000_000_000)

    @property
    def step_ns(self) -> int:
        """The current frame step (the last regular delta between packets) in nanoseconds."""
        return self.to_ns(self._step)

    def stamp(self, pts: int | None, dts: int | None, arrival_mono_ns: int) -> tuple[int, int]:
        """The (pts, dts) to write for the next packet, given its own and its arrival time."""
        if self._wall_clock:
            out = self._advance(self.from_ns(arrival_mono_ns - self._start_mono_ns), own=True)
            return out, out
        own = dts if dts is not None else pts
        reorder = pts - dts if pts is not None and dts is not None and pts >= dts else 0
        expected = 0 if self._last is None else self._last + self._step
        if own is None:
            out = expected
            self.repaired += self._last is not None
        else:
            if self._base is None:
                self._base = own - expected
            out = own - self._base
            if self._last is not None and not 0 < out - self._last <= self._max_jump:
                self._base = own - expected
                out = expected
                self.repaired += 1
        dts_out = self._advance(out, own=own is not None)
        return dts_out + reorder, dts_out

    def _advance(self, out: int, *, own: bool) -> int:
        if self._last is not None:
            if out <= self._last:
                out = self._last + 1
            elif own and out - self._last <= self._max_jump:
                self._step = out - self._last
        self._last = out
        return out
