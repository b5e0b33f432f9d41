"""Site benchmark: how many stations one box holds with nothing lost (issue 16).

Run: `.venv/bin/python bench/site.py --json` (5 minutes per K; `--quick` for a smoke run of 20 s
per K on a few small K). Progress goes to stderr; with `--json` the last stdout line is one JSON
object whose first keys are max_stations, cpu_percent, rss_mb, samples_lost, frames_lost,
poll_deadline_miss_rate, stations_tried (diagnostics follow). docs/PERFORMANCE.md explains it.

For each K tried, three kinds of process on 127.0.0.1:
- the simulator (bench/site_sim.py, its own process and event loop): K stations, each with a
  wiring bench on Modbus TCP, a PPE cabinet on a shared RS-485 line (Modbus RTU on a pty pair, four
  cabinets a line), a CPR manikin on a pty, one 720p10 H.264 camera over RTSP with an MJPEG
  sub-stream; a real mosquitto; the simulated province that checks and receipts results. The
  simulated candidates act on the rigs (bench/site_sim.Candidates) and everything they change is
  counted there.
- the controller: `examstation run` on the hall config the simulator resolved to its endpoints,
  the real command as a site runs it, with the proctor UI on a free port. It is the measured one.
- this process: an examiner driving each station's candidates through the UI (check-in, item,
  end, review, signatures: results go to the province through the broker) and one hall tile per
  station watching the camera's sub-stream over the WebSocket the hall page opens.

A K passes with 0 samples lost, 0 frames lost and under 0.1 % of polls late past their deadline
(bench/site_figures.py says how each is counted from both ends). The search probes upward from
`--start` by `--step` while K passes (up to `--max`), then bisects between the largest pass and the
smallest failure down to `--resolution`.

Placement on the machine (`--placement`): `none` (default) runs the simulator (with its mosquitto and
province) and the controller at the same priority on either core, and reports the simulator's CPU
beside the controller's and what other processes took. Tried and not kept: `nice` (simulator at
nice 10) made the simulated devices answer late whenever the machine was busy, which shows up as
the controller's late polls; `pin` (simulator on the last core only) crowded the simulator's own
event loop (stalls up to 190 ms). A real hall's devices are other hardware: the fair placement is
the one that slows them least, and neither trick helped the controller.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from proc_stat import cpu_with_ended_children_s as cpu_s  # noqa: E402
from proc_stat import machine, machine_busy_s, rss_mb  # noqa: E402
from site_drive import Examiner, hall_page, tile_viewer  # noqa: E402
from site_figures import Metrics, figures, parse_metrics, total  # noqa: E402
from site_hall import OPERATION, hall_config, write_hall  # noqa: E402

from station.scenario_runner import candidate_id  # noqa: E402
from station.signing import SiteKey  # noqa: E402
from station.stored import ensure_database  # noqa: E402

MISS_RATE_LIMIT = 0.001
CAMERA = "overview"
USER = "bench"
SETTLE_S = 1.2
"""After the candidates stop and the cameras freeze: for queued packets and the last samples to arrive."""


def log(msg: str) -> None:
    print(f"site: {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def placed(args: list[str], placement: str, role: str) -> list[str]:
    """The command line with the placement applied (the simulator is the one moved)."""
    if role != "sim" or placement == "none":
        return args
    if placement == "nice":
        return ["nice", "-n", "10", *args]
    last = (os.cpu_count() or 1) - 1
    return ["taskset", "-c", str(last), *args]


class Sim:
    """The simulator process, spoken to one JSON line at a time."""

    def __init__(self, hall: Path, data: Path, out: Path, placement: str) -> None:
        cmd = placed([sys.executable, str(ROOT / "bench" / "site_sim.py"), "--config", str(hall), "--data-dir",
                      str(data), "--out", str(out)], placement, "sim")
        self.log_file = (data.parent / "sim.log").open("w")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log_file,
                                     text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        self.ready = self._read()
        if not self.ready.get("ready"):
            raise RuntimeError(f"simulator did not start: {self.ready}")

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"simulator ended (exit {self.proc.wait()}); see {self.log_file.name}")
        result: dict[str, Any] = json.loads(line)
        return result

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def cpu_s(self) -> float:
        """The simulator's and its mosquitto's CPU seconds so far."""
        own = cpu_s(self.proc.pid)
        broker = self.ready.get("mosquitto_pid")
        with contextlib.suppress(OSError):
            own += cpu_s(int(broker)) if broker else 0.0
        return own

    def close(self) -> None:
        """End of input is `quit`."""
        if self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log_file.close()


@contextlib.contextmanager
def controller(config: Path, data: Path, port: int, out: IO[str],
               asyncio_debug: bool = False) -> Iterator[subprocess.Popen[str]]:
    """`examstation run` on the resolved hall, the UI on `port`; stopped with SIGTERM as systemd would.
    `asyncio_debug`: asyncio's debug mode, which logs every callback that holds the loop over 100 ms."""
    cmd = [sys.executable, "-m", "station.cli", "run", "--config", str(config), "--data-dir", str(data),
           "--port", str(port)]
    env = {**os.environ, **({"PYTHONASYNCIODEBUG": "1"} if asyncio_debug else {})}
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cli(config: Path, data: Path, *args: str, stdin: str = "") -> str:
    out = subprocess.run([sys.executable, "-m", "station.cli", *args, "--config", str(config), "--data-dir",
                          str(data)], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"examstation {' '.join(args)}: exit {out.returncode}: {out.stderr[-500:]}")
    return out.stdout


