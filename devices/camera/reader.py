"""One camera's reader thread: connect, read packets, stamp them on arrival, hand them to the writer.

Why its own thread and nothing else: reading must never wait for the disk. PyAV releases the GIL
in `av_read_frame`, so 24 readers share one process. The reader decides what the stream gives:
it drops packets before a connection's first keyframe (an undecodable GOP) but keeps that keyframe
even without a timestamp (FFmpeg 8's RTSP demuxer gives it none); it opens a gap when the camera
stops (no packet for `stall_s`, refused, EOF, error) and when the writer's queue is full, and it
closes the gap at the first keyframe it can hand over again. Reconnects back off exponentially,
capped and jittered, so 24 cameras behind one dead switch do not reconnect in step.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from fractions import Fraction
from typing import Final, Protocol

import av
from av.container import InputContainer

from devices.camera.arrival import Arrival, ConnectionEnded, StreamTemplate
from devices.camera.camera_stats import CameraStats
from devices.camera.contract import CameraSource
from devices.camera.gap_book import GapBook

logger = logging.getLogger(__name__)

QueueItem = Arrival | ConnectionEnded | None
"""None tells the writer to finish its segment and stop."""
_DETECT_MARGIN_S: Final = 0.15
"""Read timeout = stall_s minus this, so a stall is reported at most stall_s after the last frame."""


class Backoff:
    """Capped exponential backoff with jitter: each delay is uniform in [d/2, d], d doubling to max."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self._initial_s, self._max_s = initial_s, max_s
        self._next_s = initial_s

    def next_s(self) -> float:
        delay = self._next_s
        self._next_s = min(self._max_s, self._next_s * 2)
        return random.uniform(delay / 2, delay)

    def reset(self) -> None:
        self._next_s = self._initial_s


def open_options(url: str, stall_s: float) -> tuple[str, str | None, dict[str, str]]:
    """What `av.open` needs for a camera URL: the path, the forced format and the protocol options.

    RTSP: TCP interleaved (no UDP loss), FFmpeg 8's `timeout` (socket I/O, microseconds; `stimeout`
    is gone), and minimal probing, so `av.open` returns after the SDP and the first packet instead of
    buffering ~3 s of frames that would all be stamped with the same arrival time.
    """
    io_us = str(int(stall_s * 1e6))
    if url.startswith(("rtsp://", "rtsps://")):
        return url, None, {"rtsp_transport": "tcp", "timeout": io_us, "analyzeduration": "0", "probesize": "32"}
    if url.startswith(("http://", "https://")):
        return url, "mpjpeg", {"timeout": io_us}
    if url.startswith("file://"):
        return url.removeprefix("file://"), None, {}
    raise ValueError(f"camera URL {url!r}: unsupported scheme; use rtsp://, http(s):// (MJPEG) or file://")


def describe(err: BaseException) -> str:
    if isinstance(err, av.ExitError):
        return "timed out"
    text = getattr(err, "strerror", None) or str(err)
    return f"{type(err).__name__}: {text}"


class PacketTap(Protocol):
    """Something else that wants the packets this reader already reads (the live view's fMP4), so a
    camera has one connection, not one per use. Called on the reader's thread: return at once (a
    copy, a queue), never block; an exception detaches the tap, never the recording."""

    def packet(self, arrival: Arrival) -> None: ...

    def lost(self, cause: str) -> None:
        """The connection ended (or could not be made); packets resume with a new `connection`."""


