"""`examstation run`: the controller against real (or simulated) hardware.

Opens the station database (refusing one that is missing, behind the schema or not in WAL with
synchronous=FULL), recovers attempts a crash left running (paused, so the outage does not count),
starts every configured device client, routes samples and device faults to the attempts of their
stations, and ticks the item clocks. Examiners act through the service layer (the proctor UI, a
later part); this process keeps the exam's record.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from devices.clock import SystemClock
from station.config import SiteConfig
from station.db import database_path, open_database
from station.device_hub import DeviceHub
from station.services import StationServices
from station.signing import SiteKey

log = logging.getLogger(__name__)
TICK_S = 0.1


async def run_controller(config: SiteConfig, data_dir: Path, duration_s: float | None = None,
                         status_every_s: float = 30.0) -> None:
    with open_database(database_path(data_dir)) as db:
        services = StationServices(config, db, SiteKey.load_or_create(data_dir), SystemClock())
        try:
            for attempt_id in await asyncio.to_thread(services.recover):
                print(f"examstation run: attempt {attempt_id} was running when the controller stopped; "
                      "it is paused until an examiner resumes or closes it", flush=True)
            pending: set[asyncio.Task[None]] = set()

            def on_status(device: str, online: bool, reason: str) -> None:
                print(f"  device {device} {'online' if online else 'OFFLINE: ' + reason}", flush=True)
                task = asyncio.create_task(asyncio.to_thread(services.device_status, device, online, reason))
                pending.add(task)
                task.add_done_callback(pending.discard)

            async with DeviceHub(config, services.record_sample, on_status, services.clock) as hub:
                n_dev = len(hub.status())
                print(f"examstation run: site {config.site.id}, {len(config.stations)} stations, {n_dev} devices, "
                      f"database {db.path}; Ctrl-C stops", flush=True)
                loop = asyncio.get_running_loop()
                end = None if duration_s is None else loop.time() + duration_s
                next_status = loop.time() + status_every_s
                while end is None or loop.time() < end:
                    await asyncio.to_thread(services.tick)
                    if loop.time() >= next_status:
                        online = sum(1 for s in hub.status() if s.online)
                        print(f"  status: {online}/{n_dev} devices online, "
                              f"{len(services.active_attempts())} attempts in progress", flush=True)
                        next_status += status_every_s
                    await asyncio.sleep(TICK_S)
                if pending:
                    await asyncio.gather(*pending)
        finally:
            services.close()
