"""`examstation sim` and `examstation demo`: the simulated site, and the controller against it.

This module is the one place in the production packages that imports `hardware_sim`, and the
CLI imports it only for these two commands; the controller's own run path never does (a test
checks it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from devices.clock import SystemClock
from hardware_sim.embedded_broker import EmbeddedBroker
from hardware_sim.province import ProvinceServer
from hardware_sim.province_key import public_path
from scoring.rubric import Rubric
from scoring.rubric_loader import rubric_for
from station.config import SiteConfig, Uplink
from station.db import Database, database_path, open_database
from station.device_hub import DeviceHub
from station.services import StationServices
from station.signing import SiteKey
from station.slow_stop import watch_stop
from station.uplink import outbox
from station.uplink.relay import UplinkRelay


async def until_stopped(duration_s: float | None) -> None:
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


@contextlib.asynccontextmanager
async def uplink_stack(config: SiteConfig, key: SiteKey, broker_url: str | None,
                       data_dir: Path) -> AsyncIterator[ProvinceServer]:
    """The province's side of the demo: a broker (embedded amqtt unless `broker_url` names one) and
    the simulated provincial server with this site's public key registered."""
    async with contextlib.AsyncExitStack() as stack:
        if broker_url is None:
            broker_url = (await stack.enter_async_context(EmbeddedBroker())).url
        keys = {config.site.id: key.public_pem()}
        province = await stack.enter_async_context(
            ProvinceServer(broker_url, keys=keys, client_id=f"province-sim-{os.getpid()}",
                           province_key=data_dir / PROVINCE_KEY))
        yield province


PROVINCE_KEY = "simulated-province.pem"
"""The simulated province's signing key, in the demo's data directory, its public half beside it."""


def demo_config(config: SiteConfig, province: ProvinceServer, data_dir: Path) -> SiteConfig:
    """The site config with its uplink pointed at the demo's broker (no TLS, no password), trusting
    the simulated province's receipts."""
    return config.model_copy(update={"uplink": Uplink(broker_url=province.broker_url, live_every_s=5,
                                                      province_key=str(public_path(data_dir / PROVINCE_KEY)))})


async def run_demo(config: SiteConfig, data_dir: Path, duration_s: float | None, status_every_s: float,
                   broker_url: str | None = None, *, host: str = "127.0.0.1", port: int = 8000,
                   logins_file: Path | None = None) -> None:
    """`examstation demo`: the hall played by scenarios (exam time 20x), every result delivered to
    the simulated province, status lines until Ctrl-C or `duration_s`; the proctor UI on
    `host:port`, with new random passwords for the demo's users, printed once (and written to
    `logins_file`). The first electrician station with an ID card reader is left to a person at
    the UI (station.demo_desk); the others play whole candidates by themselves."""
    from proctor_ui.server import check_transport
    from proctor_ui.wiring import ui_for
    from station.controller import uplink_relay
    from station.demo_hall import HALL_SCALE, hall_rotation, play_hall
    from station.demo_users import ensure_demo_users, login_lines, write_logins_file

    check_transport(host, None, None)  # before anything starts: the demo serves plain HTTP on loopback only
    desks = desk_stations(config)
    key = SiteKey.load_or_create(data_dir)
    with watch_stop("demo") as slow:  # a stop that hangs says what it waits on (station.slow_stop)
        async with uplink_stack(config, key, broker_url, data_dir) as province:
            site_config = demo_config(config, province, data_dir)
            print(f"examstation demo: site {config.site.id} {config.site.name}", flush=True)
            print(f"  broker {province.broker_url} ({'external' if broker_url else 'embedded amqtt'}), simulated "
                  f"province receiving; data in {data_dir}", flush=True)
            print(f"  {len(config.stations) - len(desks)} stations play candidate scenarios at {HALL_SCALE:g}x exam "
                  f"time; {', '.join(desks) or 'no station'} waits for you: sign in as an examiner, check the "
                  "candidate in by ID card, start an item, end, review and sign; Ctrl-C stops the demo", flush=True)

            @contextlib.asynccontextmanager
            async def attach(services: StationServices, hub: DeviceHub, resolved: SiteConfig) -> AsyncIterator[None]:
                async with uplink_relay(site_config, services, hub) as relay, \
                        ui_for(services, resolved, data_dir, hub, relay=relay, host=host, port=port) as url:
                    logins = await asyncio.to_thread(ensure_demo_users, services, desks)
                    for line in login_lines(url, logins):
                        print(line, flush=True)
                    if logins_file is not None:
                        await asyncio.to_thread(write_logins_file, logins_file, url, logins)
                    async def report() -> None:
                        while True:
                            await asyncio.sleep(status_every_s)
                            online = sum(1 for s in hub.status() if s.online)
                            health = await asyncio.to_thread(relay.health)
                            print(f"  status: {online}/{len(hub.status())} devices online, "
                                  f"{len(services.active_attempts())} candidates at work; {health.line()}; province "
                                  f"stored {province.stats.stored}, duplicates {province.stats.duplicates}", flush=True)

                    task = asyncio.create_task(report())
                    try:
                        yield
                    finally:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task

            hall = asyncio.create_task(play_hall(site_config, data_dir, duration_s or 365 * 86400.0, HALL_SCALE,
                                                 hall_rotation, attach, desks))
            stopped = asyncio.create_task(until_stopped(duration_s))
            await asyncio.wait({hall, stopped}, return_when=asyncio.FIRST_COMPLETED)
            slow.arm()
            if not hall.done():
                hall.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hall
            stopped.cancel()
            print(f"examstation demo: stopped; the province stored {province.stats.stored} results "
                  f"({province.stats.duplicates} duplicates absorbed, {province.stats.rejected} rejected)", flush=True)
        # threads still working (a signature settling its video) are waited for here, inside the watch,
        # rather than silently by asyncio.run on the way out
        await asyncio.get_running_loop().shutdown_default_executor()


