"""The live hub: what the proctor UI shows live, with one upstream connection per camera stream.

Why a hub: a hall page shows every station's tile and several people watch at once; cameras serve
few connections and decoding or encoding per viewer does not scale (LIBRARY-NOTES "Video"). So the
hub opens each camera stream once, on its first viewer, hands the same bytes to every viewer, and
closes it `linger_s` after the last viewer leaves: no work at all when nobody watches.

- `mjpeg(station, camera)`: hall tiles. The camera's MJPEG sub-stream (`sub_urls`), or its main
  stream when that is MJPEG over HTTP and there is no sub-stream; `stream="main"` for the station
  page of an MJPEG camera. JPEG bytes as the camera sent them (`mjpeg_parts` gives them as parts of
  `MJPEG_CONTENT_TYPE`, ready for an HTTP response); each viewer queues `mjpeg_queue_frames` (2)
  and loses the oldest when behind.
- `fmp4(station, camera)`: the station page. The camera's H.264 RTSP main stream remuxed into
  fragmented MP4 for Media Source Extensions: `Fmp4Chunk`s, the init segment first (its `codec`
  and `mime_type` for `MediaSource.isTypeSupported`), then fragments from a keyframe.

Upstreams are keyed by URL, so two views of the same stream (a tile falling back to an MJPEG main
stream, and the station page on that main stream) share one connection.

Both return a subscription: iterate it inside `async with` (or call `aclose()`); iteration raises
`LiveStreamLost` where the upstream failed and resumes after the reconnect if iterated again.
Devices only: nothing here knows stations' attempts or the UI.

In a web handler (FastAPI/Starlette), roughly:

    async def tile(station, camera):                       # StreamingResponse
        async with hub.mjpeg_parts(station, camera) as parts:
            async for part in parts:
                yield part                                 # media_type=MJPEG_CONTENT_TYPE

    async def player(ws, station, camera):                  # WebSocket
        async with hub.fmp4(station, camera) as chunks:
            while True:
                try:
                    async for chunk in chunks:
                        if chunk.kind == "init":
                            await ws.send_text(chunk.mime_type)   # browser: (re)create its SourceBuffer
                        await ws.send_bytes(chunk.data)
                except LiveStreamLost as lost:
                    await ws.send_text(f"lost: {lost}")           # show it; the loop resumes after reconnect
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self

from devices.camera.contract import CameraSource
from devices.camera.live_fanout import LiveStreamLost, LiveStreamStats, LiveViewUnavailable, redact
from devices.camera.live_fmp4 import Fmp4Subscription, Fmp4Upstream
from devices.camera.live_fmp4_box import Fmp4Chunk
from devices.camera.live_fmp4_tap import TappedFmp4Upstream
from devices.camera.live_mjpeg import MJPEG_CONTENT_TYPE, JpegView, MjpegSubscription, MjpegUpstream
from devices.camera.reader import CameraReader
from devices.errors import DeviceConfigError

__all__ = ["MJPEG_CONTENT_TYPE", "Fmp4Chunk", "JpegView", "LiveCameraStats", "LiveHub", "LiveStreamLost",
           "LiveStreamStats", "LiveViewUnavailable"]

logger = logging.getLogger(__name__)

StreamKind = Literal["main", "sub"]
ReaderOf = Callable[[str, str], CameraReader | None]
"""(station, camera) -> the recorder's running reader of that camera's main stream, if recorded."""


@dataclass(frozen=True, slots=True)
class LiveCameraStats:
    """One camera's live views at one moment, keyed "mjpeg sub", "mjpeg main", "fmp4 main", "fmp4 sub"
    (only views whose stream has been opened; two views on one URL show the same upstream)."""

    camera: str
    views: dict[str, LiveStreamStats]

    @property
    def mjpeg(self) -> LiveStreamStats | None:
        """The tile stream."""
        return self.views.get("mjpeg sub")

    @property
    def fmp4(self) -> LiveStreamStats | None:
        """The H.264 main stream as fMP4."""
        return self.views.get("fmp4 main")


def _is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def _is_rtsp(url: str) -> bool:
    return url.startswith(("rtsp://", "rtsps://"))


class LiveHub:
    """Live views of `sources`; `sub_urls` maps (station, camera) to the camera's sub-stream URL.

    `linger_s`: how long an upstream stays open after its last viewer leaves. `stall_s`: a stream
    silent this long is lost (viewers told, reconnect). Reconnects back off from
    `backoff_initial_s` doubling to `backoff_max_s`, jittered. `readers`: where the recorder reads a
    camera's main stream, the fMP4 view takes its packets from there instead of a connection of its
    own (`live_fmp4_tap`). Must be used on one event loop;
    `aclose()` (or `async with`) ends every subscription and stops every connection and thread.
    """

    def __init__(self, sources: Sequence[CameraSource], sub_urls: Mapping[tuple[str, str], str] | None = None, *,
                 linger_s: float = 5.0, stall_s: float = 5.0, connect_timeout_s: float = 5.0,
                 backoff_initial_s: float = 0.5, backoff_max_s: float = 15.0, mjpeg_queue_frames: int = 2,
                 fmp4_queue_fragments: int = 50, snapshot_max_age_s: float = 5.0,
                 readers: ReaderOf | None = None) -> None:
        self._sources: dict[tuple[str, str], CameraSource] = {}
        for source in sources:
            key = (source.station, source.camera)
            if key in self._sources:
                raise DeviceConfigError(f"live hub: camera {source.label} is listed twice; give each camera of a "
                                        "station its own id")
            self._sources[key] = source
        self._sub_urls = dict(sub_urls or {})
        unknown = sorted(f"{station}/{camera}" for station, camera in self._sub_urls if (station, camera)
                         not in self._sources)
        if unknown:
            raise DeviceConfigError(f"live hub: sub-stream URLs given for cameras {unknown} that are not among the "
                                    "cameras; check the station and camera ids")
        for name, value in (("linger_s", linger_s), ("stall_s", stall_s), ("connect_timeout_s", connect_timeout_s),
                            ("backoff_initial_s", backoff_initial_s), ("snapshot_max_age_s", snapshot_max_age_s)):
            if not value > 0:
                raise DeviceConfigError(f"live hub: {name}={value} must be above 0")
        if backoff_max_s < backoff_initial_s:
            raise DeviceConfigError(f"live hub: backoff_max_s={backoff_max_s} is below "
                                    f"backoff_initial_s={backoff_initial_s}")
        if mjpeg_queue_frames < 1 or fmp4_queue_fragments < 1:
            raise DeviceConfigError("live hub: mjpeg_queue_frames and fmp4_queue_fragments must be at least 1")
        self._timing = {"linger_s": linger_s, "backoff_initial_s": backoff_initial_s, "backoff_max_s": backoff_max_s,
                        "stall_s": stall_s, "connect_timeout_s": connect_timeout_s}
        self._mjpeg_queue_frames = mjpeg_queue_frames
        self._fmp4_queue_fragments = fmp4_queue_fragments
        self._snapshot_max_age_s = snapshot_max_age_s
        self._readers = readers
        self._mjpeg: dict[str, MjpegUpstream] = {}
        self._fmp4: dict[str, Fmp4Upstream] = {}
        """Upstreams by URL: views of one stream share its connection."""
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- what the UI asks for ------------------------------------------------------------------

    def mjpeg(self, station: str, camera: str, stream: StreamKind = "sub") -> JpegView:
        """Subscribe to the camera's MJPEG stream (the tile stream by default); iterating gives JPEG bytes."""
        return JpegView(self._mjpeg_subscription(station, camera, stream), parts=False)

    def mjpeg_parts(self, station: str, camera: str, stream: StreamKind = "sub") -> JpegView:
        """As `mjpeg`, each JPEG as a ready part of a `MJPEG_CONTENT_TYPE` response body (built once for
        all viewers)."""
        return JpegView(self._mjpeg_subscription(station, camera, stream), parts=True)

    def fmp4(self, station: str, camera: str, stream: StreamKind = "main") -> Fmp4Subscription:
        """Subscribe to the camera's H.264 stream as fragmented MP4: the init segment, then fragments
        starting at a keyframe. `stream="sub"` uses the sub-stream when that is RTSP H.264."""
        source = self._source(station, camera)
        url = self.fmp4_url(station, camera, stream)
        if url is None:
            given = source.url if stream == "main" else self._sub_urls.get((station, camera))
            what = f"its {stream} stream is {redact(given)}" if given else f"it has no {stream}-stream URL"
            raise LiveViewUnavailable(
                f"live view of camera {source.label}: fragmented MP4 needs an H.264 RTSP stream, but {what}; "
                "watch its MJPEG view instead (hub.mjpeg), or configure the camera to send H.264 over RTSP")
        upstream = self._fmp4.get(url)
        if upstream is None and stream == "main" and self._readers is not None:
            readers = self._readers
            upstream = self._fmp4[url] = TappedFmp4Upstream(source.label, url, lambda: readers(station, camera),
                                                            **self._timing)
        elif upstream is None:
            upstream = self._fmp4[url] = Fmp4Upstream(source.label, url, **self._timing)
        sub = Fmp4Subscription(upstream, self._fmp4_queue_fragments)
        upstream.add(sub)
        return sub

    def fmp4_codec(self, station: str, camera: str, stream: StreamKind = "main") -> str | None:
        """The RFC 6381 codec string of the stream's current init segment (e.g. "avc1.42C01F"); None
        until a connection has produced one (the init chunk carries it as well)."""
        url = self.fmp4_url(station, camera, stream)
        upstream = None if url is None else self._fmp4.get(url)
        return None if upstream is None or upstream.init is None else upstream.init.codec

    def latest_jpeg(self, station: str, camera: str) -> bytes | None:
        """The camera's newest JPEG from a watched MJPEG stream (main preferred, being larger) if it
        arrived within `snapshot_max_age_s`; None when nobody watches and nothing is recent. Never
        opens a connection."""
        for stream in ("main", "sub"):
            url = self.mjpeg_url(station, camera, stream)
            upstream = None if url is None else self._mjpeg.get(url)
            jpeg = None if upstream is None else upstream.latest_jpeg(self._snapshot_max_age_s)
            if jpeg is not None:
                return jpeg
        return None

    def mjpeg_url(self, station: str, camera: str, stream: StreamKind = "sub") -> str | None:
        """The URL an MJPEG view reads, None if the camera has none: for "sub", the sub-stream, or the
        main stream when it is MJPEG and there is no sub-stream; for "main", the main stream if MJPEG."""
        source = self._source(station, camera)
        sub_url = self._sub_urls.get((station, camera))
        url = sub_url if stream == "sub" and sub_url is not None else source.url
        return url if _is_http(url) else None

    def fmp4_url(self, station: str, camera: str, stream: StreamKind = "main") -> str | None:
        """The RTSP URL an fMP4 view reads, None if that stream is not RTSP."""
        source = self._source(station, camera)
        url = source.url if stream == "main" else self._sub_urls.get((station, camera), "")
        return url if _is_rtsp(url) else None

    def stats(self) -> dict[str, LiveCameraStats]:
        """Per camera (`station/camera`): upstream connections opened, viewers, frames and bytes relayed,
        per view whose stream has been opened."""
        result: dict[str, LiveCameraStats] = {}
        for (station, camera), source in self._sources.items():
            views: dict[str, LiveStreamStats] = {}
            for stream in ("sub", "main"):
                url = self.mjpeg_url(station, camera, stream)
                if url is not None and url in self._mjpeg:
                    views[f"mjpeg {stream}"] = self._mjpeg[url].stats()
                url = self.fmp4_url(station, camera, stream)
                if url is not None and url in self._fmp4:
                    views[f"fmp4 {stream}"] = self._fmp4[url].stats()
            result[source.label] = LiveCameraStats(source.label, views)
        return result

    async def aclose(self) -> None:
        """End every subscription (StopAsyncIteration) and stop every upstream connection and thread.

        Returns once every remux thread has ended: at most `stall_s` (a thread in a read) or
        `connect_timeout_s` (a thread still connecting), as PyAV's blocking calls cannot be interrupted."""
        self._closed = True
        upstreams: list[MjpegUpstream | Fmp4Upstream] = [*self._mjpeg.values(), *self._fmp4.values()]
        for upstream in upstreams:
            await upstream.aclose()

    # -- internals -----------------------------------------------------------------------------

    def _source(self, station: str, camera: str) -> CameraSource:
        if self._closed:
            raise LiveViewUnavailable(f"live view of camera {station}/{camera}: the live hub is closed")
        source = self._sources.get((station, camera))
        if source is None:
            known = ", ".join(s.label for s in self._sources.values()) or "none"
            raise LiveViewUnavailable(f"live view: no camera {station}/{camera} (cameras: {known})")
        return source

    def _mjpeg_subscription(self, station: str, camera: str, stream: StreamKind) -> MjpegSubscription:
        source = self._source(station, camera)
        url = self.mjpeg_url(station, camera, stream)
        if url is None:
            raise LiveViewUnavailable(
                f"live view of camera {source.label}: no MJPEG {stream} stream to relay (main stream "
                f"{redact(source.url)}, sub-stream {redact(self._sub_urls.get((station, camera), 'none'))}); the "
                "hub never transcodes: set the camera's sub-stream to MJPEG over HTTP and give its URL, or use "
                "the fMP4 view")
        upstream = self._mjpeg.get(url)
        if upstream is None:
            upstream = self._mjpeg[url] = MjpegUpstream(source.label, url, **self._timing)
        sub = MjpegSubscription(upstream, self._mjpeg_queue_frames)
        upstream.add(sub)
        return sub
