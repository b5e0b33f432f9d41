"""Live H.264 for browsers: one RTSP connection remuxed (never decoded) into fragmented MP4 for MSE.

Why this shape: a station page plays the camera's main stream in a `<video>` through Media Source
Extensions, which take fragmented MP4. One PyAV remux per watched camera, in a thread of its own
(PyAV releases the GIL while reading and writing packets), writes through FFmpeg's `mp4` muxer
with `empty_moov` (the init segment comes first and has no samples), `default_base_moof` (what
MSE expects) and a fragment per frame (`frag_every_frame`: one frame of latency instead of a
GOP) into a non-seekable sink; `live_fmp4_box` cuts that byte stream into the init segment and
fragments, and the event loop fans them out. A viewer joining late gets the cached init segment
and starts at the next keyframe fragment; a viewer that falls behind (its queue of
`limit` fragments full) loses the fragments it has queued and resumes at the next keyframe, so
what it gets always decodes (the player should then seek to the live edge).

Timestamps: FFmpeg 8's RTSP demuxer gives the first packet (the keyframe) pts=None; the packets
are restamped by `PacketTimeline` (as the recorder does), which gives it one rather than dropping
the first GOP, and keeps the fragments' decode times monotonic across RTP clock jumps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from fractions import Fraction
from typing import Final

import av
from av.container import InputContainer

from devices.camera.live_fanout import Subscription, Upstream, redact
from devices.camera.live_fmp4_box import Fmp4Chunk, Fmp4Splitter
from devices.camera.packet_timeline import PacketTimeline
from devices.camera.reader import describe, open_options
from devices.errors import ProtocolError

logger = logging.getLogger(__name__)

MOVFLAGS: Final = "frag_keyframe+empty_moov+default_base_moof+frag_every_frame"
_MIN_READ_TIMEOUT_S: Final = 0.2


class Fmp4Subscription(Subscription[Fmp4Chunk]):
    """A viewer's queue: the init segment, then fragments from a keyframe on, at most `limit` queued."""

    def __init__(self, upstream: Upstream[Fmp4Chunk], limit: int) -> None:
        super().__init__(upstream, limit)
        self._has_init = False
        self._need_keyframe = True

    def _accept(self, item: Fmp4Chunk) -> None:
        if item.kind == "init":
            self._has_init, self._need_keyframe = True, True
            self._items.append(item)
            return
        if not self._has_init or (self._need_keyframe and not item.keyframe):
            return
        self._need_keyframe = False
        media = sum(1 for queued in self._queued() if queued.kind == "media")
        if media >= self._limit:
            # Behind: drop what is queued (it no longer decodes without what was dropped before it)
            # and resume at a keyframe, so a slow viewer never stalls the upstream or the others.
            kept = [queued for queued in self._items if not isinstance(queued, Fmp4Chunk) or queued.kind == "init"]
            self._items.clear()
            self._items.extend(kept)
            self.dropped += media
            if not item.keyframe:
                self._need_keyframe = True
                self.dropped += 1
                return
        self._items.append(item)

    def _on_lost(self) -> None:
        self._has_init, self._need_keyframe = False, True

    def _may_skip_queue(self, item: Fmp4Chunk) -> bool:
        # init segments always queue: the viewer sends a text message (the MIME type) before them
        return item.kind == "media" and self._has_init and (item.keyframe or not self._need_keyframe)

    def _delivered_direct(self, item: Fmp4Chunk) -> None:
        self._need_keyframe = False


