"""Frames of the simulated station camera: what a person sees and what a test can read back.

A real exam-hall camera films a candidate; the simulator has nothing to film, so it paints a frame
that proves the video pipeline is alive and in order. Every frame shows the station id, the camera
id, the wall-clock capture time with milliseconds and a frame counter as text for a person, a bar
that moves from frame to frame so motion (and a frozen picture) is visible at a glance, and the
same counter and time as a strip of black and white cells at the bottom ("frame mark") that
`read_frame_mark` decodes after JPEG compression, resizing by an MJPEG relay or a recorder
round-trip. Tests use the mark to check order, gaps and video offsets without OCR.

Everything here is blocking CPU work (numpy, cv2): callers run it on a worker thread, never on an
event loop. A `FramePainter` is immutable after construction and safe to share between threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]

MARK_COLUMNS: Final = 32
MARK_ROWS: Final = 3
_COUNTER_BITS: Final = 32
_TIME_BITS: Final = 48
_CHECK_BITS: Final = 16
_JPEG_QUALITY: Final = 80


class FrameMarkError(ValueError):
    """The frame carries no readable frame mark (not from the simulator, cropped or too damaged)."""


@dataclass(frozen=True, slots=True)
class FrameMark:
    """What the mark strip of one simulated frame says."""

    counter: int
    """Frame number within its stream, from 0, modulo 2**32."""
    timestamp_ms: int
    """Wall-clock capture time, milliseconds since the Unix epoch."""


def _check_word(counter: int, timestamp_ms: int) -> int:
    mixed = (counter * 40503) ^ timestamp_ms ^ (timestamp_ms >> 16) ^ (timestamp_ms >> 32)
    return (mixed ^ (mixed >> 16)) & 0xFFFF


def _mark_bits(mark: FrameMark) -> list[int]:
    counter = mark.counter & 0xFFFF_FFFF
    timestamp_ms = mark.timestamp_ms & 0xFFFF_FFFF_FFFF
    word = (counter << (_TIME_BITS + _CHECK_BITS)) | (timestamp_ms << _CHECK_BITS) | _check_word(counter, timestamp_ms)
    total = MARK_COLUMNS * MARK_ROWS
    return [(word >> (total - 1 - i)) & 1 for i in range(total)]


def _mark_cells(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) of each mark cell, in bit order: proportional to the frame width, so the
    mark survives any uniform resize of the frame."""
    cell_h = width / (MARK_COLUMNS * 1.5)
    cells = []
    for row in range(MARK_ROWS):
        y0 = height - round((MARK_ROWS - row) * cell_h)
        y1 = height - round((MARK_ROWS - row - 1) * cell_h)
        for column in range(MARK_COLUMNS):
            x0 = round(column * width / MARK_COLUMNS)
            x1 = round((column + 1) * width / MARK_COLUMNS)
            cells.append((x0, y0, x1, y1))
    return cells


def read_frame_mark(image: Image) -> FrameMark:
    """Decode the frame mark of a BGR or grey frame painted by `FramePainter`.

    Raises FrameMarkError when the strip is missing or its check word does not match.
    """
    if image.ndim == 3:
        grey: Image = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    else:
        grey = image
    height, width = grey.shape[:2]
    if width < MARK_COLUMNS * 2 or height < width / 8:
        raise FrameMarkError(f"frame {width}x{height} is too small to carry a frame mark")
    word = 0
    for x0, y0, x1, y1 in _mark_cells(width, height):
        dx, dy = (x1 - x0) // 4, (y1 - y0) // 4
        centre = grey[y0 + dy : max(y0 + dy + 1, y1 - dy), x0 + dx : max(x0 + dx + 1, x1 - dx)]
        word = (word << 1) | int(float(centre.mean()) >= 128.0)
    check = word & 0xFFFF
    timestamp_ms = (word >> _CHECK_BITS) & 0xFFFF_FFFF_FFFF
    counter = word >> (_TIME_BITS + _CHECK_BITS)
    if check != _check_word(counter, timestamp_ms):
        raise FrameMarkError(
            f"frame {width}x{height}: frame mark check word {check:#06x} does not match "
            f"{_check_word(counter, timestamp_ms):#06x}; is this a frame of a simulated camera, uncropped?"
        )
    return FrameMark(counter=counter, timestamp_ms=timestamp_ms)


