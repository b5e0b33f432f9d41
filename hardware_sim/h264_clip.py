"""The H.264 clip a simulated IP camera loops, and the frame-counter SEI it stamps on every frame.

Why a clip: encoding 720p live costs 6-15 % of a core per camera, too much for the 16-24 cameras of
a hall on a 2-core box. So each clip is encoded once with PyAV's libx264 (1280x720 by default, a
keyframe every second, no B-frames, `tune=zerolatency`, preset ultrafast), split into NAL units,
and looped by `hardware_sim.rtsp_camera` with stream copy. The clip is a whole number of GOPs, so
the loop restarts on an IDR frame and stays decodable forever. Clips are cached by (size, fps,
label): measured on the 2-core box, one 2 s 720p10 clip costs ~0.08 s of one core to paint and
encode, and `SimRtspCamera` x 24 with a labelled clip each start in ~1.8 s (unlabelled: one encode
shared by all, ~0.1 s).

Frame-counter SEI (tests and `docs/evidence.md` rely on this exact format). Every frame a camera
sends is preceded, after its SPS/PPS if any and before its slice NAL units, by one SEI NAL unit:

    NAL header      0x06 (forbidden_zero_bit 0, nal_ref_idc 0, nal_unit_type 6 = SEI)
    payload type    0x05 (user_data_unregistered)
    payload size    0x20 (32 bytes)
    payload         16-byte UUID e5a7c3f0-6a1b-4d3e-9f2a-0c1b2d3e4f50
                    frame counter, 8 bytes big-endian unsigned: 0 for the camera's first frame sent,
                    +1 per frame sent, continuing across clip loops and client changes
                    capture time, 8 bytes big-endian unsigned: UTC nanoseconds since the Unix epoch
    rbsp trailing   0x80

Emulation-prevention bytes (0x03 after two zero bytes when the next byte is <= 0x03) are inserted
into everything after the NAL header, so a reader must remove them before reading the payload.
The encoder's own SEI (x264's version string) is dropped from the clip: the only SEI on the wire is
the counter. Everything here is blocking CPU work: call `load_clip` off the event loop.
"""

from __future__ import annotations

import functools
import re
import struct
import threading
import uuid
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

import av
import cv2
import numpy as np

from hardware_sim.frame_painter import Image

SEI_UUID: Final = uuid.UUID("e5a7c3f0-6a1b-4d3e-9f2a-0c1b2d3e4f50")
NAL_SLICE: Final = 1
NAL_IDR: Final = 5
NAL_SEI: Final = 6
NAL_SPS: Final = 7
NAL_PPS: Final = 8
_SEI_USER_DATA_UNREGISTERED: Final = 5
_START_CODE: Final = re.compile(b"\x00\x00\x01")
_EMULATION: Final = re.compile(b"\x00\x00(?=[\x00-\x03])")
_CLIP_SECONDS: Final = 2
_cache_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class ClipFrame:
    """One access unit of the clip, without parameter sets or SEI (the sender adds those)."""

    keyframe: bool
    nals: tuple[bytes, ...]
    """Slice NAL units, each without start code."""


@dataclass(frozen=True, slots=True)
class H264Clip:
    """An encoded clip: parameter sets and frames, a whole number of one-second GOPs."""

    width: int
    height: int
    fps: int
    sps: bytes
    pps: bytes
    frames: tuple[ClipFrame, ...]

    @property
    def profile_level_id(self) -> str:
        """The SDP `profile-level-id`: profile_idc, constraint flags and level_idc of the SPS, in hex."""
        return self.sps[1:4].hex().upper()


def sei_nal(counter: int, capture_utc_ns: int) -> bytes:
    """The frame-counter SEI NAL unit (no start code) of the format in the module docstring."""
    payload = SEI_UUID.bytes + struct.pack(">QQ", counter, capture_utc_ns)
    rbsp = bytes((_SEI_USER_DATA_UNREGISTERED, len(payload))) + payload + b"\x80"
    return bytes((NAL_SEI,)) + escape_rbsp(rbsp)


