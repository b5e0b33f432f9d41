"""`examstation run`: the controller against real (or simulated) hardware.

Opens the station database (refusing one that is missing, behind the schema or not in WAL with
synchronous=FULL), recovers attempts a crash left running (paused, so the outage does not count),
starts every configured device client and records every camera (station.recording), routes
samples and device faults to the attempts of their stations, ticks the item clocks, and runs the
uplink relay that delivers every signed result to the province (station.uplink), and serves the
proctor UI (proctor_ui.wiring) through which examiners and proctors act on the service layer.
For one box of a hall split over several (`--box`, docs/boxes.md) `config` is that box's part: its
stations only; its hall page follows the other boxes' stations (station.uplink.peer_live).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from devices.clock import SystemClock
from devices.ref import DeviceRef
from station import session as sm
from station.config import SiteConfig
from station.db import database_path, open_database
from station.device_hub import DeviceHub
from station.events import AlarmEvent, Subscription
from station.heap import freeze_startup_heap
from station.log_format import report_alarm
from station.recording import Recording
from station.service_notify import ServiceNotifier, sigterm_stops
from station.services import StationServices
from station.signing import SiteKey
from station.slow_stop import watch_stop
from station.status_feed import StatusFeed
from station.uplink.live import live_documents, live_every_s
from station.uplink.peer_live import PeerLive
from station.uplink.relay import RelaySettings, UplinkRelay

log = logging.getLogger(__name__)
TICK_S = 0.1


@dataclasses.dataclass(frozen=True, slots=True)
class UiSettings:
    """Where `run` serves the proctor UI (`--host`, `--port`, `--tls-cert`, `--tls-key`)."""

    host: str = "127.0.0.1"
    port: int = 8000
    tls_cert: Path | None = None
    tls_key: Path | None = None


async def run_controller(config: SiteConfig, data_dir: Path, duration_s: float | None = None,
                         status_every_s: float = 30.0, relay_settings: RelaySettings | None = None,
                         ui: UiSettings | None = None) -> None:
    """`examstation run`: the devices, the item clocks, the storage watch, the alarm lines and the
    uplink, as tasks of one group: one failing stops the controller with its own error. The
    proctor UI is served as `ui` says (None: `--no-ui`). Under systemd it notifies READY once all is up,
    WATCHDOG from the clock loop and STOPPING on the way out (station.service_notify)."""
    notifier = ServiceNotifier.from_environ()
    # a stop that hangs says what it waits on (station.slow_stop)
    with watch_stop("run") as slow, open_database(database_path(data_dir)) as db:
        services = StationServices(config, db, SiteKey.load_or_create(data_dir), SystemClock())
        try:
            for attempt_id in await asyncio.to_thread(services.recover):
                print(f"examstation run: attempt {attempt_id} was running when the controller stopped; "
                      "it is paused until an examiner resumes or closes it", flush=True)
            async with contextlib.AsyncExitStack() as stack:
                feed = await stack.enter_async_context(StatusFeed(services.device_status))

                def on_status(device: DeviceRef, online: bool, reason: str) -> None:
                    print(f"  device {device} {'online' if online else 'OFFLINE: ' + reason}", flush=True)
                    feed(device, online, reason)

                alarms = services.events.subscribe("alarm lines", maxsize=100, kinds=(AlarmEvent,))
                hub = await stack.enter_async_context(DeviceHub(config, services.record_sample, on_status,
                                                                services.clock, services.record_value_fault,
                                                                poll_thread=True))
                relay = await stack.enter_async_context(uplink_relay(config, services, hub, relay_settings))
                recording = await stack.enter_async_context(Recording(services, data_dir))
                n_dev = len(hub.status())
                n_cam = sum(len(st.cameras) for st in config.stations)
                box = config.this_box
                site = f"site {config.site.id}" + ("" if box is None else f" box {box.id} ({box.name})")
                started = (f"examstation run: {site}, {len(config.stations)} stations, {n_dev} "
                           f"devices, {n_cam} cameras recorded, database {db.path}, results to {relay.address.url}")
                print(f"{started}; Ctrl-C stops", flush=True)
                if ui is not None:
                    # a split hall: the hall page shows the other boxes' stations from their live topics
                    peers = await stack.enter_async_context(PeerLive(config)) if box is not None else None
                    await stack.enter_async_context(serve_ui(services, data_dir, hub, relay, ui, peers))
                freeze_startup_heap()  # station.heap: full GC passes over startup objects stalled the loop
                notifier.ready(started)
                async with asyncio.TaskGroup() as group:
                    helpers = [group.create_task(services.storage.run(), name="storage watch"),
                               group.create_task(recording.run(), name="disk watch and retention"),
                               group.create_task(print_alarms(alarms), name="alarm lines")]
                    try:
                        await _clock_loop(services, hub, relay, duration_s, status_every_s, notifier)
                    finally:
                        notifier.stopping()
                        slow.arm()
                        for task in helpers:
                            task.cancel()
        except BaseException:
            await _close_after_error(services)
            raise
        else:
            await asyncio.to_thread(services.close)
        finally:
            _left_open(services)
        # threads still working (a signature settling its video) are waited for here, inside the watch,
        # rather than silently by asyncio.run on the way out
        await asyncio.get_running_loop().shutdown_default_executor()


@contextlib.asynccontextmanager
async def serve_ui(services: StationServices, data_dir: Path, hub: DeviceHub, relay: UplinkRelay,
                   ui: UiSettings, peers: PeerLive | None = None) -> AsyncIterator[str]:
    """The proctor UI for the running controller; prints its URL, and how to add the first user."""
    from proctor_ui.wiring import NO_USERS_HINT, ui_for, user_book

    async with ui_for(services, services.config, data_dir, hub, relay=relay, host=ui.host, port=ui.port,
                      tls_cert=ui.tls_cert, tls_key=ui.tls_key, peers=peers) as url:
        print(f"  proctor UI on {url}", flush=True)
        if await asyncio.to_thread(user_book(services).count) == 0:
            print(f"  {NO_USERS_HINT}", flush=True)
        yield url


async def _clock_loop(services: StationServices, hub: DeviceHub, relay: UplinkRelay, duration_s: float | None,
                      status_every_s: float, notifier: ServiceNotifier) -> None:
    """Tick the item clocks; a status line every `status_every_s`; until `duration_s` (or forever, or
    SIGTERM). Each turn pings the service watchdog: a loop that hangs stops the pings."""
    loop = asyncio.get_running_loop()
    end = None if duration_s is None else loop.time() + duration_s
    next_status = loop.time() + status_every_s
    n_dev = len(hub.status())
    with sigterm_stops() as stopped:
        while (end is None or loop.time() < end) and not stopped.is_set():
            await asyncio.to_thread(services.tick)
            notifier.watchdog(loop.time())
            if loop.time() >= next_status:
                online = sum(1 for s in hub.status() if s.online)
                health = await asyncio.to_thread(relay.health)
                line = (f"status: {online}/{n_dev} devices online, "
                        f"{len(services.active_attempts())} attempts in progress; {health.line()}")
                print(f"  {line}", flush=True)
                notifier.status(line)
                next_status += status_every_s
            await asyncio.sleep(TICK_S)


async def print_alarms(alarms: Subscription) -> None:
    """Every alarm of the event stream as a line a proctor at the console reads (the UI shows them too)."""
    async for event in alarms:
        if isinstance(event, AlarmEvent):
            report_alarm(event)  # or, logging JSON for journald, a record with the alarm's fields


async def _close_after_error(services: StationServices) -> None:
    """Closing after an error must not hide it: a failure to store what is queued is logged."""
    try:
        await asyncio.to_thread(services.close)
    except Exception as err:
        log.error("while stopping after the error above: %s", err)


def _left_open(services: StationServices) -> None:
    """Say which attempts the controller leaves open (running, paused, or waiting for signatures):
    nothing is left unseen."""
    for station, attempt_id in sorted(services.active_attempts().items()):
        state = services.attempt(attempt_id).state
        then = ("; the next start pauses it until an examiner resumes or closes it" if state == sm.State.RUNNING
                else "")
        print(f"examstation run: attempt {attempt_id} at {station} is left {state.value}{then}", flush=True)
    for station, attempt_id in services.awaiting_sign_off():
        print(f"examstation run: attempt {attempt_id} at {station} is left "
              f"{services.attempt(attempt_id).state.value}; its result waits for the examiners' signatures",
              flush=True)


def uplink_relay(config: SiteConfig, services: StationServices, hub: DeviceHub | None,
                 settings: RelaySettings | None = None, broker_url: str | None = None) -> UplinkRelay:
    """The relay wired to the services: it settles receipts through their attempt book and follows
    their event stream (a signed result wakes it; a live document follows each item change)."""
    settings = settings or RelaySettings()
    if settings.live_every_s is None:
        settings = dataclasses.replace(settings, live_every_s=live_every_s(config))

    def live() -> list[dict[str, Any]]:
        devices = [(s.device, s.online) for s in hub.status()] if hub is not None else []
        return live_documents(config, services, devices, services.clock.mono_ns(), services.clock.utc_ns())

    operations = sorted({st.operation for st in config.stations})
    return UplinkRelay(config, services.book, key_id=services.key.key_id,
                       rubrics=[services.rubric(op) for op in operations], clock=services.clock,
                       broker_url=broker_url, settings=settings, live=live)