def format_wall_clock(timestamp_s: float) -> str:
    """Local wall-clock time with milliseconds and UTC offset, as painted on frames."""
    moment = datetime.fromtimestamp(timestamp_s).astimezone()
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d} {moment:%z}"


def _ascii(text: str) -> str:
    # Hershey fonts of cv2.putText draw ASCII only; anything else would come out as '?' anyway.
    return text.encode("ascii", "replace").decode("ascii")


class FramePainter:
    """Paints and JPEG-encodes the frames of one stream (one size) of one simulated camera."""

    def __init__(self, station: str, camera: str, size: tuple[int, int]) -> None:
        width, height = size
        if width < MARK_COLUMNS * 2 or height < 64:
            raise ValueError(
                f"sim camera {station}/{camera}: frame size {width}x{height} is too small; "
                f"use at least {MARK_COLUMNS * 2}x64"
            )
        self.station = station
        self.camera = camera
        self.size = (width, height)
        self._title = _ascii(f"station {station}  camera {camera}")
        self._scale = max(0.35, height / 720 * 1.1)
        self._thickness = max(1, round(height / 360))
        self._line_px = int(self._scale * 34) + 4
        self._background = self._paint_background(width, height)

    @staticmethod
    def _paint_background(width: int, height: int) -> Image:
        rows = np.linspace(40, 110, height, dtype=np.float32)[:, None]
        cols = np.linspace(0, 60, width, dtype=np.float32)[None, :]
        background = np.zeros((height, width, 3), dtype=np.uint8)
        background[:, :, 0] = (rows + cols).astype(np.uint8)  # blue
        background[:, :, 1] = (rows * 0.6).astype(np.uint8)  # green
        background[:, :, 2] = (cols * 0.5 + 20).astype(np.uint8)  # red
        step = max(16, width // 16)
        background[:, ::step] = (90, 90, 90)
        background[::step, :] = (90, 90, 90)
        return background

    def paint(self, counter: int, timestamp_s: float) -> Image:
        """The BGR frame number `counter` captured at `timestamp_s` (seconds since the epoch)."""
        width, height = self.size
        image = self._background.copy()
        cells = _mark_cells(width, height)
        mark_top = cells[0][1]
        bar_w = max(8, width // 20)
        travel = width - bar_w
        position = (counter * max(2, width // 40)) % (2 * travel)
        bar_x = position if position < travel else 2 * travel - position
        cv2.rectangle(image, (bar_x, 0), (bar_x + bar_w - 1, mark_top - 1), (40, 200, 240), -1)
        lines = (
            self._title,
            format_wall_clock(timestamp_s),
            f"frame {counter:06d}  {width}x{height}",
        )
        y = self._line_px
        for line in lines:
            self._put_text(image, line, (max(4, width // 80), y))
            y += self._line_px
        timestamp_ms = round(timestamp_s * 1000)
        bits = _mark_bits(FrameMark(counter=counter, timestamp_ms=timestamp_ms))
        image[mark_top:, :] = 0
        for (x0, y0, x1, y1), bit in zip(cells, bits, strict=True):
            if bit:
                image[y0:y1, x0:x1] = 255
        return image

    def _put_text(self, image: Image, text: str, origin: tuple[int, int]) -> None:
        font = cv2.FONT_HERSHEY_SIMPLEX
        # A drop shadow of the same weight: a thicker outline would change the glyph advance.
        shadow = (origin[0] + self._thickness, origin[1] + self._thickness)
        cv2.putText(image, text, shadow, font, self._scale, (0, 0, 0), self._thickness, cv2.LINE_AA)
        cv2.putText(image, text, origin, font, self._scale, (255, 255, 255), self._thickness, cv2.LINE_AA)

    def render_jpeg(self, counter: int, timestamp_s: float) -> bytes:
        """Paint frame `counter` and encode it as one baseline JPEG."""
        return encode_jpeg(self.paint(counter, timestamp_s))


def encode_jpeg(image: Image, quality: int = _JPEG_QUALITY) -> bytes:
    """JPEG bytes of a BGR image; raises ValueError when cv2 cannot encode it."""
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"cv2.imencode could not encode a {image.shape} frame as JPEG")
    return bytes(buffer)
