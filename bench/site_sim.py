"""The site benchmark's simulator process: a K-station hall, its broker and the province.

Run by bench/site.py, never on its own loop with the controller: `python bench/site_sim.py --config
HALL.yaml --data-dir DATA --out RESOLVED.yaml`. It starts

- a real mosquitto on a free loopback port (hardware_sim.mosquitto) and the simulated province
  (hardware_sim.province: schema and signature checks, signed receipts) holding the site's public
  key from DATA, as `examstation sim --write-config` does with its embedded broker;
- every device and camera of the hall (hardware_sim.site.SimSite: a Modbus TCP server per bench,
  one Modbus RTU server per RS-485 line on a pty pair, a manikin per pty, an RTSP H.264 main stream
  and an MJPEG sub-stream per camera), with one change that keeps the simulator cheap: the MJPEG
  sub-streams loop a few JPEGs painted and encoded once at start (`LoopedSimCamera`) instead of
  painting and encoding every frame. The RTSP main streams are already a clip encoded once and
  looped with stream copy (hardware_sim.h264_clip).

It writes the hall config resolved to those endpoints (`--out`), prints one JSON line `{"ready":
...}` and then obeys one command per stdin line, answering with one JSON line each:

- `go`: the candidates start acting on the rigs (see `Candidates`): each bench's meter leads go on
  and off every second, each cabinet's ear plugs are taken and put back every two seconds, each
  manikin gets CPR (30 compressions at 110/min, two breaths, again). Every change is counted here.
- `stop`: the candidates stop and every camera freezes (connections stay, no new frame), so the
  counts on both ends can settle before they are compared.
- `report`: what the simulator did: per device the values it changed, per manikin the frames it
  sent, per camera the frames it sent (main, sub), what the province stored, and its own CPU.
- `quit` (or end of input): everything stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml
from proc_stat import cpu_s as proc_cpu

from devices.modbus.register_codec import Value
from hardware_sim.camera import SimCamera
from hardware_sim.frame_painter import FramePainter
from hardware_sim.mosquitto import Mosquitto
from hardware_sim.province import ProvinceServer
from hardware_sim.province_key import public_path
from hardware_sim.rtsp_camera import SimRtspCamera
from hardware_sim.site import SimSite, StationRig
from station.config import Camera, SiteConfig, Uplink, load_site_config
from station.signing import SiteKey

LOOP_FRAMES = 10
"""JPEGs a looped sub-stream cycles through (2 s at the sub-stream's 5 fps)."""
PROVINCE_KEY = "simulated-province.pem"
BENCH_EVERY_S = 1.0
CABINET_EVERY_S = 2.0
COMPRESSION_EVERY_S = 60.0 / 110
BREATH_EVERY_S = 1.5


class LoopedSimCamera(SimCamera):
    """A SimCamera whose streams cycle through `LOOP_FRAMES` JPEGs encoded once, per stream, on first
    use: the same HTTP server, headers and frame counters, without a paint and an encode per frame."""

    def _renderer(self, painter: FramePainter) -> Callable[[int, float], Awaitable[bytes]]:
        frames: list[bytes] = []

        async def render(counter: int, timestamp_s: float) -> bytes:
            if not frames:
                encoded = await asyncio.to_thread(lambda: [painter.render_jpeg(i, timestamp_s)
                                                           for i in range(LOOP_FRAMES)])
                frames.extend(encoded)
            return frames[counter % LOOP_FRAMES]

        return render


class LoopedSimSite(SimSite):
    """SimSite with `LoopedSimCamera` sub-streams (the RTSP main streams are looped clips already)."""

    async def _start_camera(self, station: str, cam: Camera) -> None:
        width, height = (cam.resolution or "1280x720").split("x")
        size = (int(width), int(height))
        fps = self.camera_fps or cam.fps or 10.0
        sc = LoopedSimCamera(station, cam.id, main_size=size, main_fps=fps, sub_fps=max(1.0, fps / 2))
        self.cameras[(station, cam.id)] = await self._stack.enter_async_context(sc)
        rtsp = SimRtspCamera(station, cam.id, size=size, fps=min(30, max(1, round(fps))))
        self.rtsp_cameras[(station, cam.id)] = await self._stack.enter_async_context(rtsp)


def changed(before: dict[str, Value], after: dict[str, Value]) -> int:
    return sum(1 for k, v in after.items() if before.get(k) != v)


class Candidates:
    """What the candidates do to the rigs while the benchmark runs, and how many values each changed.

    Each change is held for at least ten polls (bench 100 ms, cabinet 200 ms), so the controller
    must see every one as a sample: a change the controller did not report is a lost sample."""

    def __init__(self, site: SimSite) -> None:
        self.site = site
        self.changes: dict[str, int] = {}
        """`STATION/device` -> values changed on the device's model (Modbus devices)."""
        self.compressions = 0
        self.breaths = 0
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        n = max(1, len(self.site.rigs))
        for i, (sid, rig) in enumerate(sorted(self.site.rigs.items())):
            phase = i / n  # spread the stations' actions over the period
            if (bench := rig.bench) is not None:  # the candidate puts the meter's leads on, then off
                def probe(bench: Any = bench) -> None:
                    bench.meter_probe = not bench.meter_probe
                self._tasks.append(asyncio.create_task(
                    self._act(f"{sid}/bench", bench.values, probe, phase * BENCH_EVERY_S, BENCH_EVERY_S)))
            if (cabinet := rig.cabinet) is not None:  # ear plugs taken, then put back
                def plugs(cabinet: Any = cabinet) -> None:
                    (cabinet.take if cabinet.present["ear_plugs"] else cabinet.put_back)("ear_plugs")
                self._tasks.append(asyncio.create_task(
                    self._act(f"{sid}/cabinet", cabinet.values, plugs, phase * CABINET_EVERY_S, CABINET_EVERY_S)))
            if rig.manikin is not None:
                self._tasks.append(asyncio.create_task(self._cpr(rig, phase * COMPRESSION_EVERY_S)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def _count(self, key: str, n: int) -> None:
        self.changes[key] = self.changes.get(key, 0) + n

    async def _act(self, key: str, values: Callable[[], dict[str, Value]], act: Callable[[], None], delay_s: float,
                   every_s: float) -> None:
        """Do `act` to the device model every `every_s`, counting the values it changed under `key`."""
        await asyncio.sleep(delay_s)
        while True:
            before = values()
            act()
            self._count(key, changed(before, values()))
            await asyncio.sleep(every_s)

    async def _cpr(self, rig: StationRig, delay_s: float) -> None:
        manikin = rig.manikin
        assert manikin is not None
        await asyncio.sleep(delay_s)
        while True:
            for _ in range(30):
                await manikin.compress(52.0)
                self.compressions += 1
                await asyncio.sleep(COMPRESSION_EVERY_S)
            for _ in range(2):
                await manikin.ventilate(550)
                self.breaths += 1
                await asyncio.sleep(BREATH_EVERY_S)


class LoopLag:
    """How late this process's event loop wakes a task that sleeps 10 ms: the simulator's own
    latency, which would show in the controller's figures as slow devices (late polls)."""

    def __init__(self) -> None:
        self.max_ms = 0.0
        self.over_50ms = 0
        self.over_100ms = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await asyncio.sleep(0.01)
            late_ms = (loop.time() - t0 - 0.01) * 1000
            self.max_ms = max(self.max_ms, late_ms)
            self.over_50ms += late_ms > 50
            self.over_100ms += late_ms > 100

    def reset(self) -> None:
        self.max_ms, self.over_50ms, self.over_100ms = 0.0, 0, 0


def cpu_s() -> dict[str, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # mosquitto, once it has exited
    return {"self": me.ru_utime + me.ru_stime, "children_exited": kids.ru_utime + kids.ru_stime}


def proc_cpu_s(pid: int | None) -> float | None:
    """User + system seconds of a running process (mosquitto) from /proc."""
    if pid is None:
        return None
    try:
        return proc_cpu(pid)
    except OSError:
        return None


def report(site: SimSite, candidates: Candidates, province: ProvinceServer, broker: Mosquitto,
           lag: LoopLag) -> dict[str, Any]:
    manikins = {f"{st}/{dev}": m.frames_sent for (st, dev), m in site.manikins.items()}
    cameras = {f"{st}/{cam}": {"main_sent": c.frames_sent, "main_dropped": c.frames_dropped,
                               "main_clients": c.clients}
               for (st, cam), c in site.rtsp_cameras.items()}
    for (st, cam), c in site.cameras.items():
        cameras[f"{st}/{cam}"].update({"sub_sent": c.frames_encoded["sub"], "sub_dropped": c.frames_dropped["sub"]})
    return {"changes": dict(candidates.changes), "manikin_frames": manikins, "compressions": candidates.compressions,
            "breaths": candidates.breaths, "cameras": cameras,
            "province": {"stored": province.stats.stored, "duplicates": province.stats.duplicates,
                         "rejected": province.stats.rejected},
            "cpu_s": cpu_s(), "mosquitto_cpu_s": proc_cpu_s(broker.pid), "t_mono": time.monotonic(),
            "loop_lag_max_ms": round(lag.max_ms, 1), "loop_stalls_over_50ms": lag.over_50ms,
            "loop_stalls_over_100ms": lag.over_100ms}


def resolved(site: SimSite, broker_url: str, province_pem: Path, data_dir: Path) -> SiteConfig:
    config = site.resolved_config()
    storage = config.storage.model_copy(update={"data_dir": str(data_dir.resolve())})
    uplink = Uplink(broker_url=broker_url, province_key=str(province_pem))
    return config.model_copy(update={"uplink": uplink, "storage": storage})


def say(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


async def serve(args: argparse.Namespace) -> None:
    config = load_site_config(args.config)
    key = SiteKey.load_or_create(args.data_dir)
    province_pem = args.data_dir / PROVINCE_KEY
    async with contextlib.AsyncExitStack() as stack:
        broker = await stack.enter_async_context(Mosquitto())
        province = await stack.enter_async_context(
            ProvinceServer(broker.url, keys={config.site.id: key.public_pem()}, client_id=f"province-{os.getpid()}",
                           province_key=province_pem))
        site = await stack.enter_async_context(LoopedSimSite(config))
        hall = resolved(site, broker.url, public_path(province_pem), args.data_dir)
        data = hall.model_dump(mode="json", exclude_none=True)
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        tmp.replace(args.out)
        candidates = Candidates(site)
        lag = LoopLag()
        lag_task = asyncio.create_task(lag.run(), name="loop lag")
        stack.callback(lag_task.cancel)
        say({"ready": True, "config": str(args.out), "broker": broker.url, "pid": os.getpid(),
             "mosquitto_pid": broker.pid, "stations": len(config.stations)})
        while True:
            line = (await asyncio.to_thread(sys.stdin.readline)).strip()
            if line in ("", "quit"):
                break
            if line == "go":
                lag.reset()
                candidates.start()
                say({"ok": "go"})
            elif line == "stop":
                await candidates.stop()
                for st, cam in site.rtsp_cameras:
                    site.freeze_camera(st, cam)
                say({"ok": "stop"})
            elif line == "report":
                say(report(site, candidates, province, broker, lag))
            else:
                say({"error": f"unknown command {line!r}; go, stop, report or quit"})
        await candidates.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, required=True, help="the hall (bench/site_hall.py writes one)")
    p.add_argument("--data-dir", type=Path, required=True, help="the controller's data directory (its site key)")
    p.add_argument("--out", type=Path, required=True, help="where to write the config resolved to the simulator")
    asyncio.run(serve(p.parse_args()))


if __name__ == "__main__":
    main()