def prepare(k: int, work: Path, candidates_per_station: int,
            recording: dict[str, float] | None) -> tuple[Path, Path, dict[str, list[str]]]:
    """The hall config, the data directory (key, database) and the candidates of each station."""
    hall = write_hall(k, work / "hall.yaml", recording=recording)
    data = work / "data"
    ensure_database(data)
    SiteKey.load_or_create(data)
    per_station = {st.id: [candidate_id(st.id, n + 1) for n in range(candidates_per_station)]
                   for st in hall_config(k).stations}
    return hall, data, per_station


def register(config: Path, data: Path, per_station: dict[str, list[str]], password: str) -> None:
    cli(config, data, "user", "add", USER, "--role", "examiner", "--stations", ",".join(per_station),
        "--password-stdin", stdin=password + "\n")
    rows = ["id_number,name,operation,batch"]
    rows += [f"{n},考生{sid}-{i + 1},{OPERATION},BENCH" for sid, ids in per_station.items() for i, n in enumerate(ids)]
    csv = data.parent / "candidates.csv"
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    cli(config, data, "candidates", "import", str(csv))


async def scrape(client: httpx.AsyncClient) -> Metrics:
    r = await client.get("/metrics")
    r.raise_for_status()
    return parse_metrics(r.text)


async def wait_ready(client: httpx.AsyncClient, proc: subprocess.Popen[str], k: int, timeout_s: float) -> Metrics:
    """Until every device is online and every camera connected and recording."""
    end = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the controller exited ({proc.returncode}) before it was ready")
        with contextlib.suppress(httpx.HTTPError):
            m = await scrape(client)
            online = total(m, "examstation_device_online")
            connected = total(m, "examstation_camera_connected")
            framed = sum(1 for v in m.get("examstation_camera_frames_total", {}).values() if v > 0)
            last = f"{online:.0f}/{3 * k} devices online, {connected:.0f}/{k} cameras connected, {framed} recording"
            if online >= 3 * k and connected >= k and framed >= k:
                return m
        await asyncio.sleep(1.0)
    raise RuntimeError(f"the controller was not ready after {timeout_s:.0f} s: {last}")


