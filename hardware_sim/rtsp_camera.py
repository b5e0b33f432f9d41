"""Simulated H.264 IP camera: the main stream over RTSP 1.0 with RTP over TCP, with fault injection.

Why: exam-hall IP cameras give their main stream as H.264 over RTSP, and the recorder must remux
exactly that, never re-encode. `SimRtspCamera` serves `rtsp://127.0.0.1:PORT/main` the way such a
camera does: OPTIONS, DESCRIBE (SDP with H264/90000, packetization-mode=1, sprop-parameter-sets,
profile-level-id), SETUP with `RTP/AVP/TCP;interleaved=0-1` only (UDP is refused with 461
Unsupported Transport: clients such as FFmpeg then retry over TCP), PLAY, PAUSE, GET_PARAMETER and
SET_PARAMETER keepalives, TEARDOWN. Incoming interleaved RTCP is read and ignored.

The picture is a clip encoded once and looped (`hardware_sim.h264_clip`, whose docstring gives the
frame-counter SEI every frame carries) with continuous 90 kHz RTP timestamps and sequence numbers.
One producer task per camera, paced on the clock, builds each frame's packets once
(`hardware_sim.rtp_h264`) and hands the same bytes to every playing client; it does no work
while nobody plays. SPS and PPS go in-band before every keyframe, and a client starts on a keyframe,
so its first packet decodes. Each client has a queue of a few frames: a slow client loses whole
frames (then waits for the next keyframe, so what it gets still decodes) and never stalls the
others; one that accepts nothing for 10 s is disconnected. Measured on the 2-core box at 720p10,
each camera played by one `ffmpeg -c copy` client: 0.17 % of a core per camera with 24 cameras in
one process (30 s), 0.27 % for a single camera; 0 frames dropped.

Faults mirror `SimCamera`: `freeze()`/`resume()` (connections stay open, nothing is sent; RTP
timestamps then jump by the stall, as a camera's would), `drop_clients()` (every connection closed,
the server stays), `refuse_connections(True)` (new connections closed at once, as an unplugged camera;
open ones are untouched: combine with `drop_clients()` for a full unplug).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import Callable
from types import TracebackType
from typing import Final, Self

from hardware_sim.h264_clip import H264Clip, load_clip, sei_nal
from hardware_sim.rtp_h264 import CLOCK_RATE_HZ, PAYLOAD_TYPE, FramePlan, RtpSender
from hardware_sim.rtsp_session import RtspClient, RtspRequest, RtspSession

logger = logging.getLogger(__name__)

PATH: Final = "/main"
_SEND_BUFFER_BYTES: Final = 64 * 1024
"""Kernel send buffer per connection: a camera holds little, so a client that stops reading starts
losing frames within about a second instead of after megabytes of loopback buffering."""
_SEND_TIMEOUT_S: Final = 10.0
_CLOSE_TIMEOUT_S: Final = 2.0


class SimRtspCamera:
    """One simulated H.264 camera: `async with SimRtspCamera("A01", "overview") as cam:` then `cam.url`."""

    def __init__(
        self,
        station: str,
        camera: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        size: tuple[int, int] = (1280, 720),
        fps: int = 10,
        labelled: bool = True,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.station, self.camera = station, camera
        self.label = f"{station}/{camera}"
        if not 1 <= fps <= 30:
            raise ValueError(f"sim RTSP camera {self.label}: fps={fps} is out of range; use 1..30 (cameras send 10-15)")
        self.host, self.size, self.fps = host, size, fps
        self._requested_port, self._labelled, self._clock_ns = port, labelled, clock_ns
        self._clip: H264Clip | None = None
        self._plans: list[FramePlan] = []
        self._live = True
        self._refusing = False
        self._wanted = asyncio.Event()
        self._clients: set[RtspClient] = set()
        self._server: asyncio.Server | None = None
        self._producer: asyncio.Task[None] | None = None
        self._port: int | None = None
        self._frames_sent = 0

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Load (or encode, off the loop) the clip and listen; frames flow only while someone plays."""
        if self._server is not None:
            raise RuntimeError(f"sim RTSP camera {self.label} is already started")
        self._clip = await asyncio.to_thread(load_clip, self.size, self.fps, self.label if self._labelled else None)
        self._plans = [FramePlan.of(frame.nals) for frame in self._clip.frames]
        self._server = await asyncio.start_server(self._on_connect, self.host, self._requested_port)
        self._port = int(self._server.sockets[0].getsockname()[1])
        self._producer = asyncio.create_task(self._produce(self._clip), name=f"sim-rtsp-{self.label}-producer")
        logger.info("sim RTSP camera %s: serving H.264 on %s", self.label, self.url)

    async def aclose(self) -> None:
        """Stop listening, close every connection and stop the producer."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await asyncio.sleep(0)  # let handlers of connections accepted just before close() register
        await self._close_clients()
        if self._producer is not None:
            self._producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._producer
        await server.wait_closed()
        logger.info("sim RTSP camera %s: closed after %d frames", self.label, self._frames_sent)

    # -- addresses and statistics --------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"sim RTSP camera {self.label} is not started; use 'async with SimRtspCamera(...)'")
        return self._port

    @property
    def url(self) -> str:
        """The H.264 main stream, `rtsp://HOST:PORT/main`."""
        return f"rtsp://{self.host}:{self.port}{PATH}"

    @property
    def frames_sent(self) -> int:
        """Frames produced for the wire; also the frame counter the next frame's SEI will carry."""
        return self._frames_sent

    @property
    def clients(self) -> int:
        """Open RTSP connections (playing or not)."""
        return len(self._clients)

    @property
    def frames_dropped(self) -> int:
        """Frames that slow clients lost (their queue was full), summed over the open connections."""
        return sum(c.frames_dropped for c in self._clients)

    @property
    def frozen(self) -> bool:
        return not self._live

    # -- fault injection -----------------------------------------------------------------------

    def freeze(self) -> None:
        """Stall the stream: connections stay open and answer requests, no new frame is produced (frames
        already queued for a client, at most a few, still go out)."""
        logger.info("sim RTSP camera %s: frozen (fault injected)", self.label)
        self._live = False
        self._update_wanted()

    def resume(self) -> None:
        logger.info("sim RTSP camera %s: resumed", self.label)
        self._live = True
        self._update_wanted()

    def refuse_connections(self, refuse: bool) -> None:
        """While True, every new connection is closed as soon as it is accepted (unplugged camera)."""
        logger.info("sim RTSP camera %s: %s new connections (fault injected)", self.label,
                    "refusing" if refuse else "accepting")
        self._refusing = refuse

    async def drop_clients(self) -> None:
        """Close every open connection at once, as a camera reboot would; the server stays up."""
        logger.info("sim RTSP camera %s: dropping %d connection(s) (fault injected)", self.label, len(self._clients))
        await self._close_clients()

    async def _close_clients(self) -> None:
        clients = list(self._clients)
        for client in clients:
            client.writer.transport.abort()
        tasks = [c.task for c in clients if c.task is not None and c.task is not asyncio.current_task()]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=_CLOSE_TIMEOUT_S)
        for task in pending:  # a handler that ignored its closed transport: a bug, say so
            logger.error("sim RTSP camera %s: connection handler %s did not stop; cancelling", self.label, task)
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    # -- the producer --------------------------------------------------------------------------

    def _update_wanted(self) -> None:
        if self._live and any(c.playing for c in self._clients):
            self._wanted.set()
        else:
            self._wanted.clear()

    async def _produce(self, clip: H264Clip) -> None:
        """Send the clip in a loop at `fps`, paced on the loop's monotonic clock, while wanted."""
        loop = asyncio.get_running_loop()
        interval_s = 1.0 / clip.fps
        sender = RtpSender(ssrc=secrets.randbits(32), first_sequence=secrets.randbits(16))
        rtp_base, slot, position = secrets.randbits(32), 0, 0
        next_s = loop.time()
        while True:
            if not self._wanted.is_set():
                idle_from = loop.time()
                await self._wanted.wait()
                # RTP time runs on while nothing is sent, as a stalled camera's clock would.
                slot += round((loop.time() - idle_from) * clip.fps)
                next_s = loop.time()
            await asyncio.sleep(max(0.0, next_s - loop.time()))
            next_s = max(next_s + interval_s, loop.time() - interval_s)  # no burst after a stall
            if not self._wanted.is_set():
                continue
            playing = [c for c in self._clients if c.playing]
            if all(c.need_keyframe for c in playing) and not clip.frames[position].keyframe:
                position = (position + clip.fps - position % clip.fps) % len(clip.frames)  # next GOP
            frame = clip.frames[position]
            payloads = [clip.sps, clip.pps] if frame.keyframe else []
            payloads.append(sei_nal(self._frames_sent, self._clock_ns()))
            payloads.extend(self._plans[position].payloads)
            data = sender.frame(payloads, rtp_base + round(slot * CLOCK_RATE_HZ / clip.fps))
            for client in playing:
                client.offer(data, frame.keyframe)
            self._frames_sent += 1
            slot += 1
            position = (position + 1) % len(clip.frames)

    # -- connections ---------------------------------------------------------------------------

    def describe(self) -> str:
        """The SDP of the main stream."""
        clip = self._clip
        if clip is None:
            raise RuntimeError(f"sim RTSP camera {self.label} is not started")
        sprop = ",".join(base64.b64encode(p).decode("ascii") for p in (clip.sps, clip.pps))
        return (
            f"v=0\r\no=- {self.port} 1 IN IP4 {self.host}\r\ns=examstation sim camera {self.label}\r\n"
            f"c=IN IP4 0.0.0.0\r\nt=0 0\r\na=control:*\r\nm=video 0 RTP/AVP {PAYLOAD_TYPE}\r\n"
            f"a=rtpmap:{PAYLOAD_TYPE} H264/{CLOCK_RATE_HZ}\r\n"
            f"a=fmtp:{PAYLOAD_TYPE} packetization-mode=1;profile-level-id={clip.profile_level_id};"
            f"sprop-parameter-sets={sprop}\r\n"
            f"a=framerate:{clip.fps}\r\na=x-dimensions:{clip.width},{clip.height}\r\na=control:trackID=0\r\n"
        )

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if self._refusing or self._server is None:
            logger.debug("sim RTSP camera %s: refused connection from %s", self.label, peer)
            writer.transport.abort()
            return
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER_BYTES)
        client = RtspClient(writer, asyncio.current_task())
        self._clients.add(client)
        pump = asyncio.create_task(self._pump(client), name=f"sim-rtsp-{self.label}-send")
        try:
            session = RtspSession(client, self.label, self.describe, PATH)
            while (request := await RtspRequest.read(reader)) is not None:
                if not session.answer(request):
                    break
                self._update_wanted()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError) as err:
            logger.debug("sim RTSP camera %s: connection from %s ended: %r", self.label, peer, err)
        except asyncio.CancelledError:
            logger.debug("sim RTSP camera %s: connection from %s cancelled", self.label, peer)
        except Exception:
            logger.exception("sim RTSP camera %s: connection from %s failed", self.label, peer)
        finally:
            self._clients.discard(client)
            self._update_wanted()
            pump.cancel()
            await asyncio.wait([pump])
            writer.transport.abort()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _pump(self, client: RtspClient) -> None:
        """Write queued frames; a client that accepts nothing for 10 s is cut off."""
        try:
            while True:
                data = await client.queue.get()
                client.writer.write(data)
                async with asyncio.timeout(_SEND_TIMEOUT_S):
                    await client.writer.drain()
        except (ConnectionError, TimeoutError) as err:
            logger.info("sim RTSP camera %s: client cut off: %r", self.label, err)
            client.writer.transport.abort()
