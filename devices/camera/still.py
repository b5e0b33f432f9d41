"""One still picture from a camera, as JPEG: the check-in still an examiner compares with the photo.

Why here and not from the recorder: the still is taken at the moment of check-in, from whatever the
camera shows then, and must not wait for a segment to close. It opens its own short connection:
an MJPEG camera's frame is stored as the camera sent it (no re-encode); from an H.264 stream the
first keyframe is decoded once and encoded as JPEG (one frame per check-in, not per viewer).
"""

from __future__ import annotations

import time
from typing import Final

import av
import cv2

_TIMEOUT_US: Final = 5_000_000


class StillError(Exception):
    """The camera gave no picture; the message names the camera URL and the reason."""


def grab_still(url: str, timeout_s: float = 5.0) -> bytes:
    """The next picture of the camera at `url` as JPEG bytes; StillError when none comes in `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    options = {"timeout": str(_TIMEOUT_US)}
    fmt = None
    if url.startswith(("rtsp://", "rtsps://")):
        options["rtsp_transport"] = "tcp"
    elif url.startswith(("http://", "https://")):
        fmt = "mpjpeg"
    try:
        container = av.open(url, format=fmt, options=options, timeout=timeout_s)
    except (av.FFmpegError, OSError) as err:
        raise StillError(f"camera {url}: no still: cannot open the stream ({err})") from err
    try:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if time.monotonic() > deadline:
                break
            if packet.size == 0:
                continue
            if stream.codec_context.name == "mjpeg":
                return bytes(packet)
            for frame in packet.decode():
                ok, jpeg = cv2.imencode(".jpg", frame.to_ndarray(format="bgr24"), [cv2.IMWRITE_JPEG_QUALITY, 90])
                if ok:
                    return bytes(jpeg.tobytes())
    except (av.FFmpegError, OSError) as err:
        raise StillError(f"camera {url}: no still: the stream failed ({err})") from err
    finally:
        container.close()
    raise StillError(f"camera {url}: no still: no decodable picture within {timeout_s:g} s")