class Fmp4Upstream(Upstream[Fmp4Chunk]):
    """The one RTSP connection of a camera's H.264 stream, remuxed to fMP4 on its own thread."""

    init: Fmp4Chunk | None = None
    """The current connection's init segment: given first to every viewer that joins."""

    def _welcome(self, sub: Subscription[Fmp4Chunk]) -> None:
        if self.init is not None:
            sub.offer(self.init)

    def _on_chunk(self, chunk: Fmp4Chunk) -> None:
        if chunk.kind == "init":
            self.init = chunk
            for sub in list(self._subs):
                sub.offer(chunk)
        else:
            self._publish(chunk, len(chunk.data))

    async def _pump(self) -> str:
        """Run one connection on a thread; return its cause of end. Cancelled (linger over, hub
        closing): tell the thread to stop and wait for it, so no thread outlives the hub."""
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        done: asyncio.Future[str] = loop.create_future()
        thread = threading.Thread(target=self._thread_main, args=(loop, stop, done), name=f"live-fmp4-{self.label}",
                                  daemon=True)
        thread.start()
        try:
            return await asyncio.shield(done)
        finally:
            stop.set()
            cancelled_again = False
            while not done.done():  # the thread sees `stop` at its next packet or read timeout
                try:
                    await asyncio.wait([done])
                except asyncio.CancelledError:  # linger, then aclose: still join the thread first
                    cancelled_again = True
            thread.join()
            self.init = None
            if cancelled_again:
                raise asyncio.CancelledError

    def _thread_main(self, loop: asyncio.AbstractEventLoop, stop: threading.Event, done: asyncio.Future[str]) -> None:
        def to_loop(callback: Callable[..., object], *args: object) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closing: nobody to tell
                loop.call_soon_threadsafe(callback, *args)

        cause = "stopped"
        try:
            cause = self._connect_and_remux(stop, to_loop)
        except Exception as err:  # a bug must still end the connection cleanly, and say what it was
            logger.exception("live view of camera %s: remux thread failed", self.label)
            cause = f"internal error in the live hub: {describe(err)}"
        finally:
            to_loop(_resolve, done, cause)

    def _connect_and_remux(self, stop: threading.Event, to_loop: Callable[..., None]) -> str:
        path, forced_format, options = open_options(self.url, self._stall_s)
        try:
            container = av.open(path, format=forced_format, options=options,
                                timeout=(self._connect_timeout_s, max(_MIN_READ_TIMEOUT_S, self._stall_s)))
        except (OSError, av.FFmpegError) as err:
            return f"cannot connect to {redact(self.url)}: {describe(err)}"
        try:
            return self._remux(container, stop, to_loop)
        finally:
            container.close()

    def _remux(self, container: InputContainer, stop: threading.Event, to_loop: Callable[..., None]) -> str:
        if not container.streams.video:
            return f"{redact(self.url)} has no video stream"
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        if codec != "h264":
            return (f"{redact(self.url)} sends {codec}, not H.264; browsers play only H.264 live without "
                    "transcoding: set the camera's stream to H.264 or watch its MJPEG sub-stream")
        to_loop(self._opened)
        splitter = Fmp4Splitter()

        def on_data(data: bytes) -> None:
            for chunk in splitter.feed(data):
                to_loop(self._on_chunk, chunk)

        sink = MuxSink(on_data)
        rate = stream.average_rate or stream.guessed_rate
        timeline = PacketTimeline(stream.time_base or Fraction(1, 90_000), wall_clock=False, start_mono_ns=0,
                                  nominal_frame_ns=int(1_000_000_000 / rate) if rate else None)
        output = av.open(sink, "w", format="mp4", options={"movflags": MOVFLAGS, "flush_packets": "1"})
        try:
            out_stream = output.add_stream_from_template(stream)
            waiting_keyframe = True
            for packet in container.demux(stream):
                if stop.is_set():
                    return "stopped"
                if packet.size == 0 or (waiting_keyframe and not packet.is_keyframe):
                    continue
                waiting_keyframe = False
                packet.pts, packet.dts = timeline.stamp(packet.pts, packet.dts, 0)
                packet.stream = out_stream
                output.mux(packet)
            return f"{redact(self.url)} ended the stream"
        except av.ExitError:
            return f"no frames for {self._stall_s:.1f} s from {redact(self.url)}"
        except (OSError, av.FFmpegError) as err:
            return f"stream from {redact(self.url)} failed: {describe(err)}"
        except ProtocolError as err:
            return f"live hub could not split the muxer's output for {redact(self.url)}: {err}"
        finally:
            sink.muted = True  # what close() flushes (last fragment, mfra) belongs to a connection that ended
            with contextlib.suppress(OSError, av.FFmpegError):
                output.close()


class MuxSink:
    """A write-only file for PyAV: no seek, so the mp4 muxer must stream (fragmented, empty moov)."""

    def __init__(self, on_data: Callable[[bytes], None]) -> None:
        self._on_data = on_data
        self.muted = False

    def write(self, data: bytes) -> int:
        if not self.muted:
            self._on_data(bytes(data))
        return len(data)


def _resolve(done: asyncio.Future[str], cause: str) -> None:
    if not done.done():
        done.set_result(cause)
