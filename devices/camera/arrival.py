"""What a camera's reader hands its writer: packets stamped on arrival, grouped by connection.

Why a module of its own: the reader (`devices.camera.reader`) and the writer
(`devices.camera.camera_writer`) run on different threads and meet only at a bounded queue; these
types are everything that crosses it. A packet keeps the two clocks it arrived at, so a segment's
start and end are the times the camera's frames reached this process, whatever its stream says.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import av
from av.packet import Packet
from av.video.stream import VideoStream


class StreamTemplate:
    """The codec parameters of one connection's video stream, copied out of the input.

    Why a copy: PyAV's `add_stream_from_template` reads the template's `AVStream`, which FFmpeg frees
    when the reader closes the input to reconnect, while the writer may still be opening a segment
    for that connection's queued packets. So the reader copies the parameters into a stream of a
    scratch output container that is never written and lives as long as this object.
    """

    def __init__(self, source: VideoStream, *, wall_clock: bool) -> None:
        self._scratch = av.open(io.BytesIO(), "w", format="matroska")
        self.stream: VideoStream = self._scratch.add_stream_from_template(source)
        self.codec = source.codec_context.name
        self.width = source.codec_context.width
        self.height = source.codec_context.height
        self.wall_clock = wall_clock
        """True for MJPEG over HTTP: the demuxer's timestamps assume 25 fps, so the writer stamps
        packets with their arrival (monotonic) time instead."""
        self.time_base: Fraction = Fraction(1, 1000) if wall_clock else (source.time_base or Fraction(1, 90000))
        rate = source.average_rate or source.guessed_rate
        self.nominal_frame_ns: int | None = int(1_000_000_000 / rate) if rate and not wall_clock else None
        """One frame's duration from the stream's declared rate; None where the rate is not known
        (MJPEG: the demuxer's 25 fps is a guess), then the writer measures it from arrivals."""


@dataclass(frozen=True, slots=True)
class Arrival:
    """One video packet and when it reached this process (`time.time_ns()`, `time.monotonic_ns()`).

    `connection` numbers the reader's connections (and restarts after falling behind): the first
    packet of a connection is always a keyframe, and packets of two connections never share a
    segment, because the stream between them is missing.
    """

    packet: Packet[VideoStream]
    utc_ns: int
    mono_ns: int
    connection: int
    template: StreamTemplate

    @property
    def is_keyframe(self) -> bool:
        return bool(self.packet.is_keyframe)


@dataclass(frozen=True, slots=True)
class ConnectionEnded:
    """The reader lost connection `connection` (stall, EOF, error): close its open segment now
    rather than when the next connection's first packet arrives."""

    connection: int
