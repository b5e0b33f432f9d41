"""Live MJPEG tiles: one HTTP connection to a camera's multipart MJPEG stream, relayed as bytes.

Why pure asyncio and no decoding: a hall tile shows the camera's low-resolution sub-stream as it
comes, so the hub only splits the multipart body into JPEGs and hands the same bytes to every
viewer (50 viewers cost ~1 % of a core, LIBRARY-NOTES "Video"). Each part is read by its
`Content-Length` when the camera sends one, else up to the next boundary. Each frame is also
wrapped once, for all viewers, in a part of the hub's own multipart stream (`MJPEG_CONTENT_TYPE`),
so an HTTP handler writes `mjpeg_parts()` items straight to its response.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from devices.camera.live_fanout import Subscription, Upstream, redact
from devices.errors import ProtocolError

logger = logging.getLogger(__name__)

MJPEG_BOUNDARY: Final = "examstation-live"
MJPEG_CONTENT_TYPE: Final = f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}"
"""The Content-Type of a response made of `mjpeg_parts()` items."""
_MAX_HEADER_LINES: Final = 64
_MAX_PART_BYTES: Final = 8 * 1024 * 1024
_READER_LIMIT: Final = 1024 * 1024
"""Longest header line, and largest part without Content-Length, the reader accepts."""


@dataclass(frozen=True, slots=True)
class MjpegFrame:
    """One JPEG from the camera: its bytes, and the same bytes as a part of `MJPEG_CONTENT_TYPE`."""

    jpeg: bytes
    part: bytes
    received_mono_ns: int

    @classmethod
    def of(cls, jpeg: bytes) -> MjpegFrame:
        head = f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
        return cls(jpeg, head.encode("ascii") + jpeg + b"\r\n", time.monotonic_ns())


class MjpegSubscription(Subscription[MjpegFrame]):
    """A viewer's queue of at most `limit` frames: when full, the oldest frame is dropped."""

    def _accept(self, item: MjpegFrame) -> None:
        frames = sum(1 for _ in self._queued())
        if frames >= self._limit:
            for queued in self._items:
                if isinstance(queued, MjpegFrame):
                    self._items.remove(queued)
                    self.dropped += 1
                    break
        self._items.append(item)


class JpegView:
    """Iterates a subscription as JPEG bytes (`parts=False`) or as ready multipart parts."""

    def __init__(self, sub: MjpegSubscription, *, parts: bool) -> None:
        self.subscription = sub
        self._parts = parts

    def __aiter__(self) -> JpegView:
        return self

    async def __anext__(self) -> bytes:
        frame = await self.subscription.__anext__()
        return frame.part if self._parts else frame.jpeg

    async def __aenter__(self) -> JpegView:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.subscription.close()

    def close(self) -> None:
        self.subscription.close()

    async def aclose(self) -> None:
        self.subscription.close()


class MjpegUpstream(Upstream[MjpegFrame]):
    """The one HTTP connection to a camera's MJPEG stream (`http://` or `https://`)."""

    latest: MjpegFrame | None = None
    """The newest frame of the current connection (`latest_jpeg`)."""

    def latest_jpeg(self, max_age_s: float) -> bytes | None:
        frame = self.latest
        if frame is None or (time.monotonic_ns() - frame.received_mono_ns) / 1e9 > max_age_s:
            return None
        return frame.jpeg

    async def _pump(self) -> str:
        parts = urlsplit(self.url)
        https = parts.scheme == "https"
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (443 if https else 80)
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=ssl.create_default_context() if https else None, limit=_READER_LIMIT)
        except TimeoutError:
            return f"{redact(self.url)}: no connection within {self._connect_timeout_s:.1f} s"
        try:
            writer.write(_request(self.url).encode("latin-1"))
            try:
                return await self._read_stream(reader)
            except TimeoutError:
                return f"no frames for {self._stall_s:.1f} s from {redact(self.url)}"
            except asyncio.IncompleteReadError:
                return f"{redact(self.url)} closed the connection in the middle of a frame"
            except ProtocolError as err:
                return str(err)
            except ValueError as err:  # StreamReader.readline: a line longer than the reader's limit
                return f"{redact(self.url)} sent a header line over {_READER_LIMIT} bytes ({err}); is it MJPEG?"
        finally:
            writer.transport.abort()

    async def _read_stream(self, reader: asyncio.StreamReader) -> str:
        async with asyncio.timeout(self._stall_s):
            status = (await reader.readline()).decode("latin-1").strip()
            headers = await _read_headers(reader, self.url)
        fields = status.split(" ", 2)
        if len(fields) < 2 or not fields[0].startswith("HTTP/"):
            raise ProtocolError(f"{redact(self.url)} is not an HTTP server (answered {status[:60]!r})")
        if fields[1] != "200":
            hint = "check the user and password in the URL" if fields[1] in ("401", "403") else "check the URL path"
            raise ProtocolError(f"{redact(self.url)} answered {status!r}; {hint}")
        boundary = _boundary(headers.get("content-type", ""), self.url)
        self._opened()
        parts = _PartReader(reader, boundary, self.url)
        while True:
            async with asyncio.timeout(self._stall_s):
                jpeg = await parts.next_body()
            if jpeg is None:
                return f"{redact(self.url)} closed the connection (end of stream)"
            if not jpeg.startswith(b"\xff\xd8"):
                logger.debug("live view of camera %s: skipped a part that is not a JPEG", self.label)
                continue
            frame = MjpegFrame.of(jpeg)
            self.latest = frame
            self._publish(frame, len(jpeg))


