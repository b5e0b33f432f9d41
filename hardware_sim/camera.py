"""Simulated station IP camera: MJPEG over HTTP on a real socket, with fault injection.

Why: the recorder, the live view relay and the site check must be exercised against what an exam
hall really has, an IP camera speaking HTTP, not against a fake frame source inside the process.
So each `SimCamera` is a tiny HTTP server on its own port that offers what cheap IP cameras offer:

- `/main.mjpg`: the main stream, `multipart/x-mixed-replace; boundary=frame`, 1280x720 at 10 fps;
- `/sub.mjpg`: the low-resolution sub-stream for hall tiles, 320x180 at 5 fps;
- `/snapshot.jpg`: one JPEG; anything else is a 404 with a short text body.

Each part carries `Content-Type: image/jpeg` and `Content-Length`, plus `X-Frame-Counter` and
`X-Timestamp` (capture time, seconds since the epoch) for tests; the frames themselves show the
same facts as text and as a machine-readable mark (see `hardware_sim.frame_painter`).

It behaves like the live view DESIGN.md asks of the controller: a stream does no work at all
without viewers, each frame is painted and encoded once on a worker thread (never on the event
loop) and the same bytes go to every viewer, and each viewer has a queue of two frames so a slow
viewer loses old frames instead of stalling the others (see `hardware_sim.mjpeg_stream`); a viewer
that makes no progress for 10 s is disconnected. Faults are injected on purpose with `freeze()` /
`resume()` (connections stay open, nothing new is sent) and `drop_clients()`. Station and camera ids
are painted in ASCII (cv2 fonts); other characters show as '?'.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Final, Self

from hardware_sim.frame_painter import FramePainter
from hardware_sim.mjpeg_stream import BOUNDARY, MjpegStream, StreamName, Viewer

logger = logging.getLogger(__name__)

STREAM_PATHS: Final[dict[str, StreamName]] = {"/main.mjpg": "main", "/sub.mjpg": "sub"}
SNAPSHOT_PATH: Final = "/snapshot.jpg"
_REQUEST_TIMEOUT_S: Final = 5.0
_SEND_TIMEOUT_S: Final = 10.0
_MAX_HEADER_LINES: Final = 64
_CLOSE_TIMEOUT_S: Final = 2.0


class SimCamera:
    """One simulated IP camera of one station, serving MJPEG on 127.0.0.1 and a free port.

    Use as `async with SimCamera("A03", "cam1") as cam:` then open `cam.url`.
    """

    def __init__(
        self,
        station: str,
        camera: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        main_size: tuple[int, int] = (1280, 720),
        main_fps: float = 10,
        sub_size: tuple[int, int] = (320, 180),
        sub_fps: float = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.station = station
        self.camera = camera
        self.label = f"{station}/{camera}"
        for name, fps in (("main", main_fps), ("sub", sub_fps)):
            if not 0 < fps <= 60:
                raise ValueError(f"sim camera {self.label}: {name}_fps={fps} is out of range; use 0 < fps <= 60")
        self.host = host
        self._requested_port = port
        self._clock = clock
        self._live = asyncio.Event()
        self._live.set()
        self._main_painter = FramePainter(station, camera, main_size)
        sub_painter = FramePainter(station, camera, sub_size)
        self._streams: dict[StreamName, MjpegStream] = {
            "main": MjpegStream("main", self.label, main_fps, self._renderer(self._main_painter), clock, self._live),
            "sub": MjpegStream("sub", self.label, sub_fps, self._renderer(sub_painter), clock, self._live),
        }
        self._snapshots_encoded = 0
        self._clients: set[Viewer] = set()
        self._server: asyncio.Server | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._port: int | None = None
        self._closing = False

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Open the listening socket; frames are produced only once a viewer connects."""
        if self._server is not None:
            raise RuntimeError(f"sim camera {self.label} is already started")
        self._closing = False
        self._server = await asyncio.start_server(self._on_connect, self.host, self._requested_port)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"simcam-{self.label}")
        self._port = int(self._server.sockets[0].getsockname()[1])
        logger.info("sim camera %s: serving MJPEG on %s", self.label, self.url)

    async def aclose(self) -> None:
        """Stop listening, close every connection, stop the producers and join the worker thread."""
        server, self._server = self._server, None
        if server is None:
            return
        self._closing = True
        server.close()
        await asyncio.sleep(0)  # let handlers of connections accepted just before close() register
        await self._close_clients()
        for stream in self._streams.values():
            await stream.stop()
        await server.wait_closed()
        executor, self._executor = self._executor, None
        if executor is not None:
            # The single worker runs jobs in order: once this no-op ran, the thread is idle.
            await asyncio.get_running_loop().run_in_executor(executor, _idle)
            executor.shutdown(wait=True)
        logger.info("sim camera %s: closed", self.label)

    # -- addresses and statistics --------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"sim camera {self.label} is not started; use 'async with SimCamera(...)'")
        return self._port

    @property
    def url(self) -> str:
        """Main stream (MJPEG, main size and fps)."""
        return f"http://{self.host}:{self.port}/main.mjpg"

    @property
    def sub_url(self) -> str:
        """Low-resolution sub-stream (MJPEG)."""
        return f"http://{self.host}:{self.port}/sub.mjpg"

    @property
    def snapshot_url(self) -> str:
        return f"http://{self.host}:{self.port}{SNAPSHOT_PATH}"

    @property
    def frames_encoded(self) -> dict[StreamName, int]:
        """Frames painted and encoded per stream, each once whatever the number of viewers."""
        return {name: stream.frames_encoded for name, stream in self._streams.items()}

    @property
    def frames_dropped(self) -> dict[StreamName, int]:
        """Frames that slow viewers skipped (their queue was full), summed over viewers."""
        return {name: stream.frames_dropped for name, stream in self._streams.items()}

    @property
    def viewers(self) -> dict[StreamName, int]:
        """Connected viewers per stream."""
        return {name: len(stream.viewers) for name, stream in self._streams.items()}

    @property
    def snapshots_encoded(self) -> int:
        return self._snapshots_encoded

    @property
    def frozen(self) -> bool:
        return not self._live.is_set()

    # -- fault injection -----------------------------------------------------------------------

    def freeze(self) -> None:
        """Stall both streams: connections stay open, no frame is produced; at most the one or two
        frames already queued for a viewer still go out. Snapshots are still served."""
        logger.info("sim camera %s: frozen (fault injected)", self.label)
        self._live.clear()

    def resume(self) -> None:
        logger.info("sim camera %s: resumed", self.label)
        self._live.set()

    async def drop_clients(self) -> None:
        """Close every open connection at once, as a camera reboot would; the server stays up."""
        logger.info("sim camera %s: dropping %d connection(s) (fault injected)", self.label, len(self._clients))
        await self._close_clients()

    async def _close_clients(self) -> None:
        clients = list(self._clients)
        for client in clients:
            client.abort()
        tasks = [c.task for c in clients if c.task is not None and c.task is not asyncio.current_task()]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=_CLOSE_TIMEOUT_S)
        for task in pending:  # only if a handler ignored its closed transport: a bug, say so
            logger.error("sim camera %s: connection handler %s did not stop; cancelling", self.label, task)
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    # -- HTTP ----------------------------------------------------------------------------------

    def _renderer(self, painter: FramePainter) -> Callable[[int, float], Awaitable[bytes]]:
        async def render(counter: int, timestamp_s: float) -> bytes:
            """Paint and encode on the camera's worker thread, never on the event loop."""
            if self._executor is None:
                raise RuntimeError(f"sim camera {self.label} is closed")
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, painter.render_jpeg, counter, timestamp_s)

        return render

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = Viewer(writer, asyncio.current_task())
        self._clients.add(client)
        peer = writer.get_extra_info("peername")
        try:
            if not self._closing:
                await self._serve(reader, client)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as err:
            logger.debug("sim camera %s: connection from %s ended: %r", self.label, peer, err)
        except asyncio.CancelledError:
            # Only _close_clients cancels, as a last resort; end quietly so the stream machinery
            # of asyncio does not report a cancelled connection callback.
            logger.debug("sim camera %s: connection from %s cancelled", self.label, peer)
        except Exception:
            logger.exception("sim camera %s: connection from %s failed", self.label, peer)
        finally:
            self._clients.discard(client)
            for stream in self._streams.values():
                stream.remove(client)
            writer.transport.abort()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, client: Viewer) -> None:
        async with asyncio.timeout(_REQUEST_TIMEOUT_S):
            request_line = await reader.readline()
            for _ in range(_MAX_HEADER_LINES):
                if (await reader.readline()).strip() == b"":
                    break
            else:
                await self._send_simple(client, 431, "request header too large")
                return
        parts = request_line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            if request_line:
                await self._send_simple(client, 400, "bad request line")
            return
        method, target = parts[0], parts[1].split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            await self._send_simple(client, 405, f"method {method} not allowed; use GET")
            return
        stream_name = STREAM_PATHS.get(target)
        if stream_name is not None:
            await self._send_stream(reader, client, self._streams[stream_name], head_only=method == "HEAD")
        elif target == SNAPSHOT_PATH:
            await self._send_snapshot(client, head_only=method == "HEAD")
        else:
            paths = ", ".join([*STREAM_PATHS, SNAPSHOT_PATH])
            await self._send_simple(client, 404, f"not found: {target}; this camera serves {paths}")

    async def _send(self, client: Viewer, data: bytes) -> None:
        client.writer.write(data)
        async with asyncio.timeout(_SEND_TIMEOUT_S):
            await client.writer.drain()

    async def _send_simple(self, client: Viewer, status: int, text: str) -> None:
        body = f"{text}\n".encode()
        await self._send(
            client,
            _status_line(status)
            + _headers(("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))))
            + body,
        )

    async def _send_snapshot(self, client: Viewer, *, head_only: bool) -> None:
        counter = self._snapshots_encoded
        self._snapshots_encoded += 1
        jpeg = await self._renderer(self._main_painter)(counter, self._clock())
        head = _status_line(200) + _headers(
            ("Content-Type", "image/jpeg"), ("Content-Length", str(len(jpeg))), ("Cache-Control", "no-cache")
        )
        await self._send(client, head if head_only else head + jpeg)

    async def _send_stream(
        self, reader: asyncio.StreamReader, client: Viewer, stream: MjpegStream, *, head_only: bool
    ) -> None:
        head = _status_line(200) + _headers(
            ("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}"),
            ("Cache-Control", "no-cache, no-store"),
            ("Pragma", "no-cache"),
        )
        await self._send(client, head)
        if head_only:
            return
        logger.debug("sim camera %s: viewer joined %s stream", self.label, stream.name)
        stream.add(client)
        # A viewer that hangs up must stop costing frames now, not at the next failed write.
        hang_up = asyncio.create_task(_watch_hang_up(reader, client), name=f"simcam-{self.label}-hang-up")
        try:
            while (frame := await client.frames.get()) is not None:
                await self._send(client, frame.part)
        finally:
            hang_up.cancel()
            await asyncio.wait([hang_up])


async def _watch_hang_up(reader: asyncio.StreamReader, client: Viewer) -> None:
    """Read and discard what a viewer sends; at end of file, end its stream."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(4096):
            pass
    client.offer(None)


def _idle() -> None:
    """A no-op job for the worker thread."""


_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
}


def _status_line(status: int) -> bytes:
    return f"HTTP/1.1 {status} {_REASONS[status]}\r\n".encode("ascii")


def _headers(*pairs: tuple[str, str]) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in pairs)
    return f"{lines}Server: examstation-sim-camera\r\nConnection: close\r\n\r\n".encode("ascii")
