"""`examstation sim` and `examstation demo`: the simulated site, and the controller against it.

This module is the one place in the production packages that imports `hardware_sim`, and the
CLI imports it only for these two commands; the controller's own run path never does (a test
checks it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from devices.sample import Sample
from hardware_sim.site import SimSite
from station.config import SiteConfig
from station.device_hub import DeviceHub


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


async def run_sim(config: SiteConfig, print_endpoints: bool, duration_s: float | None) -> None:
    async with SimSite(config) as site:
        if print_endpoints:
            for ep in site.endpoints():
                print(json.dumps(ep, ensure_ascii=False), flush=True)
        n_dev = sum(len(s.devices) for s in config.stations)
        n_cam = sum(len(s.cameras) for s in config.stations)
        print(f"examstation sim: {n_dev} devices and {n_cam} cameras of site {config.site.id} are running "
              f"on 127.0.0.1 and ptys; Ctrl-C stops them", file=sys.stderr, flush=True)
        await _until_stopped(duration_s)


async def run_demo(config: SiteConfig, duration_s: float | None, status_every_s: float) -> None:
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




def describe_scenarios(as_json: bool) -> str:
    """`examstation scenarios`: every scenario with the item score and outcome it should get."""
    from hardware_sim.scenarios import SCENARIOS

    rows = [{"name": sc.name, "operation": sc.operation, "item": sc.item,
             "expected_item_score": sc.expected_item_score, "expected_outcome": sc.expected_outcome}
            for sc in SCENARIOS.values()]
    if as_json:
        return json.dumps(rows, ensure_ascii=False, indent=1)
    width = max(len(r["name"]) for r in rows)  # type: ignore[arg-type]
    lines = [f"{'scenario':<{width}}  item  expected  outcome  operation"]
    lines += [f"{r['name']:<{width}}  {r['item']:<4}  {r['expected_item_score']:>8g}  {r['expected_outcome']:<8} "
              f"{r['operation']}" for r in rows]
    return "\n".join(lines)


async def run_scenarios(config: SiteConfig, data_dir: Path, names: list[str]) -> dict[str, Any]:
    """`demo --scenario NAME --once` / `--exam S1,S2,S3,S4 --once`: one attempt through the whole
    controller, stored in `data_dir`; returns the signed result document."""
    from station.scenario_runner import play_exam, scenario_named

    run = await play_exam([scenario_named(n.strip()) for n in names], config, data_dir)
    return run.document