def _request(url: str) -> str:
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc.rpartition('@')[2]}", "Accept: multipart/x-mixed-replace",
             "User-Agent: examstation-live-hub", "Connection: close"]
    if parts.username is not None:
        token = base64.b64encode(f"{parts.username}:{parts.password or ''}".encode()).decode("ascii")
        lines.append(f"Authorization: Basic {token}")
    return "\r\n".join(lines) + "\r\n\r\n"


async def _read_headers(reader: asyncio.StreamReader, url: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADER_LINES):
        line = await reader.readline()
        if not line:
            raise asyncio.IncompleteReadError(line, None)
        text = line.decode("latin-1").strip()
        if text == "":
            return headers
        name, _, value = text.partition(":")
        headers[name.strip().lower()] = value.strip()
    raise ProtocolError(f"{redact(url)}: more than {_MAX_HEADER_LINES} header lines; is this an MJPEG camera?")


def _boundary(content_type: str, url: str) -> bytes:
    """The multipart boundary, as the delimiter line carries it (`--` + boundary)."""
    kind, _, params = content_type.partition(";")
    if not kind.strip().lower().startswith("multipart/"):
        raise ProtocolError(f"{redact(url)} sends {content_type or 'no Content-Type'!r}, not multipart MJPEG; "
                            "set the camera's stream to MJPEG or give the hub its MJPEG sub-stream URL")
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary" and value.strip():
            boundary = value.strip().strip('"')
            return (boundary if boundary.startswith("--") else f"--{boundary}").encode("latin-1")
    raise ProtocolError(f"{redact(url)} sends multipart without a boundary ({content_type!r})")


class _PartReader:
    """Splits a multipart body into part bodies.

    A part is read by its Content-Length when present, else up to the next delimiter; in that case
    the delimiter is consumed with the body and the next part starts at its headers.
    """

    def __init__(self, reader: asyncio.StreamReader, boundary: bytes, url: str) -> None:
        self._reader = reader
        self._boundary = boundary
        self._url = url
        self._at_headers = False

    async def next_body(self) -> bytes | None:
        """The body of the next part, None at the end of the stream. Lines before a delimiter are
        skipped (some cameras send a bare CRLF, or the part's trailing CRLF twice)."""
        if self._at_headers:
            rest = await self._reader.readline()  # what follows the delimiter on its line
            if rest.strip() == b"--" or not rest:
                return None
        elif not await self._skip_to_delimiter():
            return None
        self._at_headers = False
        headers = await _read_headers(self._reader, self._url)
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit() or int(length) > _MAX_PART_BYTES:
                raise ProtocolError(f"{redact(self._url)}: part Content-Length {length!r} is not a size up to "
                                    f"{_MAX_PART_BYTES} bytes")
            return await self._reader.readexactly(int(length))
        try:
            body = await self._reader.readuntil(b"\r\n" + self._boundary)
        except asyncio.LimitOverrunError as err:
            raise ProtocolError(f"{redact(self._url)}: a part without Content-Length is over {_READER_LIMIT} bytes; "
                                "enable Content-Length on the camera or lower its resolution") from err
        self._at_headers = True
        return body[: -len(self._boundary) - 2]

    async def _skip_to_delimiter(self) -> bool:
        while True:
            line = await self._reader.readline()
            if not line:
                return False
            stripped = line.strip()
            if stripped in (self._boundary, self._boundary.removeprefix(b"--")):
                return True
            if stripped == self._boundary + b"--":
                return False