class CameraReader:
    """Runs in its own thread (`run`) until `stop` is set. `add_tap` shares its packets."""

    def __init__(self, source: CameraSource, out: queue.Queue[QueueItem], gaps: GapBook, stats: CameraStats,
                 stop: threading.Event, *, stall_s: float, backoff: Backoff, connect_timeout_s: float) -> None:
        self.source = source
        self._out = out
        self._gaps = gaps
        self._stats = stats
        self._stop = stop
        self._stall_s = stall_s
        self._backoff = backoff
        self._connect_timeout_s = connect_timeout_s
        self._connection = 0
        self._last_utc_ns: int | None = None
        self._last_mono_ns: int | None = None
        self._frame_ns = 100_000_000
        self._read_timeout_s = max(0.2, stall_s - _DETECT_MARGIN_S)
        self.path, self._format, self._options = open_options(source.url, stall_s)
        self._taps: tuple[PacketTap, ...] = ()
        """Replaced, never mutated: the reader thread iterates whichever tuple it read."""
        self._taps_lock = threading.Lock()

    def add_tap(self, tap: PacketTap) -> None:
        """From any thread: `tap` gets every packet from the next one on (it waits for a keyframe itself)."""
        with self._taps_lock:
            self._taps = (*self._taps, tap)

    def remove_tap(self, tap: PacketTap) -> None:
        """From any thread; a call already running on the reader thread may still finish."""
        with self._taps_lock:
            self._taps = tuple(t for t in self._taps if t is not tap)

    def _tell_taps(self, arrival: Arrival | None, cause: str = "") -> None:
        for tap in self._taps:
            try:
                tap.packet(arrival) if arrival is not None else tap.lost(cause)
            except Exception:  # a live viewer's bug must not stop the evidence recording
                logger.exception("camera %s: packet tap failed; detached", self.source.label)
                self.remove_tap(tap)

    def run(self) -> None:
        attempts = 0
        while not self._stop.is_set():
            if attempts:
                self._stats.reconnects += 1
            attempts += 1
            try:
                container = av.open(self.path, format=self._format, options=self._options,
                                    timeout=(self._connect_timeout_s, self._read_timeout_s))
            except (OSError, av.FFmpegError) as err:
                if self._stop.is_set():
                    return
                self._lost(f"cannot connect to {self.source.url}: {describe(err)}")
                self._stop.wait(self._backoff.next_s())
                continue
            try:
                cause = self._read(container)
            except Exception as err:  # a bug must not end this camera's recording unseen
                logger.exception("camera %s: reader failed", self.source.label)
                cause = f"recorder error {err!r} (a bug: report it with the log)"
            finally:
                self._stats.connected = False
                container.close()
            if cause is not None:
                self._lost(cause)
                self._stop.wait(self._backoff.next_s())

    def _read(self, container: InputContainer) -> str | None:
        """Read one connection until it ends; the cause of its end, None when asked to stop."""
        if not container.streams.video:
            return f"{self.source.url} has no video stream"
        stream = container.streams.video[0]
        template = StreamTemplate(stream, wall_clock=self._format == "mpjpeg")
        if template.nominal_frame_ns:
            self._frame_ns = template.nominal_frame_ns
        self._stats.connected = True
        self._connection += 1
        pace = _Pacer(stream.time_base) if self.source.url.startswith("file://") else None
        waiting_keyframe = True
        delivered = False
        returned_mono_ns = time.monotonic_ns()
        try:
            for packet in container.demux(stream):
                if self._stop.is_set():
                    return None
                utc_ns, mono_ns = time.time_ns(), time.monotonic_ns()
                # A read that lasted the whole read timeout was interrupted, and the RTSP demuxer then
                # hands out the frame it was holding (it emits a frame when the next one starts): that
                # frame came in one step after the previous one, and the camera has gone silent since.
                late = delivered and pace is None and mono_ns - returned_mono_ns >= self._read_timeout_s * 0.95e9
                returned_mono_ns = mono_ns
                if packet.size == 0:
                    continue
                if pace is not None:
                    utc_ns, mono_ns = pace.wait(packet.pts)
                if waiting_keyframe and not packet.is_keyframe:
                    continue
                if late and self._last_utc_ns is not None and self._last_mono_ns is not None:
                    utc_ns, mono_ns = self._last_utc_ns + self._frame_ns, self._last_mono_ns + self._frame_ns
                if self._last_mono_ns is not None and template.wall_clock:
                    self._frame_ns = mono_ns - self._last_mono_ns
                self._last_utc_ns, self._last_mono_ns = utc_ns, mono_ns
                self._stats.last_arrival_mono_ns = mono_ns
                if waiting_keyframe:
                    self._gaps.close("link", utc_ns, mono_ns)
                    if not self._gaps.is_open("behind"):
                        self._backoff.reset()
                waiting_keyframe = False
                arrival = Arrival(packet, utc_ns, mono_ns, self._connection, template)
                if self._taps:
                    self._tell_taps(arrival)
                self._hand_over(arrival)
                delivered = True
                if late:
                    return f"no frames for {self._stall_s:.1f} s"
        except (OSError, av.FFmpegError) as err:
            if self._stop.is_set():
                return None
            if isinstance(err, av.ExitError):
                return f"no frames for {self._stall_s:.1f} s"
            return f"stream from {self.source.url} failed: {describe(err)}"
        if self._stop.is_set():
            return None
        return "stream ended (EOF)" if delivered else f"{self.source.url} ended before its first keyframe"

    def _hand_over(self, arrival: Arrival) -> None:
        """Queue a packet for the writer. When the queue is full the packet is lost: a `behind` gap
        opens, and packets are dropped until a keyframe fits in the queue again."""
        if self._gaps.is_open("behind"):
            if not arrival.is_keyframe:
                self._stats.dropped += 1
                return
            self._connection += 1  # the packets in between are missing: start a new segment
            arrival = Arrival(arrival.packet, arrival.utc_ns, arrival.mono_ns, self._connection, arrival.template)
        try:
            self._out.put_nowait(arrival)
        except queue.Full:
            self._stats.dropped += 1
            self._gaps.open("behind", f"recorder fell behind: write queue full ({self._out.maxsize} packets); "
                            "the disk is too slow or stalled", arrival.utc_ns, arrival.mono_ns)
            return
        self._gaps.close("behind", arrival.utc_ns, arrival.mono_ns)

    def _lost(self, cause: str) -> None:
        """The camera stopped delivering: open a link gap from the end of the last frame."""
        if self._taps:
            self._tell_taps(None, cause)
        if self._last_utc_ns is not None and self._last_mono_ns is not None:
            from_utc, from_mono = self._last_utc_ns + self._frame_ns, self._last_mono_ns + self._frame_ns
        else:
            from_utc, from_mono = time.time_ns(), time.monotonic_ns()
        self._gaps.open("link", f"camera {self.source.label}: {cause}; reconnecting", from_utc, from_mono)
        with contextlib.suppress(queue.Full):  # if it does not fit, the writer closes an idle segment itself
            self._out.put(ConnectionEnded(self._connection), timeout=0.5)


class _Pacer:
    """Reads a file at its own speed, as a camera would deliver it (FFmpeg's `-re`)."""

    def __init__(self, time_base: Fraction | None) -> None:
        self._tb = time_base or Fraction(1, 90000)
        self._first_pts: int | None = None
        self._t0_mono_ns = time.monotonic_ns()

    def wait(self, pts: int | None) -> tuple[int, int]:
        if pts is not None:
            if self._first_pts is None:
                self._first_pts = pts
            due_ns = self._t0_mono_ns + int((pts - self._first_pts) * self._tb * 1_000_000_000)
            delay_ns = due_ns - time.monotonic_ns()
            if delay_ns > 0:
                time.sleep(delay_ns / 1e9)
        return time.time_ns(), time.monotonic_ns()
