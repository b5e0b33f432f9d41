"""What the recorder tests share: a listener that keeps every fact, GStreamer's RTSP server as a
subprocess, and a child recorder process to kill -9.

Run as a script (`python -m tests.recorder_kit ROOT URL SEGMENT_S`) it records one camera until
killed and prints `recording` once the first packet was written: the kill -9 test's victim.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from devices.camera.contract import CameraGap, CameraSource, Segment

GST_SERVER = Path(__file__).with_name("gst_rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"


@dataclass
class Event:
    kind: str
    at_mono_ns: int
    fact: Segment | CameraGap


@dataclass
class KeepingListener:
    """Keeps every listener call with the monotonic time it was made (the recorder's threads call it)."""

    events: list[Event] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _keep(self, kind: str, fact: Segment | CameraGap) -> None:
        with self.lock:
            self.events.append(Event(kind, time.monotonic_ns(), fact))

    def segment_closed(self, segment: Segment) -> None:
        self._keep("segment", segment)

    def gap_opened(self, gap: CameraGap) -> None:
        self._keep("gap_opened", gap)

    def gap_closed(self, gap: CameraGap) -> None:
        self._keep("gap_closed", gap)

    def of(self, kind: str) -> list[Event]:
        with self.lock:
            return [e for e in self.events if e.kind == kind]

    def segments(self, camera: str | None = None) -> list[Segment]:
        found = [e.fact for e in self.of("segment") if isinstance(e.fact, Segment)]
        return [s for s in found if camera is None or s.camera == camera]

    def gaps(self, kind: str = "gap_closed") -> list[CameraGap]:
        return [e.fact for e in self.of(kind) if isinstance(e.fact, CameraGap)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_line(proc: subprocess.Popen[str], timeout_s: float, what: str) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    if not ready:
        raise AssertionError(f"{what} printed nothing within {timeout_s} s")
    line = proc.stdout.readline().strip()
    if not line:
        err = proc.stderr.read() if proc.stderr else ""
        raise AssertionError(f"{what} exited with {proc.wait()}: {err}")
    return line


def stop_process(proc: subprocess.Popen[str]) -> None:
    """SIGTERM by pid, then SIGKILL if it does not go within 5 s; close its pipes."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    for pipe in (proc.stdout, proc.stderr, proc.stdin):
        if pipe is not None:
            pipe.close()


@contextlib.contextmanager
def gst_rtsp_server(port: int | None = None, fps: int = 10) -> Iterator[str]:
    """GStreamer's RTSP server on 127.0.0.1 (720p H.264, `fps`, a keyframe a second); yields its URL."""
    port = port or free_port()
    proc = subprocess.Popen([SYSTEM_PYTHON, str(GST_SERVER), str(port), "--fps", str(fps)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield _read_line(proc, 10, f"GStreamer RTSP server on port {port}")
    finally:
        stop_process(proc)


@contextlib.contextmanager
def child_recorder(root: Path, url: str, segment_s: float) -> Iterator[subprocess.Popen[str]]:
    """This module as a separate recorder process; yields it once it has written its first packet."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.recorder_kit", str(root), url, str(segment_s)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).parent.parent)
    try:
        assert _read_line(proc, 15, "the child recorder") == "recording"
        yield proc
    finally:
        stop_process(proc)


def _child_main(root: str, url: str, segment_s: str) -> None:
    from devices.camera.recorder import Recorder

    recorder = Recorder([CameraSource("A01", "main", url)], Path(root), KeepingListener(), segment_s=float(segment_s))
    recorder.start()
    while not any(s.frames for s in recorder.stats().values()):
        time.sleep(0.01)
    print("recording", flush=True)
    signal.sigwait({signal.SIGTERM})
    recorder.stop()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    _child_main(*sys.argv[1:4])
