"""Live video fan-out benchmark: the controller's CPU with 1 viewer of a camera, then with 60.

Run: `.venv/bin/python bench/live_fanout.py --json` (`--seconds S` per measured window, default 20;
`--rounds R`, default 3; `--mjpeg N`, default 50; `--mse N`, default 10; the run takes about
R x (2 x S + 14 s) + 10 s). Progress goes to stderr; the last line on stdout is one JSON object:
viewers, cpu_1_viewer, cpu_n_viewers, ratio (and more keys after those).

What is measured
- Three processes: the simulated camera (SimSite, one station, one camera: H.264 main stream over
  RTSP and an MJPEG sub-stream over HTTP, 10 fps; not measured), the controller (bench/
  live_fanout_controller.py: StationServices, Recording of the main stream, the LiveHub and the
  proctor UI on uvicorn, all in one process: this is the measured one), and the viewers (this
  process), over real HTTP and WebSocket connections on 127.0.0.1, signed in as a user created in
  the controller's database.
- cpu_1_viewer: the controller's CPU (user + system of every thread, from /proc/<pid>/stat), as a
  fraction of one core, over `seconds` while one hall tile (MJPEG sub-stream) is watched.
- Hall tiles watch the MJPEG sub-stream as the hall page does: one WebSocket of JPEGs per tile
  (`--tiles multipart` for multipart MJPEG, what an `<img>` elsewhere uses).
- cpu_n_viewers: the same while `mjpeg` hall tiles (MJPEG sub-stream) and `mse` station pages
  (fMP4 of the main stream over the WebSocket) watch the same camera. The two are measured in
  `rounds` alternating pairs (the figures are a few hundred 100 Hz ticks, and a shared machine
  drifts); each is the median of its rounds, ratio = median n / median 1. The hub opens
  each camera stream once and hands the same bytes to every viewer, so the ratio should stay low;
  acceptance is ratio <= 2.0 at 60 viewers.
- Each window starts after a warm-up (connections opened, first frames through); bytes received per
  viewer are counted, and a viewer that received nothing fails the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from proc_stat import cpu_times_s
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
ENTRY = [sys.executable, str(ROOT / "bench" / "live_fanout_controller.py")]
TILE = "/live/A01/overview.mjpeg"
TILE_WS = "/live/A01/overview/jpeg"
TILES_OVER = "ws"
"""How hall tiles watch: "ws" (one WebSocket of JPEGs per tile, what the hall page does) or "multipart"."""
PLAYER = "/live/A01/overview/fmp4"
WARMUP_S = 5.0
COMPRESSION: str | None = "deflate"
"""What the WebSocket viewers offer: "deflate" as browsers do (permessage-deflate), or None."""


def log(msg: str) -> None:
    print(f"live_fanout: {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def process(args: list[str], ready: re.Pattern[str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not ready.search(line):
            raise RuntimeError(f"{args[-1]}: expected a ready line, got {line!r} (exit {proc.poll()})")
        yield proc, line
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def sign_in(client: httpx.AsyncClient, password: str) -> str:
    page = await client.get("/login")
    login_cookie = page.headers["set-cookie"].split(";")[0]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, "no CSRF field on the login page"
    r = await client.post("/login", data={"name": "bench", "password": password, "csrf": csrf.group(1), "next": "/"},
                          headers={"cookie": login_cookie})
    if r.status_code != 303:
        raise RuntimeError(f"sign-in failed: {r.status_code} {r.text[:200]}")
    return r.headers["set-cookie"].split(";")[0]


async def mjpeg_viewer(client: httpx.AsyncClient, cookie: str, got: list[int], i: int) -> None:
    if TILES_OVER == "ws":
        async with connect(str(client.base_url).rstrip("/").replace("http://", "ws://") + TILE_WS,
                           additional_headers={"cookie": cookie}, max_size=None, compression=COMPRESSION) as ws:
            async for message in ws:
                got[i] += len(message)
        return
    async with client.stream("GET", TILE, headers={"cookie": cookie}) as r:
        r.raise_for_status()
        async for chunk in r.aiter_raw():
            got[i] += len(chunk)


async def mse_viewer(url: str, cookie: str, got: list[int], i: int) -> None:
    async with connect(url.replace("http://", "ws://") + PLAYER, additional_headers={"cookie": cookie},
                       max_size=None, compression=COMPRESSION) as ws:
        async for message in ws:
            got[i] += len(message)


async def measure(pid: int, url: str, cookie: str, mjpeg: int, mse: int,
                  seconds: float) -> tuple[float, float, list[int]]:
    """CPU of `pid` (fraction of one core; and of it, in the kernel) over `seconds` while the viewers
    watch, after a warm-up."""
    got = [0] * (mjpeg + mse)
    limits = httpx.Limits(max_connections=mjpeg + 10)
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(30, read=None), limits=limits) as client:
        tasks = [asyncio.create_task(mjpeg_viewer(client, cookie, got, i)) for i in range(mjpeg)]
        tasks += [asyncio.create_task(mse_viewer(url, cookie, got, mjpeg + i)) for i in range(mse)]
        try:
            await asyncio.sleep(WARMUP_S)
            failed = [t for t in tasks if t.done()]
            if failed:
                raise RuntimeError(f"{len(failed)} viewers ended during warm-up: {failed[0].exception()!r}")
            start_got = list(got)
            t0, c0 = time.monotonic(), cpu_times_s(pid)
            await asyncio.sleep(seconds)
            t1, c1 = time.monotonic(), cpu_times_s(pid)
            during = [b - a for a, b in zip(start_got, got, strict=True)]
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    if min(during) == 0:
        raise RuntimeError(f"{during.count(0)} of {len(during)} viewers received nothing in the window")
    return (sum(c1) - sum(c0)) / (t1 - t0), (c1[1] - c0[1]) / (t1 - t0), during


async def run(args: argparse.Namespace) -> dict[str, object]:
    password = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="live-fanout-") as tmp:
        config = Path(tmp) / "site.json"
        with process([*ENTRY, "--sim", "--config", str(config)], re.compile("sim ready")), \
                process([*ENTRY, "--config", str(config), "--data", str(Path(tmp) / "data"), "--password", password],
                        re.compile(r"^http://")) as (controller, url):
            log(f"controller pid {controller.pid} serving {url}")
            async with httpx.AsyncClient(base_url=url) as client:
                cookie = await sign_in(client, password)
            ones: list[tuple[float, float]] = []
            manys: list[tuple[float, float]] = []
            for r in range(args.rounds):  # alternate, so drift in the machine's load hits both alike
                one, one_sys, got1 = await measure(controller.pid, url, cookie, 1, 0, args.seconds)
                ones.append((one, one_sys))
                await asyncio.sleep(2)
                many, many_sys, got_n = await measure(controller.pid, url, cookie, args.mjpeg, args.mse, args.seconds)
                manys.append((many, many_sys))
                log(f"round {r + 1}: 1 viewer {one:.4f}, {args.mjpeg + args.mse} viewers {many:.4f} of a core "
                    f"(ratio {many / one:.2f})")
                await asyncio.sleep(2)
    one, one_sys = statistics.median(c for c, _ in ones), statistics.median(k for _, k in ones)
    many, many_sys = statistics.median(c for c, _ in manys), statistics.median(k for _, k in manys)
    mjpeg_rate = [b / args.seconds for b in got_n[:args.mjpeg]]
    mse_rate = [b / args.seconds for b in got_n[args.mjpeg:]]
    return {"viewers": args.mjpeg + args.mse, "cpu_1_viewer": round(one, 4), "cpu_n_viewers": round(many, 4),
            "ratio": round(many / one, 3), "mjpeg_viewers": args.mjpeg, "mse_viewers": args.mse,
            "cpu_1_viewer_system": round(one_sys, 4), "cpu_n_viewers_system": round(many_sys, 4),
            "rounds": args.rounds,
            "ratio_per_round": [round(n / o, 3) for (o, _), (n, _) in zip(ones, manys, strict=True)],
            "seconds": args.seconds, "bytes_per_s_1_viewer": round(got1[0] / args.seconds),
            "mjpeg_bytes_per_s_min": round(min(mjpeg_rate, default=0)),
            "mse_bytes_per_s_min": round(min(mse_rate, default=0)),
            "cpus": os.cpu_count(),
            "ws_deflate_offered": COMPRESSION is not None, "tiles_over": TILES_OVER}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--rounds", type=int, default=3,
                   help="measure 1 viewer then N viewers this many times, alternating; medians are reported")
    p.add_argument("--mjpeg", type=int, default=50)
    p.add_argument("--mse", type=int, default=10)
    p.add_argument("--no-deflate", action="store_true",
                   help="WebSocket viewers do not offer permessage-deflate (browsers do)")
    p.add_argument("--tiles", choices=["ws", "multipart"], default="ws",
                   help="hall tiles over a WebSocket of JPEGs (the hall page) or multipart MJPEG")
    args = p.parse_args()
    global COMPRESSION, TILES_OVER
    COMPRESSION = None if args.no_deflate else "deflate"
    TILES_OVER = args.tiles
    result = asyncio.run(run(args))
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
