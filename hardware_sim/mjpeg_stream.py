"""Fan-out of one MJPEG stream of a simulated camera to its viewers.

Why a module of its own: this is the part of the simulated camera that has to behave like the
live view DESIGN.md asks of the controller, and it is easier to check apart from HTTP parsing.
A stream does no work at all without viewers: its producer task starts with the first viewer and
ends when the last one leaves. Each frame is rendered once (by an awaitable the camera provides,
which runs the blocking paint and JPEG encode on a worker thread) and the same multipart part
bytes go to every viewer. Each viewer has a queue of two frames: a slow viewer loses its oldest
frames instead of stalling the producer or the other viewers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Literal

logger = logging.getLogger(__name__)

StreamName = Literal["main", "sub"]
BOUNDARY: Final = "frame"
VIEWER_QUEUE_FRAMES: Final = 2

Render = Callable[[int, float], Awaitable[bytes]]
"""(frame counter, capture time in seconds since the epoch) -> JPEG bytes."""


@dataclass(frozen=True, slots=True)
class StreamFrame:
    counter: int
    timestamp_ms: int
    part: bytes
    """The whole multipart part (boundary, headers, JPEG, CRLF), built once for all viewers."""


@dataclass(eq=False, slots=True)
class Viewer:
    """One HTTP connection of the camera; when it asks for a stream, the frames queued for it."""

    writer: asyncio.StreamWriter
    task: asyncio.Task[None] | None
    frames: asyncio.Queue[StreamFrame | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=VIEWER_QUEUE_FRAMES)
    )
    dropped: int = 0

    def offer(self, frame: StreamFrame | None) -> None:
        """Queue a frame (None: end of stream), dropping this viewer's oldest frame if it is behind."""
        if self.frames.full():
            self.frames.get_nowait()
            self.dropped += 1
        self.frames.put_nowait(frame)

    def abort(self) -> None:
        """Close the connection at once (unsent bytes are discarded) and end its stream."""
        self.writer.transport.abort()
        self.offer(None)


class MjpegStream:
    """The viewers of one stream and the producer task that serves them at `fps`."""

    def __init__(
        self,
        name: StreamName,
        label: str,
        fps: float,
        render: Render,
        clock: Callable[[], float],
        live: asyncio.Event,
    ) -> None:
        self.name: StreamName = name
        self.label = label
        self.period_s = 1.0 / fps
        self._render = render
        self._clock = clock
        self._live = live
        self.viewers: set[Viewer] = set()
        self.frames_encoded = 0
        self._dropped_by_gone_viewers = 0
        self._producer: asyncio.Task[None] | None = None

    @property
    def frames_dropped(self) -> int:
        return self._dropped_by_gone_viewers + sum(v.dropped for v in self.viewers)

    def add(self, viewer: Viewer) -> None:
        self.viewers.add(viewer)
        if self._producer is None or self._producer.done():
            self._producer = asyncio.create_task(self._produce(), name=f"simcam-{self.label}-{self.name}")

    def remove(self, viewer: Viewer) -> None:
        if viewer in self.viewers:
            self.viewers.discard(viewer)
            self._dropped_by_gone_viewers += viewer.dropped

    async def stop(self) -> None:
        """Cancel the producer, if running, and wait for it to end."""
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.cancel()
            await asyncio.wait([producer])

    async def _produce(self) -> None:
        try:
            await self._produce_while_watched()
        except Exception:
            logger.exception("sim camera %s: %s stream failed; closing its viewers", self.label, self.name)
            for viewer in list(self.viewers):
                viewer.abort()

    async def _produce_while_watched(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while self.viewers:
            await self._live.wait()  # cleared while frozen
            if not self.viewers:
                break
            counter = self.frames_encoded
            timestamp_s = self._clock()
            jpeg = await self._render(counter, timestamp_s)
            self.frames_encoded += 1
            timestamp_ms = round(timestamp_s * 1000)  # as the frame painter marks it
            head = (
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
                f"X-Frame-Counter: {counter}\r\nX-Timestamp: {timestamp_ms // 1000}.{timestamp_ms % 1000:03d}\r\n\r\n"
            )
            frame = StreamFrame(counter, timestamp_ms, head.encode("ascii") + jpeg + b"\r\n")
            for viewer in self.viewers:
                viewer.offer(frame)
            next_at += self.period_s
            delay_s = next_at - loop.time()
            if delay_s < 0:  # fell behind, or was frozen: keep the rate, do not burst
                next_at = loop.time()
                delay_s = 0.0
            await asyncio.sleep(delay_s)
