"""The simulated H.264 camera over real sockets, read by clients nobody here wrote (PyAV's and Debian's
FFmpeg, ffprobe) and by a bare RTSP client for the faults, where timing must be exact.

Frame counters are read with `tests.h264_sei`, written from the documented SEI format and not from
the simulator's code.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import socket
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import av
import pytest

from hardware_sim.rtsp_camera import SimRtspCamera
from hardware_sim.site import SimSite
from station.config import load_site_config
from tests.h264_sei import FrameStamp, nal_units, sei_stamps, stamps_of

FPS = 10
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                  reason="Debian's ffmpeg/ffprobe not installed (make test installs them)")


@pytest.fixture
async def cam() -> AsyncIterator[SimRtspCamera]:
    async with SimRtspCamera("A01", "overview", fps=FPS) as camera:
        yield camera


# -- a bare RTSP client: only what the fault tests need ------------------------------------------


@dataclass
class Frame:
    stamp: FrameStamp
    rtp_timestamp: int
    keyframe: bool
    nal_types: list[int]


class BareRtsp:
    def __init__(self, url: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.url, self.reader, self.writer, self.cseq, self.session = url, reader, writer, 0, ""

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str, rcvbuf: int | None = None) -> AsyncIterator[BareRtsp]:
        host, port = url.split("/")[2].split(":")
        sock = socket.socket()
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        except BaseException:
            sock.close()
            raise
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            yield cls(url, reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def request(self, method: str, url: str, *headers: str) -> tuple[int, dict[str, str], str]:
        self.cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self.cseq}", *headers]
        if self.session:
            lines.append(f"Session: {self.session}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        async with asyncio.timeout(5):
            status = (await self.reader.readline()).decode()
            fields: dict[str, str] = {}
            while line := (await self.reader.readline()).decode().strip():
                name, _, value = line.partition(":")
                fields[name.lower()] = value.strip()
            body = await self.reader.readexactly(int(fields.get("content-length", "0")))
        assert fields["cseq"] == str(self.cseq)
        return int(status.split()[1]), fields, body.decode()

    async def play(self) -> None:
        assert (await self.request("DESCRIBE", self.url, "Accept: application/sdp"))[0] == 200
        status, fields, _ = await self.request("SETUP", f"{self.url}/trackID=0",
                                               "Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
        assert status == 200 and "interleaved=0-1" in fields["transport"]
        self.session = fields["session"].split(";")[0]
        assert (await self.request("PLAY", self.url))[0] == 200

    async def frame(self, timeout_s: float = 2.0) -> Frame:
        """The next access unit: the RTP packets up to the marker bit."""
        stamps: list[FrameStamp] = []
        types: list[int] = []
        async with asyncio.timeout(timeout_s):
            while True:
                head = await self.reader.readexactly(4)
                assert head[:2] == b"$\x00", head
                packet = await self.reader.readexactly(struct.unpack(">H", head[2:])[0])
                payload = packet[12:]
                kind = payload[0] & 0x1F
                if kind == 28 and payload[1] & 0x80:  # FU-A start: the fragmented NAL's type
                    types.append(payload[1] & 0x1F)
                elif kind != 28:
                    types.append(kind)
                stamps += sei_stamps(payload) if kind == 6 else []
                if packet[1] & 0x80:
                    assert len(stamps) == 1, f"one counter SEI per frame, got {stamps}"
                    return Frame(stamps[0], struct.unpack(">I", packet[4:8])[0], 5 in types, types)


# -- real clients ------------------------------------------------------------------------------


def _read_with_pyav(url: str, packets: int) -> tuple[str, int, int, list[tuple[FrameStamp, bool]], int]:
    """codec, width, height, (stamp, keyframe) per packet, frames decoded."""
    seen: list[tuple[FrameStamp, bool]] = []
    decoded = 0
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=5) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            (stamp,) = stamps_of(bytes(packet))
            seen.append((stamp, packet.is_keyframe))
            decoded += len(packet.decode())
            if len(seen) >= packets:
                break
        ctx = stream.codec_context
        return ctx.name, ctx.width, ctx.height, seen, decoded


def _assert_consecutive(counters: list[int]) -> None:
    gaps = [(a, b) for a, b in itertools.pairwise(counters) if b != a + 1]
    assert not gaps, f"frame counters must go up by one: jumps {gaps[:5]} in {counters}"


async def test_pyav_reads_720p_h264_with_a_keyframe_every_second(cam: SimRtspCamera) -> None:
    codec, width, height, seen, decoded = await asyncio.to_thread(_read_with_pyav, cam.url, 3 * FPS)
    assert (codec, width, height) == ("h264", 1280, 720)
    assert decoded == len(seen), "every packet decodes, the first one included"
    assert seen[0][1], "a client starts on a keyframe"
    keyframes = [i for i, (_, key) in enumerate(seen) if key]
    assert keyframes == list(range(0, len(seen), FPS)), "one keyframe a second (gop = fps)"
    _assert_consecutive([stamp.counter for stamp, _ in seen])


async def test_two_clients_see_the_same_counters_on_the_same_frames(cam: SimRtspCamera) -> None:
    first, second = await asyncio.gather(asyncio.to_thread(_read_with_pyav, cam.url, 2 * FPS),
                                         asyncio.to_thread(_read_with_pyav, cam.url, 2 * FPS))
    a = {stamp.counter: stamp.capture_utc_ns for stamp, _ in first[3]}
    b = {stamp.counter: stamp.capture_utc_ns for stamp, _ in second[3]}
    common = a.keys() & b.keys()
    assert len(common) >= FPS, f"the clients overlap on {len(common)} frames only"
    assert all(a[c] == b[c] for c in common), "the same frame carries the same capture time for both"
    for result in (first, second):
        _assert_consecutive([stamp.counter for stamp, _ in result[3]])


@needs_ffmpeg
async def test_ffmpeg_records_consecutive_counters_across_a_clip_loop(cam: SimRtspCamera, tmp_path: Path) -> None:
    out = tmp_path / "out.h264"
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", cam.url, "-c", "copy",
        "-t", "3", "-f", "h264", str(out), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    recorded = out.read_bytes()
    stamps = stamps_of(recorded)
    types = [nal[0] & 0x1F for nal in nal_units(recorded)]
    idrs = [i for i, kind in enumerate(types) if kind == 5]
    assert idrs and all(types[i - 3 : i] == [7, 8, 6] for i in idrs), f"SPS, PPS, SEI before every IDR: {types}"
    assert types.count(6) == types.count(5) + types.count(1), "one counter SEI per frame"
    assert len(stamps) >= 3 * FPS - 1 > 2 * FPS, f"{len(stamps)} frames: not past the 2 s clip loop"
    _assert_consecutive([s.counter for s in stamps])
    times = [s.capture_utc_ns for s in stamps]
    assert times == sorted(times) and abs(times[-1] / 1e9 - time.time()) < 30, "capture times: UTC, ascending"
    probe = await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-show_streams", "-of", "json", str(out), stdout=asyncio.subprocess.PIPE)
    shown, _ = await asyncio.wait_for(probe.communicate(), 30)
    (stream,) = json.loads(shown)["streams"]
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 1280, 720)


# -- faults ------------------------------------------------------------------------------------


async def test_freeze_stalls_the_stream_and_resume_continues_it(cam: SimRtspCamera) -> None:
    async with BareRtsp.connect(cam.url) as client:
        await client.play()
        first = await client.frame()
        assert first.keyframe and first.nal_types[:4] == [7, 8, 6, 5], "SPS, PPS, SEI, then the IDR slice"
        before = [first] + [await client.frame() for _ in range(3)]
        cam.freeze()
        with contextlib.suppress(TimeoutError):  # frames already queued may still arrive
            while True:
                before.append(await client.frame(timeout_s=0.3))
        with pytest.raises(TimeoutError):
            await client.frame(timeout_s=1.0)
        assert cam.clients == 1, "a frozen camera keeps the connection"
        frozen_at = time.monotonic()
        cam.resume()
        after = await client.frame()
        stalled_s = time.monotonic() - frozen_at
        assert after.stamp.counter == before[-1].stamp.counter + 1, "the counter counts frames sent: no gap"
        rtp_jump_s = (after.rtp_timestamp - before[-1].rtp_timestamp) / 90_000
        assert rtp_jump_s >= stalled_s, "RTP time ran on during the stall, as a camera's clock would"
        _assert_consecutive([f.stamp.counter for f in before])


async def test_drop_clients_closes_connections_and_new_ones_play(cam: SimRtspCamera) -> None:
    async with BareRtsp.connect(cam.url) as client:
        await client.play()
        await client.frame()
        await cam.drop_clients()
        with contextlib.suppress(ConnectionError):
            async with asyncio.timeout(2):
                while await client.reader.read(65536):
                    pass
        assert client.reader.at_eof() and cam.clients == 0
    async with BareRtsp.connect(cam.url) as again:
        await again.play()
        assert (await again.frame()).keyframe


async def test_refused_connections_fail_to_open_until_accepted_again(cam: SimRtspCamera) -> None:
    cam.refuse_connections(True)
    async with BareRtsp.connect(cam.url) as client:
        with contextlib.suppress(ConnectionError):
            async with asyncio.timeout(2):
                assert await client.reader.read(1) == b""
    with pytest.raises(av.error.FFmpegError):
        await asyncio.to_thread(_read_with_pyav, cam.url, 1)
    cam.refuse_connections(False)
    async with BareRtsp.connect(cam.url) as client:
        await client.play()
        assert (await client.frame()).keyframe


async def test_udp_setup_is_refused_with_461_and_a_reason(cam: SimRtspCamera) -> None:
    async with BareRtsp.connect(cam.url) as client:
        status, fields, _ = await client.request("OPTIONS", cam.url)
        assert status == 200 and "SETUP" in fields["public"]
        status, _, body = await client.request("SETUP", f"{cam.url}/trackID=0",
                                               "Transport: RTP/AVP;unicast;client_port=5000-5001")
        assert status == 461 and "RTP/AVP/TCP" in body
        status, _, body = await client.request("DESCRIBE", cam.url.replace("/main", "/nothing"))
        assert status == 404 and "/main" in body


async def test_a_client_that_does_not_read_loses_frames_and_stalls_no_one(cam: SimRtspCamera) -> None:
    async with BareRtsp.connect(cam.url, rcvbuf=4096) as slow, BareRtsp.connect(cam.url) as fast:
        await slow.play()
        await fast.play()
        frames = [await fast.frame() for _ in range(FPS)]
        deadline = time.monotonic() + 10
        while cam.frames_dropped == 0 and time.monotonic() < deadline:
            frames.append(await fast.frame())
        assert cam.frames_dropped > 0, "the slow client's queue never filled"
        _assert_consecutive([f.stamp.counter for f in frames])


# -- the simulated site --------------------------------------------------------------------------


async def test_sim_site_serves_each_camera_main_over_rtsp_and_sub_over_mjpeg() -> None:
    config = load_site_config("examples/site.yaml")
    configured = [(st.id, cam.id) for st in config.stations for cam in st.cameras]
    async with SimSite(config) as site:
        assert list(site.rtsp_cameras) == configured
        cameras = [e for e in site.endpoints() if "camera" in e]
        assert [(e["station"], e["camera"]) for e in cameras] == configured
        resolved = {(st.id, cam.id): cam for st in site.resolved_config().stations for cam in st.cameras}
        for e in cameras:
            key = (e["station"], e["camera"])
            assert set(e) == {"station", "camera", "url", "sub_url"}
            assert e["url"] == site.rtsp_cameras[key].url == resolved[key].url
            assert e["sub_url"] == site.cameras[key].sub_url == resolved[key].sub_url
        async with BareRtsp.connect(cameras[0]["url"]) as client:
            await client.play()
            assert (await client.frame()).keyframe
    async with SimSite(config, cameras=False) as bare:
        assert not bare.rtsp_cameras and not any("camera" in e for e in bare.endpoints())
