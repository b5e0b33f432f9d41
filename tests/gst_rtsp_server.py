"""An H.264 RTSP camera served by GStreamer's RTSP server: a server nobody in this project wrote.

Why: the recorder must interoperate with a real RTSP implementation, not only with our own
simulator. Run with the system Python, which has python3-gi and GstRtspServer (the project's venv
cannot import gi):

    /usr/bin/python3 tests/gst_rtsp_server.py PORT [--fps N] [--width W --height H]

It serves `rtsp://127.0.0.1:PORT/cam` (720p, 10 fps by default, a keyframe every 10 frames,
x264 zerolatency), prints that URL on stdout once it listens, and runs until SIGTERM or SIGINT.
Tests start it with subprocess and stop it by pid (see `tests/integration/rtsp_servers.py`).
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def pipeline(width: int, height: int, fps: int) -> str:
    return (f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},framerate={fps}/1 "
            f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} "
            "! rtph264pay name=pay0 pt=96 config-interval=1 )")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(pipeline(args.width, args.height, args.fps))
    factory.set_shared(True)
    factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        print(f"gst_rtsp_server: cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    print(f"rtsp://127.0.0.1:{args.port}/cam", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