def escape_rbsp(rbsp: bytes) -> bytes:
    """Insert emulation-prevention bytes (H.264 7.4.1): 00 00 0x (x <= 3) becomes 00 00 03 0x."""
    return _EMULATION.sub(b"\x00\x00\x03", rbsp)


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex-B byte stream, without start codes or trailing zero bytes."""
    found = list(_START_CODE.finditer(data))
    starts = [m.end() for m in found]
    ends = [*(m.start() for m in found[1:]), len(data)]
    return [nal for s, e in zip(starts, ends, strict=True) if (nal := data[s:e].rstrip(b"\x00"))]


def load_clip(size: tuple[int, int] = (1280, 720), fps: int = 10, label: str | None = None) -> H264Clip:
    """The clip for this size, frame rate and painted label, encoded on first use then shared.

    `label=None` gives one clip shared by every camera of that size and rate (the cheapest start);
    a label paints e.g. the station and camera on the clip, one encode per camera. Thread-safe.
    """
    width, height = size
    if not 1 <= fps <= 30:
        raise ValueError(f"h264 clip: fps={fps} is out of range; use 1 <= fps <= 30 (cameras send 10-15)")
    if width % 2 or height % 2 or width < 64 or height < 64:
        raise ValueError(f"h264 clip: size {width}x{height} must be even and at least 64x64 (4:2:0 video)")
    with _cache_lock:
        return _encode(width, height, fps, label)


@functools.cache
def _encode(width: int, height: int, fps: int, label: str | None) -> H264Clip:
    codec = av.CodecContext.create("libx264", "w")
    assert isinstance(codec, av.VideoCodecContext)
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base, codec.framerate = Fraction(1, fps), Fraction(fps)
    codec.gop_size, codec.max_b_frames = fps, 0
    codec.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "x264-params": f"keyint={fps}:min-keyint={fps}:scenecut=0:repeat-headers=1:sliced-threads=0",
        "threads": "1",
    }
    painter = _ClipPainter(width, height, label)
    packets = []
    for index in range(fps * _CLIP_SECONDS):
        frame = av.VideoFrame.from_ndarray(painter.paint(index, fps * _CLIP_SECONDS), format="yuv420p")
        frame.pts = index
        packets.extend(codec.encode(frame))
    packets.extend(codec.encode(None))
    sps = pps = b""
    frames = []
    for packet in packets:
        nals = split_annexb(bytes(packet))
        for nal in nals:
            if nal[0] & 0x1F == NAL_SPS:
                sps = sps or nal
            elif nal[0] & 0x1F == NAL_PPS:
                pps = pps or nal
        slices = tuple(nal for nal in nals if nal[0] & 0x1F in (NAL_SLICE, NAL_IDR))
        frames.append(ClipFrame(keyframe=any(n[0] & 0x1F == NAL_IDR for n in slices), nals=slices))
    if not sps or not pps or len(frames) != fps * _CLIP_SECONDS or not frames[0].keyframe:
        raise RuntimeError(f"h264 clip {width}x{height}@{fps}: libx264 gave {len(frames)} frames without "
                           "SPS/PPS or a leading IDR; check the PyAV build (needs libx264)")
    return H264Clip(width, height, fps, sps, pps, tuple(frames))


class _ClipPainter:
    """Frames with enough structure and motion for real P-frames: a gradient with a grid like the
    MJPEG camera's, a moving bar, the label and the loop position (the live counter is in the SEI,
    not painted: a looped picture cannot show it).

    Painted straight in YUV 4:2:0, the static part once: painting BGR frames and converting each
    cost more than encoding them, and every labelled camera of a site pays this at start."""

    def __init__(self, width: int, height: int, label: str | None) -> None:
        rows = np.linspace(40, 110, height, dtype=np.float32)[:, None]
        cols = np.linspace(0, 60, width, dtype=np.float32)[None, :]
        bgr = np.zeros((height, width, 3), dtype=np.uint8)
        bgr[:, :, 0], bgr[:, :, 1], bgr[:, :, 2] = rows + cols, rows * 0.6, cols * 0.5 + 20
        step = max(16, width // 16)
        bgr[:, ::step] = bgr[::step, :] = (90, 90, 90)
        self._line_h = line_h = max(12, height // 12)
        bgr[: line_h * 4, :] = (70, 45, 30)
        bgr[height - line_h :, :] = (30, 30, 30)
        self._scale, self._thick = max(0.4, height / 720 * 1.1), max(1, round(height / 360))
        title = (label or "simulated H.264 camera").encode("ascii", "replace").decode("ascii")
        for row, text in ((0, title), (2, "frame counter and capture time: SEI user data")):
            self._text(bgr, text, row)
        self._base = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420), dtype=np.uint8)
        self._width, self._height = width, height

    def _text(self, image: Image, text: str, row: int) -> None:
        origin = (self._line_h // 2, self._line_h * (row + 1))
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, self._scale, (255, 255, 255), self._thick,
                    cv2.LINE_AA)

    def paint(self, index: int, count: int) -> Image:
        """Frame `index` of `count` as one yuv420p plane stack (height * 3 / 2 rows)."""
        width, height, line_h = self._width, self._height, self._line_h
        image = self._base.copy()
        luma = image[:height]
        chroma_u = image[height : height + height // 4].reshape(height // 2, width // 2)
        chroma_v = image[height + height // 4 :].reshape(height // 2, width // 2)
        bar_w = max(8, width // 20)
        x0 = index * (width - bar_w) // max(1, count - 1) // 2 * 2
        top, bottom = line_h * 4 // 2 * 2, (height - line_h) // 2 * 2
        luma[top:bottom, x0 : x0 + bar_w] = 180  # the bar: yellow-orange, as (40, 200, 240) BGR
        chroma_u[top // 2 : bottom // 2, x0 // 2 : (x0 + bar_w) // 2] = 44
        chroma_v[top // 2 : bottom // 2, x0 // 2 : (x0 + bar_w) // 2] = 160
        self._text(luma, f"H.264 loop frame {index + 1:02d}/{count}", 1)
        return image
