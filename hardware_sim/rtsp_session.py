"""RTSP 1.0 requests and the answers of one simulated camera connection (RFC 2326, TCP transport only).

Why apart from `hardware_sim.rtsp_camera`: the text protocol (parsing, status codes, session and
transport rules) is independent of producing frames, and is what interop with FFmpeg, PyAV and
NVRs depends on; it is kept small and explicit here. Only what cameras commonly answer is served:
OPTIONS, DESCRIBE, SETUP (RTP over the RTSP connection, `interleaved`), PLAY, PAUSE, TEARDOWN and
the GET_PARAMETER / SET_PARAMETER keepalives. Everything else gets 501 with the list of methods.
`RtspClient` is the state of one connection: set up, playing, and its bounded queue of frames.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

SESSION_TIMEOUT_S: Final = 60
QUEUE_FRAMES: Final = 5
"""Frames waiting per client: a client further behind loses frames up to the next keyframe."""
_MAX_HEADER_LINES: Final = 64
_MAX_BODY: Final = 64 * 1024
_METHODS: Final = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER"
_REASONS: Final = {200: "OK", 400: "Bad Request", 404: "Not Found", 454: "Session Not Found",
                   455: "Method Not Valid in This State", 461: "Unsupported Transport", 501: "Not Implemented",
                   505: "RTSP Version Not Supported"}


@dataclass(eq=False)
class RtspClient:
    """One RTSP connection and the frames waiting to be written to it."""

    writer: asyncio.StreamWriter
    task: asyncio.Task[None] | None
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(QUEUE_FRAMES))
    playing: bool = False
    need_keyframe: bool = True
    frames_dropped: int = 0

    def offer(self, frame: bytes, keyframe: bool) -> None:
        """Queue a frame; a full queue loses it and every frame up to the next keyframe."""
        if not self.playing or (self.need_keyframe and not keyframe):
            return
        if self.queue.full():
            self.frames_dropped += 1
            self.need_keyframe = True
            return
        self.need_keyframe = False
        self.queue.put_nowait(frame)


@dataclass(frozen=True, slots=True)
class RtspRequest:
    method: str
    url: str
    version: str
    headers: dict[str, str]
    """Header names in lower case."""

    @classmethod
    async def read(cls, reader: asyncio.StreamReader) -> RtspRequest | None:
        """The next request, skipping interleaved data (RTCP receiver reports); None at end of stream.

        A silent client is dropped after the session timeout, as cameras do: players keep it alive
        with GET_PARAMETER or RTCP. Raises ValueError on a malformed request.
        """
        async with asyncio.timeout(SESSION_TIMEOUT_S):
            while True:
                first = await reader.read(1)
                if not first:
                    return None
                if first == b"$":
                    head = await reader.readexactly(3)
                    await reader.readexactly(int.from_bytes(head[1:3], "big"))
                    continue
                if first in b"\r\n":
                    continue
                request_line = (first + await reader.readline()).decode("latin-1").strip()
                break
            headers: dict[str, str] = {}
            for _ in range(_MAX_HEADER_LINES):
                line = (await reader.readline()).decode("latin-1").strip()
                if not line:
                    break
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            else:
                raise ValueError(f"RTSP request {request_line!r} has more than {_MAX_HEADER_LINES} header lines")
            length = int(headers.get("content-length", "0"))
            if not 0 <= length <= _MAX_BODY:
                raise ValueError(f"RTSP request {request_line!r}: Content-Length {length} out of range")
            await reader.readexactly(length)
        parts = request_line.split()
        if len(parts) != 3:
            raise ValueError(f"malformed RTSP request line {request_line!r}; expected 'METHOD URL RTSP/1.0'")
        return cls(parts[0].upper(), parts[1], parts[2], headers)


class RtspSession:
    """Answers the requests of one connection and moves its client between set-up and playing."""

    def __init__(self, client: RtspClient, label: str, describe: Callable[[], str], path: str) -> None:
        self.client, self.label, self._describe, self._path = client, label, describe, path
        self.session_id = ""

    def answer(self, request: RtspRequest) -> bool:
        """Write the response to `request`; False when the connection must close (TEARDOWN)."""
        cseq = request.headers.get("cseq", "0")
        status, headers, body = self._handle(request)
        head = [f"RTSP/1.0 {status} {_REASONS[status]}", f"CSeq: {cseq}", "Server: examstation-sim-camera"]
        if self.session_id and status != 454:
            head.append(f"Session: {self.session_id};timeout={SESSION_TIMEOUT_S}")
        head += [f"{name}: {value}" for name, value in headers]
        payload = body.encode()
        if payload:
            head.append(f"Content-Length: {len(payload)}")
        if status >= 400:
            logger.info("sim RTSP camera %s: %s %s -> %d %s", self.label, request.method, request.url, status,
                        body.strip())
        self.client.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
        return request.method != "TEARDOWN" or status != 200

    def _handle(self, request: RtspRequest) -> tuple[int, list[tuple[str, str]], str]:
        if request.version != "RTSP/1.0":
            return 505, [], f"this camera speaks RTSP/1.0, not {request.version}\n"
        if request.method == "OPTIONS":
            return 200, [("Public", _METHODS)], ""
        path = urlsplit(request.url).path if request.url != "*" else self._path
        if path.rstrip("/") != self._path and not path.startswith(self._path + "/"):
            return 404, [("Content-Type", "text/plain")], f"no stream at {path}; this camera serves {self._path}\n"
        if request.method == "DESCRIBE":
            base = request.url.rstrip("/") + "/"
            return 200, [("Content-Type", "application/sdp"), ("Content-Base", base)], self._describe()
        if request.method == "SETUP":
            return self._setup(request.headers.get("transport", ""))
        if request.method not in ("PLAY", "PAUSE", "TEARDOWN", "GET_PARAMETER", "SET_PARAMETER"):
            return 501, [("Public", _METHODS)], f"method {request.method} is not implemented; use {_METHODS}\n"
        given = request.headers.get("session", "").split(";")[0].strip()
        if request.method in ("GET_PARAMETER", "SET_PARAMETER") and not given:
            return 200, [], ""  # a keepalive before SETUP
        if not self.session_id:
            return 455, [], f"{request.method} before SETUP; send SETUP first\n"
        if given != self.session_id:
            return 454, [], f"session {given!r} is not this connection's session\n"
        if request.method == "PLAY":
            if not self.client.playing:
                self.client.playing, self.client.need_keyframe = True, True
            return 200, [("Range", "npt=now-")], ""
        if request.method == "PAUSE":
            self.client.playing = False
        return 200, [], ""

    def _setup(self, transport: str) -> tuple[int, list[tuple[str, str]], str]:
        spec = transport.split(",")[0]
        if "RTP/AVP/TCP" not in spec.upper():
            return 461, [("Content-Type", "text/plain")], (
                f"transport {spec!r} is not supported: this camera sends RTP over the RTSP connection only "
                "(RTP/AVP/TCP;unicast;interleaved=0-1); use rtsp_transport=tcp\n")
        if self.client.playing:
            return 455, [], "SETUP while playing; TEARDOWN first\n"
        # One track, and the same bytes go to every client: always channels 0-1, whatever was asked
        # (RFC 2326 12.39 lets the server choose; players read the channels from the answer).
        self.session_id = self.session_id or secrets.token_hex(8).upper()
        return 200, [("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")], ""