async def try_k(k: int, args: argparse.Namespace) -> dict[str, Any]:
    """One K: start everything, run `minutes`, count, stop. Returns the K's figures and verdict."""
    work = Path(tempfile.mkdtemp(prefix=f"site-bench-k{k}-"))
    password = secrets.token_urlsafe(16)
    seconds = args.minutes * 60
    per_item_s = args.item_s
    n_candidates = int(seconds // (per_item_s + 5)) + 3
    recording = {key: v for key, v in (("segment_s", args.segment_s), ("post_roll_s", args.post_roll_s))
                 if v is not None}
    hall, data, per_station = prepare(k, work, n_candidates, recording)
    sim = Sim(hall, data, work / "resolved.yaml", args.placement)
    try:
        resolved = Path(sim.ready["config"])
        register(resolved, data, per_station, password)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with (work / "controller.log").open("w") as out, \
                controller(resolved, data, port, out, args.asyncio_debug) as proc:
            log(f"K={k}: simulator pid {sim.proc.pid}, controller pid {proc.pid} on {url}, work dir {work}")
            if args.pid_file:
                await asyncio.to_thread(Path(args.pid_file).write_text, f"{proc.pid}\n")
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                await wait_ready(client, proc, k, args.ready_timeout_s)
                async with Examiner(url, USER, password) as examiner:
                    return await measure(k, args, sim, proc, client, examiner, per_station, seconds)
    finally:
        sim.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


async def measure(k: int, args: argparse.Namespace, sim: Sim, proc: subprocess.Popen[str],
                  client: httpx.AsyncClient, examiner: Examiner, per_station: dict[str, list[str]],
                  seconds: float) -> dict[str, Any]:
    tiles: dict[str, int] = {}
    viewers = [asyncio.create_task(tile_viewer(examiner.base_url, examiner.cookie, sid, CAMERA, tiles))
               for sid in per_station]
    hall_events: dict[str, int] = {}
    viewers += [asyncio.create_task(hall_page(examiner.base_url, examiner.cookie, hall_events))
                for _ in range(args.hall_pages)]
    stop = asyncio.Event()
    drivers: list[asyncio.Task[None]] = []
    try:
        await asyncio.sleep(args.warmup_s)
        if broken := [t for t in viewers if t.done()]:
            raise RuntimeError(f"{len(broken)} hall tiles ended during warm-up: {broken[0].exception()!r}")
        m0 = await scrape(client)
        r0 = sim.ask("report")
        sim.ask("go")
        spread_s = 0.0 if args.lockstep else args.item_s  # station i starts i/K of an item later
        drivers = [asyncio.create_task(examiner.run_station(sid, ids, args.item_s, stop, i * spread_s / k))
                   for i, (sid, ids) in enumerate(per_station.items())]
        t0, c0, s0, b0, own0 = time.monotonic(), cpu_s(proc.pid), sim.cpu_s(), machine_busy_s(), time.process_time()
        peak_rss = rss_mb(proc.pid)
        while (left := t0 + seconds - time.monotonic()) > 0:
            await asyncio.sleep(min(5.0, left))
            peak_rss = max(peak_rss, rss_mb(proc.pid))
            if proc.poll() is not None:
                raise RuntimeError(f"the controller exited ({proc.returncode}) during the run")
        t1, c1, s1, b1, own1 = time.monotonic(), cpu_s(proc.pid), sim.cpu_s(), machine_busy_s(), time.process_time()
        window_end = await scrape(client)  # polls are judged over the window, not the wind-down below
        stop.set()
        await asyncio.wait_for(asyncio.gather(*drivers), 120)
        queued = await wait_outbox_empty(client, 60.0)
        before_freeze = await scrape(client)
        sim.ask("stop")  # candidates stop acting, cameras freeze
        await asyncio.sleep(SETTLE_S)
        r1 = sim.ask("report")
        m1 = await scrape(client)
        tiles_seen = dict(tiles)
    finally:
        stop.set()
        for t in [*viewers, *drivers]:
            t.cancel()
        await asyncio.gather(*viewers, *drivers, return_exceptions=True)
    f = figures(m0, m1, r0, r1, tiles_seen, before_freeze, window_end)
    wall = t1 - t0
    cpu = 100.0 * (c1 - c0) / wall
    sim_cpu = 100.0 * (s1 - s0) / wall
    others = 100.0 * ((b1 - b0) - (c1 - c0) - (s1 - s0) - (own1 - own0)) / wall
    ok = (f["samples_lost"] == 0 and f["frames_lost"] == 0 and f["poll_deadline_miss_rate"] is not None
          and f["poll_deadline_miss_rate"] < MISS_RATE_LIMIT and not examiner.stats.errors and queued == 0)
    st = examiner.stats
    acts = sorted(st.action_s)
    row = {"k": k, "passed": ok, "hall_pages": args.hall_pages, "hall_events": dict(hall_events),
           "cpu_percent": round(cpu, 1), "rss_mb": round(peak_rss, 1),
           "samples_lost": f["samples_lost"], "frames_lost": f["frames_lost"],
           "poll_deadline_miss_rate": f["poll_deadline_miss_rate"], "sim_cpu_percent": round(sim_cpu, 1),
           "bench_cpu_percent": round(100.0 * (own1 - own0) / wall, 1), "other_processes_cpu_percent": round(others, 1),
           "load_average": round(os.getloadavg()[0], 2), "sim_loop_lag_max_ms": r1.get("loop_lag_max_ms"),
           "sim_loop_stalls_over_50ms": r1.get("loop_stalls_over_50ms"),
           "seconds": round(wall, 1), "results_signed": st.results_signed,
           "results_delivered": int(total(m1, "examstation_outbox_delivered")
                                    - total(m0, "examstation_outbox_delivered")),
           "province_stored": r1["province"]["stored"] - r0["province"]["stored"], "outbox_left_queued": queued,
           "attempts_started": st.attempts_started, "items_with_gap": st.items_with_gap,
           "ui_action_p50_s": round(acts[len(acts) // 2], 3) if acts else None,
           "ui_action_max_s": round(acts[-1], 3) if acts else None, "driver_errors": st.errors[:5],
           **{key: v for key, v in f.items() if key not in ("samples_lost", "frames_lost", "poll_deadline_miss_rate")}}
    log(f"K={k}: {'PASS' if ok else 'FAIL'}: controller {cpu:.1f} % of a core, {peak_rss:.0f} MB, simulator "
        f"{sim_cpu:.1f} %, other processes {others:.0f} %; samples lost {f['samples_lost']}, frames lost "
        f"{f['frames_lost']}, late polls "
        f"{f['polls_late']}/{f['polls']}; {st.results_signed} results signed, {row['results_delivered']} delivered"
        + (f"; errors: {st.errors[:2]}" if st.errors else ""))
    return row


async def wait_outbox_empty(client: httpx.AsyncClient, timeout_s: float) -> int:
    end = time.monotonic() + timeout_s
    while True:
        queued = int(total(await scrape(client), "examstation_outbox_queued"))
        if queued == 0 or time.monotonic() > end:
            return queued
        await asyncio.sleep(1.0)


async def search(args: argparse.Namespace) -> dict[str, Any]:
    tried: dict[int, dict[str, Any]] = {}

    async def attempt(k: int) -> bool:
        if k not in tried:
            try:
                tried[k] = await try_k(k, args)
            except Exception as err:  # a K that cannot even run is a failed K, said why
                log(f"K={k}: could not run: {err!r}")
                tried[k] = {"k": k, "passed": False, "error": repr(err)}
        return bool(tried[k]["passed"])

    if args.only:
        for k in args.only:
            await attempt(k)
    else:
        best, worst = 0, None
        k = args.start
        while k <= args.max:
            if await attempt(k):
                best = k
                k += args.step
            else:
                worst = k
                break
        if best == 0 and worst is not None:  # the start failed: look below it
            lo, hi = 0, worst
        else:
            lo, hi = best, worst
        while hi is not None and hi - lo > args.resolution:
            mid = (lo + hi) // 2
            if mid <= 0:
                break
            if await attempt(mid):
                lo = mid
            else:
                hi = mid
    passed = [r for r in tried.values() if r["passed"]]
    top = max(passed, key=lambda r: r["k"]) if passed else None
    head = top or (min(tried.values(), key=lambda r: r["k"]) if tried else {})
    return {"max_stations": top["k"] if top else 0, "cpu_percent": head.get("cpu_percent"),
            "rss_mb": head.get("rss_mb"), "samples_lost": head.get("samples_lost"),
            "frames_lost": head.get("frames_lost"), "poll_deadline_miss_rate": head.get("poll_deadline_miss_rate"),
            "stations_tried": [tried[k] for k in sorted(tried)], "target": 24, "minutes_per_k": args.minutes,
            "placement": args.placement, "lockstep": args.lockstep, "miss_rate_limit": MISS_RATE_LIMIT,
            "machine": machine()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    p.add_argument("--minutes", type=float, default=5.0, help="measured minutes per K (default 5)")
    p.add_argument("--start", type=int, default=24, help="first K tried (default 24)")
    p.add_argument("--step", type=int, default=8, help="K grows by this while it passes (default 8)")
    p.add_argument("--max", type=int, default=48, help="largest K tried (default 48)")
    p.add_argument("--resolution", type=int, default=2, help="bisect until pass and fail are this close")
    p.add_argument("--only", type=int, action="append", help="measure exactly these K (repeat), no search")
    p.add_argument("--quick", action="store_true", help="smoke run: 20 s per K, K = 2 then 4")
    p.add_argument("--item-s", type=float, default=40.0, help="seconds each candidate's item runs")
    p.add_argument("--warmup-s", type=float, default=10.0, help="seconds after all is up before measuring")
    p.add_argument("--hall-pages", type=int, default=0,
                   help="hall pages open besides the tiles (each reads /events, every station's live state): "
                        "the hall feed builds and scores snapshots only while one is open (default 0)")
    p.add_argument("--lockstep", action="store_true",
                   help="every station's examiner acts at the same moment (default: station i starts its first "
                        "candidate i/K of an item later, as stations of a hall do not act in step)")
    p.add_argument("--segment-s", type=float, default=None,
                   help="the site's recording.segment_s (default: the site default, 10 s)")
    p.add_argument("--post-roll-s", type=float, default=None,
                   help="the site's recording.post_roll_s: how long a signature waits for video (default 10 s)")
    p.add_argument("--ready-timeout-s", type=float, default=120.0)
    p.add_argument("--placement", choices=["nice", "none", "pin"], default="none",
                   help="how the simulator is placed beside the controller (see the module's docstring)")
    p.add_argument("--pid-file", default=None, help="write the controller's pid here when it starts (to profile)")
    p.add_argument("--asyncio-debug", action="store_true",
                   help="run the controller in asyncio's debug mode (logs callbacks over 100 ms; slower)")
    p.add_argument("--keep", action="store_true", help="keep each K's work directory (logs, data)")
    args = p.parse_args()
    if args.quick:
        args.minutes, args.item_s, args.warmup_s = 1 / 3, 8.0, 4.0
        if not args.only:
            args.only = [2, 4]
    result = asyncio.run(search(args))
    print(json.dumps(result, ensure_ascii=False) if args.json else json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