def desk_stations(config: SiteConfig) -> list[str]:
    """The station the demo leaves to a person: the first electrician station with an ID card reader
    (A01 in examples/site.yaml), else the first station with one; none when no station has a reader."""
    with_reader = [st for st in config.stations
                   if any(getattr(d, "profile", "") == "id-card-reader" for d in st.devices)]
    electrician = [st for st in with_reader if st.operation == "低压电工作业"]
    return [(electrician or with_reader)[0].id] if with_reader else []


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


async def run_scenarios(config: SiteConfig, data_dir: Path, names: list[str], broker_url: str | None = None,
                        receipt_timeout_s: float = 30.0) -> tuple[dict[str, Any], str | None]:
    """`demo --scenario NAME --once` / `--exam S1,S2,S3,S4 --once`: one attempt through the whole
    controller, stored in `data_dir`, then delivered to the simulated province (through the
    embedded broker, or `broker_url`). Returns the signed result document, and what went wrong
    with its delivery (None when the province's receipt came back)."""
    from station.scenario_runner import play_exam, scenario_named

    run = await play_exam([scenario_named(n.strip()) for n in names], config, data_dir, record=True)
    result_id = str(run.document["result_id"])
    key = SiteKey.load_or_create(data_dir)
    async with uplink_stack(config, key, broker_url, data_dir) as province:
        site_config = demo_config(config, province, data_dir)
        with open_database(database_path(data_dir)) as db:
            rubrics = [rubric_for(op) for op in sorted({st.operation for st in config.stations})]
            delivery = await _await_receipt(site_config, db, key, rubrics, result_id, receipt_timeout_s)
    return run.document, delivery


async def _await_receipt(site_config: SiteConfig, db: Database, key: SiteKey, rubrics: list[Rubric],
                         result_id: str, receipt_timeout_s: float) -> str | None:
    """Deliver the result; None once the province's receipt came back, else what went wrong. The
    attempt is settled: the relay is the only writer of the database now."""
    async with UplinkRelay(site_config, db, key_id=key.key_id, rubrics=rubrics, clock=SystemClock()):
        try:
            async with asyncio.timeout(receipt_timeout_s):
                while await asyncio.to_thread(outbox.state_of, db, result_id) == "queued":  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        except TimeoutError:
            return (f"no receipt for result {result_id} within {receipt_timeout_s:g} s; it "
                    "stays queued and the next `examstation run` or demo sends it again")
        if await asyncio.to_thread(outbox.state_of, db, result_id) == "failed":
            listed = {r.result_id: r for r in outbox.listing(db, ("failed",))}
            return f"result {result_id}: {listed[result_id].last_error}"
    return None
