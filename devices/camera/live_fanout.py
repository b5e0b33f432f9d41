"""The part of the live hub shared by MJPEG tiles and fMP4 players: one upstream, many viewers.

Why one upstream per stream whatever the number of viewers: a camera serves a handful of
connections at most, and a viewer must never cost a decode or an encode (DESIGN.md, "Evidence
video"). So an `Upstream` holds the camera's one connection and hands the same bytes to every
`Subscription`; each subscription has a small bounded queue with its own drop policy, so a slow
viewer loses frames and never stalls the upstream or the other viewers.

No work without viewers: the upstream task starts with the first subscription and stops `linger_s`
after the last one leaves (a page reload or a tile scrolled back into view reuses the connection).
Subscriptions are held weakly as well as closed explicitly, so a viewer dropped without `aclose()`
(a handler that forgot, a cancelled response) still stops counting.

When the upstream fails, every subscription gets `LiveStreamLost` from its iterator, in order after
the frames it already had: a clear end, with the camera, the cause and what to do. A viewer that
keeps reading (`async for` again on the same subscription) waits for the reconnect, which is
retried with capped jittered backoff as long as someone is subscribed.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

from devices.camera.reader import Backoff
from devices.errors import DeviceConfigError, DeviceDisconnected

logger = logging.getLogger(__name__)

T = TypeVar("T")


class LiveViewUnavailable(DeviceConfigError):
    """The live view asked for does not exist: unknown camera, or a stream the camera does not
    offer in a form a browser can show without transcoding (which the hub never does)."""


class LiveStreamLost(DeviceDisconnected):
    """The camera's upstream connection failed; the hub is reconnecting.

    Raised by a subscription's iterator after the frames it already had. Iterating the same
    subscription again resumes after the reconnect (for fMP4, with a new init segment: a browser
    player must reset its SourceBuffer); closing it stops counting the viewer.
    """

    def __init__(self, camera: str, cause: str, retry_in_s: float) -> None:
        super().__init__(f"live view of camera {camera}: {cause}; reconnecting in {retry_in_s:.1f} s "
                         "(keep reading to resume; if it persists, check the camera's power, cable and address)")
        self.camera = camera
        self.cause = cause
        self.retry_in_s = retry_in_s


@dataclass(frozen=True, slots=True)
class LiveStreamStats:
    """One upstream at one moment.

    `upstream_opens`: connections that delivered a response (HTTP 200 / RTSP stream opened);
    `connect_failures`: attempts that did not; `viewers`: open subscriptions; `frames`: frames (MJPEG
    parts, fMP4 fragments) received once from the camera and relayed to every viewer; `bytes`: their
    size, counted once; `viewer_drops`: frames viewers lost because they were behind; `connected`:
    the upstream is open now; `last_error`: the cause of the last failure, if any.
    """

    url: str
    upstream_opens: int
    connect_failures: int
    viewers: int
    frames: int
    bytes: int
    viewer_drops: int
    connected: bool
    last_error: str | None


def redact(url: str) -> str:
    """The URL without its password, for messages and logs (cameras often carry user:pass@)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class Subscription(Generic[T]):
    """One viewer's bounded queue of items of one upstream; iterate it, then close it.

    Use `async with hub.mjpeg(...) as frames: async for jpeg in frames: ...` (or call `aclose()`).
    Iteration ends (StopAsyncIteration) when the subscription or the hub is closed, and raises
    `LiveStreamLost` where the upstream failed. Subclasses decide what to drop when it is full.
    """

    def __init__(self, upstream: Upstream[T], limit: int) -> None:
        self._upstream = upstream
        self._limit = limit
        self._items: deque[T | LiveStreamLost] = deque()
        self._wake = asyncio.Event()
        self._closed = False
        self.dropped = 0

    # -- viewer side ---------------------------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        while True:
            if self._items:
                item = self._items.popleft()
                if isinstance(item, LiveStreamLost):
                    raise item
                return item
            if self._closed:
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop being a viewer: the upstream lingers, then stops if nobody else watches."""
        if not self._closed:
            self._closed = True
            self._wake.set()
            self._upstream.discard(self)

    async def aclose(self) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- upstream side -------------------------------------------------------------------------

    direct: Callable[[T], bool] | None = None
    """Set by a viewer that can often take an item at once (a socket with room in its buffer):
    `offer` hands items there while nothing is queued, instead of queueing and waking the viewer's
    task, which is most of what a viewer costs. It returns False when it cannot take the item now
    (the socket is full, or the viewer is mid-send): the item is then queued as usual, and order is
    kept because nothing goes direct while anything is queued."""

    def offer(self, item: T) -> None:
        """Hand an item to this viewer: at once when it can take it, else queued (applying the drop
        policy when it is behind)."""
        if self._closed:
            return
        if self.direct is not None and not self._items and self._may_skip_queue(item) and self.direct(item):
            self._delivered_direct(item)
            return
        self._accept(item)
        self._wake.set()

    def lost(self, error: LiveStreamLost) -> None:
        """Queue the failure after what this viewer already has. Each viewer gets its own exception
        (one instance raised in many tasks would share one traceback); repeated failures while it does
        not read (a camera down for an hour) keep only the newest, so the queue stays bounded."""
        if self._closed:
            return
        own = LiveStreamLost(error.camera, error.cause, error.retry_in_s)
        if self._items and isinstance(self._items[-1], LiveStreamLost):
            self._items[-1] = own
        else:
            self._items.append(own)
        self._on_lost()
        self._wake.set()

    def end(self) -> None:
        """The hub is closing: deliver what is queued, then StopAsyncIteration."""
        self._closed = True
        self._wake.set()

    def _accept(self, item: T) -> None:
        raise NotImplementedError

    def _on_lost(self) -> None:
        """Reset per-connection state (an fMP4 viewer needs a new init segment after a reconnect)."""

    def _may_skip_queue(self, item: T) -> bool:
        """Whether `item` may go straight to `direct` (what `_accept` would take, in the same state)."""
        return True

    def _delivered_direct(self, item: T) -> None:
        """Update what `_accept` would have for an item that went to `direct`."""

    def _queued(self) -> Generator[T, None, None]:
        return (item for item in self._items if not isinstance(item, LiveStreamLost))


class Upstream(Generic[T]):
    """One camera stream's single connection, started by the first viewer, stopped after the last.

    Subclasses implement `_pump()`: open the connection, call `_opened()` once it answers and
    `_publish()` per frame, and return the cause when the connection ends (or raise OSError).
    """

    def __init__(self, label: str, url: str, *, linger_s: float, backoff_initial_s: float,
                 backoff_max_s: float, stall_s: float, connect_timeout_s: float) -> None:
        self.label = label
        self.url = url
        self._stall_s = stall_s
        self._connect_timeout_s = connect_timeout_s
        self._linger_s = linger_s
        self._backoff = Backoff(backoff_initial_s, backoff_max_s)
        self._subs: weakref.WeakSet[Subscription[T]] = weakref.WeakSet()
        self._task: asyncio.Task[None] | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._closing = False
        self.upstream_opens = 0
        self.connect_failures = 0
        self.frames = 0
        self.bytes = 0
        self.connected = False
        self.last_error: str | None = None
        self._drops_of_gone_viewers = 0

    @property
    def viewers(self) -> int:
        return sum(1 for sub in self._subs if not sub.closed)

    def stats(self) -> LiveStreamStats:
        drops = self._drops_of_gone_viewers + sum(sub.dropped for sub in self._subs)
        return LiveStreamStats(redact(self.url), self.upstream_opens, self.connect_failures, self.viewers,
                               self.frames, self.bytes, drops, self.connected, self.last_error)

    def add(self, sub: Subscription[T]) -> None:
        """Register a new viewer and start the upstream if it is not running."""
        if self._closing:
            raise LiveViewUnavailable(f"live view of camera {self.label}: the live hub is closed")
        self._subs.add(sub)
        self._welcome(sub)
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"live-{self.label}-{type(self).__name__}")

    def discard(self, sub: Subscription[T]) -> None:
        if sub in self._subs:
            self._drops_of_gone_viewers += sub.dropped
            self._subs.discard(sub)
        self._maybe_linger()

    async def aclose(self) -> None:
        """End every viewer's iteration and stop the upstream; idempotent."""
        self._closing = True
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        for sub in list(self._subs):
            sub.end()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    # -- for subclasses ------------------------------------------------------------------------

    async def _pump(self) -> str:
        raise NotImplementedError

    def _welcome(self, sub: Subscription[T]) -> None:
        """Give a new viewer what it needs before live items (the fMP4 init segment)."""

    def _opened(self) -> None:
        self.upstream_opens += 1
        self.connected = True
        logger.info("live view of camera %s: upstream open (%s), %d viewer(s)", self.label, redact(self.url),
                    self.viewers)

    def _publish(self, item: T, size: int) -> None:
        """Hand one frame to every viewer (the same object: no copy per viewer)."""
        self.frames += 1
        self.bytes += size
        self._backoff.reset()
        for sub in list(self._subs):
            sub.offer(item)
        self._maybe_linger()

    # -- internals -----------------------------------------------------------------------------

    def _maybe_linger(self) -> None:
        """Nobody watches: stop the upstream after `linger_s` unless a viewer comes back."""
        if self.viewers or self._linger is not None or self._task is None or self._task.done():
            return
        self._linger = asyncio.get_running_loop().call_later(self._linger_s, self._linger_over)

    def _linger_over(self) -> None:
        self._linger = None
        if not self.viewers and self._task is not None:
            logger.info("live view of camera %s: no viewers for %.1f s; closing upstream", self.label,
                        self._linger_s)
            self._task.cancel()

    async def _run(self) -> None:
        try:
            while self.viewers:
                try:
                    cause = await self._pump()
                except OSError as err:
                    cause = f"{redact(self.url)}: {getattr(err, 'strerror', None) or err}"
                except Exception as err:  # a bug: viewers must still get a clear end, and the log the trace
                    logger.exception("live view of camera %s: upstream failed unexpectedly", self.label)
                    cause = f"internal error in the live hub ({type(err).__name__}: {err})"
                if not self.connected:
                    self.connect_failures += 1
                self.connected = False
                self.last_error = cause
                retry_in_s = self._backoff.next_s()
                error = LiveStreamLost(self.label, cause, retry_in_s)
                logger.warning("%s", error)
                for sub in list(self._subs):
                    sub.lost(error)
                if not self.viewers:
                    break
                await asyncio.sleep(retry_in_s)
        finally:
            self.connected = False
