"""One camera stream sampled for the site check: what arrives over a few seconds, measured, not assumed.

Blocking PyAV work: run `sample_stream` on a thread. It opens the stream the way the recorder does
(`devices.camera.reader.open_options`: RTSP over TCP, minimal probing, FFmpeg's socket timeout) and
reads packets only (no decoding) for `sample_s`, then keeps reading until it has seen two keyframes
or `MAX_KEYFRAME_INTERVAL_S` passed without one, so a keyframe interval up to that limit is measured
whatever the sample time. One keyframe is decoded, for the resolution the picture really has and
for the report's snapshot.

What it tells apart, because a person fixes each differently:
- missing: nothing answers at the URL's host and port (a TCP connect first, so an unreachable
  camera is not mistaken for a hung one), or the camera answers 404 for the path;
- frozen: the camera accepts the connection (RTSP answers DESCRIBE and PLAY, HTTP answers 200) but
  no frame comes for `stall_s`, or frames stop during the sample (a hung encoder keeps its RTSP
  session and sends nothing), or every frame is byte-identical (a stuck MJPEG encoder repeating one
  picture; a real sensor's noise makes two JPEGs differ). Identical H.264 frames are not looked for:
  a camera that repeats a picture still sends an IDR and small P-frames, and a looped clip repeats
  IDRs byte for byte;
- failed: anything else the stream answered (401, not video, ended).
Frame rate comes from the presentation timestamps when the stream has real ones (RTSP's 90 kHz RTP
clock), from arrival times for MJPEG over HTTP (whose timestamps are invented).
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlsplit

import av
import cv2
import numpy as np
from av.container import InputContainer
from av.packet import Packet
from av.video.stream import VideoStream

from devices.camera.reader import describe, open_options

MAX_KEYFRAME_INTERVAL_S: Final = 4.0
"""Recordings cut segments at keyframes: a longer interval makes segments overrun and loses more at a cut."""
SNAPSHOT_MAX_WIDTH: Final = 960
"""Snapshots are for a printed report: wide enough to see the station, small enough to embed."""
_DEFAULT_PORTS: Final = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}

Outcome = Literal["ok", "missing", "frozen", "failed"]


@dataclass(frozen=True, slots=True)
class StreamSample:
    """What one stream delivered; `reason` says in words what went wrong when `outcome` is not ok."""

    url: str
    outcome: Outcome
    reason: str = ""
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    frames: int = 0
    keyframes: int = 0
    fps: float | None = None
    keyframe_interval_s: float | None = None
    """The longest interval between two keyframes seen; None with fewer than two."""
    bitrate_kbps: float | None = None
    sampled_s: float = 0.0
    snapshot: bytes | None = None

    @property
    def resolution(self) -> str | None:
        return f"{self.width}x{self.height}" if self.width and self.height else None


def reachable(url: str, timeout_s: float) -> str | None:
    """None when something accepts a TCP connection at the URL's host and port, else why not."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return f"{url} has no valid port"
    where = f"{parts.hostname}:{port}"
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            return None
    except socket.gaierror as err:
        return f"cannot resolve {parts.hostname} ({err.strerror})"
    except ConnectionRefusedError:
        return f"nothing listens on {where} (connection refused)"
    except TimeoutError:
        return f"{where} does not answer within {timeout_s:g} s (unreachable)"
    except OSError as err:
        return f"cannot connect to {where} ({err.strerror or err})"


def sample_stream(url: str, sample_s: float, stop: threading.Event, *, connect_timeout_s: float = 5.0,
                  stall_s: float = 2.0, snapshot: bool = True) -> StreamSample:
    """Read the stream at `url` for `sample_s` (longer for a keyframe, see the module docstring)."""
    if (unreachable := reachable(url, connect_timeout_s)) is not None:
        return StreamSample(url, "missing", unreachable)
    path, fmt, options = open_options(url, stall_s)
    try:
        container = av.open(path, format=fmt, options=options, timeout=(connect_timeout_s, stall_s))
    except av.HTTPNotFoundError:
        return StreamSample(url, "missing", f"{url} answers 404 Not Found: the camera has no stream at that path")
    except (av.ExitError, TimeoutError):
        return StreamSample(url, "frozen", f"{url} accepts the connection but sends no video for {stall_s:g} s")
    except (OSError, av.FFmpegError) as err:
        return StreamSample(url, "failed", f"cannot open {url}: {describe(err)}")
    try:
        if not container.streams.video:
            return StreamSample(url, "failed", f"{url} has no video stream")
        return _Reading(url, container, container.streams.video[0], wall_clock=fmt == "mpjpeg").run(
            sample_s, stop, stall_s, snapshot)
    finally:
        container.close()


