"""The station page's fMP4 from the packets the recorder already reads: one connection per camera.

Why: a recorded camera's main stream is already read by its recorder (`CameraReader`); a second
RTSP connection for the live view would double the camera's connections and this process's
demuxing (the larger part of a live view's cost). So while the camera is recorded, the fMP4 view
taps the reader: each packet is copied (the writer thread owns the original) and remuxed into
fragmented MP4 on the reader's thread, which takes tens of microseconds and never blocks: the
muxer writes into memory. When the camera is not recorded (recording off, or not yet started),
the view opens its own connection as before (`Fmp4Upstream`).

A connection of the reader that ends ends this view's connection too: viewers are told the cause
and the hub's backoff attaches again, from the reader's next keyframe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Final

import av
from av.container import OutputContainer
from av.video.stream import VideoStream

from devices.camera.arrival import Arrival
from devices.camera.live_fmp4 import MOVFLAGS, Fmp4Upstream, MuxSink
from devices.camera.live_fmp4_box import Fmp4Chunk, Fmp4Splitter
from devices.camera.packet_timeline import PacketTimeline
from devices.camera.reader import CameraReader
from devices.errors import ProtocolError

logger = logging.getLogger(__name__)

ReaderLookup = Callable[[], CameraReader | None]
"""The camera's running recorder reader, or None when it is not being recorded."""

_OFF: Final = "the recorder stopped reading this camera"


class TappedFmp4Upstream(Fmp4Upstream):
    """An fMP4 upstream fed by the recorder's reader when there is one, by its own connection otherwise."""

    def __init__(self, label: str, url: str, reader: ReaderLookup, **timing: float) -> None:
        super().__init__(label, url, **timing)
        self._reader = reader

    async def _pump(self) -> str:
        reader = self._reader()
        if reader is None:
            return await super()._pump()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[str] = loop.create_future()
        tap = _Fmp4Tap(self.url, loop, self._opened, self._on_chunks, done)
        reader.add_tap(tap)
        try:
            return await done
        finally:
            reader.remove_tap(tap)
            tap.close()
            self.init = None

    def _on_chunks(self, chunks: list[Fmp4Chunk]) -> None:
        for chunk in chunks:
            self._on_chunk(chunk)


class _Fmp4Tap:
    """Runs on the reader's thread: remuxes each connection from its first keyframe into fMP4."""

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop, opened: Callable[[], None],
                 on_chunks: Callable[[list[Fmp4Chunk]], None], done: asyncio.Future[str]) -> None:
        self._url = url
        self._loop = loop
        self._opened = opened
        self._on_chunks = on_chunks
        self._done = done
        self._lock = threading.Lock()
        """Held while muxing and while closing, so the muxer is never closed under a packet."""
        self._closed = False
        self._connection: int | None = None
        self._output: OutputContainer | None = None
        self._out_stream: VideoStream | None = None
        self._timeline: PacketTimeline | None = None
        self._splitter = Fmp4Splitter()
        self._sink = MuxSink(self._collect)
        self._pending: list[Fmp4Chunk] = []

    def packet(self, arrival: Arrival) -> None:
        with self._lock:
            if self._closed:
                return
            if arrival.connection != self._connection:
                if not arrival.is_keyframe:
                    return  # joined mid-GOP, or the reader restarted: wait for its keyframe
                if arrival.template.codec != "h264":
                    self._finish(f"{self._url} sends {arrival.template.codec}, not H.264; browsers play only H.264 "
                                 "live without transcoding: set the camera's stream to H.264 or watch its MJPEG "
                                 "sub-stream")
                    return
                self._start(arrival)
            assert self._output is not None and self._out_stream is not None and self._timeline is not None
            src = arrival.packet
            copy = av.Packet(bytes(src))
            copy.is_keyframe = src.is_keyframe
            copy.time_base = arrival.template.time_base
            copy.pts, copy.dts = self._timeline.stamp(src.pts, src.dts, 0)
            copy.stream = self._out_stream
            try:
                self._output.mux(copy)
            except (OSError, av.FFmpegError) as err:
                self._finish(f"live view could not remux {self._url}: {err}")
                return
            except ProtocolError as err:
                self._finish(f"live hub could not split the muxer's output for {self._url}: {err}")
                return
            if self._pending:
                chunks, self._pending = self._pending, []
                self._to_loop(self._on_chunks, chunks)

    def lost(self, cause: str) -> None:
        with self._lock:
            if not self._closed:
                self._finish(cause)

    def close(self) -> None:
        """From the loop, once detached: a packet call still running finishes first (the lock)."""
        with self._lock:
            self._closed = True
            self._close_output()

    # -- on the reader's thread, under the lock -------------------------------------------------

    def _start(self, arrival: Arrival) -> None:
        self._close_output()
        template = arrival.template
        self._splitter = Fmp4Splitter()
        self._sink = MuxSink(self._collect)
        self._output = av.open(self._sink, "w", format="mp4", options={"movflags": MOVFLAGS, "flush_packets": "1"})
        self._out_stream = self._output.add_stream_from_template(template.stream)
        self._timeline = PacketTimeline(template.time_base, wall_clock=False, start_mono_ns=0,
                                        nominal_frame_ns=template.nominal_frame_ns)
        if self._connection is None:
            self._to_loop(self._opened)
        self._connection = arrival.connection

    def _collect(self, data: bytes) -> None:
        self._pending.extend(self._splitter.feed(data))

    def _finish(self, cause: str) -> None:
        self._closed = True
        self._close_output()
        self._to_loop(_resolve, self._done, cause)

    def _close_output(self) -> None:
        if self._output is not None:
            self._sink.muted = True  # what close() flushes belongs to a connection that ended
            with contextlib.suppress(OSError, av.FFmpegError):
                self._output.close()
        self._output = self._out_stream = self._timeline = None
        self._pending = []

    def _to_loop(self, callback: Callable[..., object], *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closing: nobody to tell
            self._loop.call_soon_threadsafe(callback, *args)


def _resolve(done: asyncio.Future[str], cause: str) -> None:
    if not done.done():
        done.set_result(cause)
