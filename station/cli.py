"""The `examstation` command line: the entry point that configures logging and wires components.

Only the commands that work are here; each later one (run, replay, export, site-check...) is
added with the issue that builds it. Errors a user can fix (a bad config) end with exit status 2
and the message, not a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections import Counter
from pathlib import Path

from devices.sample import Sample
from hardware_sim.site import SimSite
from station.config import ConfigError, SiteConfig, load_site_config
from station.device_hub import DeviceHub

log = logging.getLogger("examstation")

DEFAULT_CONFIG = Path("examples/site.yaml")


def _default_config() -> Path:
    if DEFAULT_CONFIG.is_file():
        return DEFAULT_CONFIG
    return Path(__file__).resolve().parents[1] / DEFAULT_CONFIG


async def _until_stopped(duration_s: float | None) -> None:
    """Wait for SIGINT/SIGTERM (or `duration_s`), so Ctrl-C leaves every context cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if duration_s is None:
            await stop.wait()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration_s)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _sim(config: SiteConfig, print_endpoints: bool, duration_s: float | None) -> None:
    async with SimSite(config) as site:
        if print_endpoints:
            for ep in site.endpoints():
                print(json.dumps(ep, ensure_ascii=False), flush=True)
        n_dev = sum(len(s.devices) for s in config.stations)
        n_cam = sum(len(s.cameras) for s in config.stations)
        print(f"examstation sim: {n_dev} devices and {n_cam} cameras of site {config.site.id} are running "
              f"on 127.0.0.1 and ptys; Ctrl-C stops them", file=sys.stderr, flush=True)
        await _until_stopped(duration_s)


async def _demo(config: SiteConfig, duration_s: float | None, status_every_s: float) -> None:
    async with SimSite(config) as site:
        resolved = site.resolved_config()
        counts: Counter[str] = Counter()

        def on_sample(sample: Sample) -> None:
            counts[sample.device] += 1

        def on_status(device: str, online: bool, reason: str) -> None:
            print(f"  device {device} {'online' if online else 'OFFLINE: ' + reason}", flush=True)

        print(f"examstation demo: site {config.site.id} {config.site.name}", flush=True)
        print("  hardware simulator:", flush=True)
        for ep in site.endpoints():
            where = ep.get("url") or (f"{ep['host']}:{ep['port']} unit {ep['unit']}" if "host" in ep
                                      else f"{ep['path']}" + (f" unit {ep['unit']}" if "unit" in ep else ""))
            what = ep.get("device") or f"camera {ep['camera']}"
            print(f"    {ep['station']} {what:<13} {ep.get('kind', 'mjpeg'):<11} {where}", flush=True)
        async with DeviceHub(resolved, on_sample, on_status) as hub:
            print("  controller: polling every device above; Ctrl-C stops the demo", flush=True)
            for rig in site.rigs.values():
                if rig.bench is not None:
                    rig.bench.start_check()  # each bench runs its wiring self-check once: the hall is alive
            loop = asyncio.get_running_loop()
            end = None if duration_s is None else loop.time() + duration_s
            while end is None or loop.time() < end:
                wait = status_every_s if end is None else min(status_every_s, end - loop.time())
                await _until_stopped(wait)
                online = sum(1 for s in hub.status() if s.online)
                print(f"  status: {online}/{len(hub.status())} devices online, "
                      f"{sum(counts.values())} samples received", flush=True)
                if wait < status_every_s:
                    break


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="examstation", description="特种作业实操考试点 station controller")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sim", help="run only the hardware simulators of a site config")
    s.add_argument("--config", type=Path, required=True, help="site config YAML (examples/site.yaml)")
    s.add_argument("--print-endpoints", action="store_true", help="print one JSON object per endpoint")
    s.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    d = sub.add_parser("demo", help="the whole site on this machine, against the simulator")
    d.add_argument("--config", type=Path, default=None, help="site config (default examples/site.yaml)")
    d.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    d.add_argument("--status-every", type=float, default=5.0, help="seconds between status lines")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # pymodbus logs every timeout as an error; our device layer reports them once, with the fix.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    try:
        config = load_site_config(args.config or _default_config())
        if args.command == "sim":
            asyncio.run(_sim(config, args.print_endpoints, args.duration))
        elif args.command == "demo":
            asyncio.run(_demo(config, args.duration, args.status_every))
    except ConfigError as err:
        print(f"examstation: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