class _Reading:
    """One connection's packets, as they come."""

    def __init__(self, url: str, container: InputContainer, stream: VideoStream, *, wall_clock: bool) -> None:
        self.url, self.container, self.stream, self.wall_clock = url, container, stream, wall_clock
        self.arrivals_s: list[float] = []
        self.pts_s: list[float] = []
        self.keyframe_indices: list[int] = []
        self.bytes = 0
        self.digests: set[bytes] = set()
        self.width: int | None = None
        self.height: int | None = None
        self.jpeg: bytes | None = None

    def run(self, sample_s: float, stop: threading.Event, stall_s: float, snapshot: bool) -> StreamSample:
        started = returned = time.monotonic()
        ended = ""
        try:
            for packet in self.container.demux(self.stream):
                now = time.monotonic()
                # A read that lasted the whole read timeout was interrupted, and FFmpeg's RTSP demuxer then
                # hands out the frame it held back (see devices.camera.reader): the camera went silent.
                silent = bool(self.arrivals_s) and now - returned >= stall_s * 0.95
                returned = now
                if packet.size == 0:
                    continue
                self._take(packet, now - started, snapshot)
                if silent:
                    ended = f"no frame for {stall_s:g} s"
                    break
                if stop.is_set() or self._enough(now - started, sample_s):
                    break
            else:
                ended = f"the stream ended after {len(self.arrivals_s)} frames"
        except (av.ExitError, TimeoutError):
            ended = f"no frame for {stall_s:g} s"
        except (OSError, av.FFmpegError) as err:
            ended = f"the stream failed: {describe(err)}"
        return self._result(time.monotonic() - started, ended)

    def _enough(self, elapsed_s: float, sample_s: float) -> bool:
        if elapsed_s < sample_s:
            return False
        if len(self.keyframe_indices) >= 2:
            return True
        last_keyframe_s = self.arrivals_s[self.keyframe_indices[-1]] if self.keyframe_indices else 0.0
        return elapsed_s - last_keyframe_s > MAX_KEYFRAME_INTERVAL_S + 0.5

    def _take(self, packet: Packet[VideoStream], now: float, snapshot: bool) -> None:
        data = bytes(packet)
        if len(self.arrivals_s) < 64:
            self.digests.add(hashlib.blake2b(data, digest_size=16).digest())
        if packet.is_keyframe:
            self.keyframe_indices.append(len(self.arrivals_s))
            if self.width is None:
                self._decode(packet, snapshot)
        self.arrivals_s.append(now)
        if packet.pts is not None and packet.time_base is not None:
            self.pts_s.append(float(packet.pts * packet.time_base))
        self.bytes += len(data)

    def _decode(self, packet: Packet[VideoStream], snapshot: bool) -> None:
        """The picture of one keyframe: its real size, and the JPEG snapshot (a fresh decoder, flushed,
        so the frame comes out now rather than after the decoder's thread delay)."""
        source = self.stream.codec_context
        decoder = av.CodecContext.create(source.name, "r")
        assert isinstance(decoder, av.VideoCodecContext)
        if source.extradata:
            decoder.extradata = source.extradata
        try:
            frames = [*decoder.decode(packet), *decoder.decode(None)]
        except av.FFmpegError:
            return  # not decodable alone (e.g. SPS only in a later packet): the next keyframe is tried
        if not frames:
            return
        picture = frames[0]
        self.width, self.height = picture.width, picture.height
        if snapshot:
            image = picture.to_ndarray(format="bgr24")
            if picture.width > SNAPSHOT_MAX_WIDTH:
                size = (SNAPSHOT_MAX_WIDTH, round(picture.height * SNAPSHOT_MAX_WIDTH / picture.width))
                image = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
            if ok:
                self.jpeg = jpeg.tobytes()

    def _fps(self) -> float | None:
        """Frames per second over the sample: timestamps if real, else arrivals."""
        times = self.arrivals_s if self.wall_clock or len(self.pts_s) < 2 else self.pts_s
        span = times[-1] - times[0] if len(times) >= 2 else 0.0
        return (len(times) - 1) / span if span > 0 else None

    def _result(self, sampled_s: float, ended: str) -> StreamSample:
        frames = len(self.arrivals_s)
        fps = self._fps()
        gaps = [b - a for a, b in zip(self.keyframe_indices, self.keyframe_indices[1:], strict=False)]
        interval = max(gaps) / fps if gaps and fps else None
        bitrate = self.bytes * 8 / (frames / fps) / 1000 if fps and frames else None
        codec = self.stream.codec_context.name
        width = self.width or self.stream.codec_context.width or None
        height = self.height or self.stream.codec_context.height or None
        outcome: Outcome = "ok"
        reason = ""
        if frames == 0:
            outcome, reason = "frozen", f"{self.url} accepts the connection but sends no frame: {ended}"
        elif ended.startswith("no frame"):
            outcome, reason = "frozen", f"{frames} frames came, then {ended}"
        elif ended:
            outcome, reason = "failed", ended
        elif frames >= 3 and len(self.digests) == 1:
            outcome, reason = "frozen", f"the same picture, byte for byte, in all {frames} frames"
        return StreamSample(
            self.url, outcome, reason, codec=codec, width=width, height=height, frames=frames,
            keyframes=len(self.keyframe_indices), fps=round(fps, 2) if fps else None,
            keyframe_interval_s=round(interval, 2) if interval else None,
            bitrate_kbps=round(bitrate, 1) if bitrate else None, sampled_s=round(sampled_s, 2), snapshot=self.jpeg)
