"""GET /events over real HTTP (uvicorn on 127.0.0.1): the snapshot at connect, a `state` event
within 1 s of an item starting, the item step as a `timeline` event, samples only when asked, and
a raised alarm as an `alarm` event."""

from __future__ import annotations

import asyncio
import time

import httpx

from devices.ref import DeviceRef
from devices.sample import Sample
from proctor_ui.app import create_app
from proctor_ui.context import UiContext
from proctor_ui.server import serving
from station.events import AlarmEvent
from tests.integration.conftest import ready_station
from tests.sse_kit import events, next_data, sign_in
from tests.ui.conftest import PASSWORD


async def test_item_start_reaches_the_hall_within_a_second(ui_ctx: UiContext) -> None:
    services = ui_ctx.services
    aid = ready_station(services, services.clock, {"K2": "K21"}, name="李四")
    async with serving(create_app(ui_ctx), "127.0.0.1", 0) as url, httpx.AsyncClient(base_url=url) as client:
        cookie = await sign_in(client, "proc1", PASSWORD)
        stream = events(client, cookie, "?station=A01")
        first = await next_data(stream, "state", 5)
        assert first["station"] == "A01" and first["attempt_id"] == aid and first["item"] is None
        assert first["candidate"] == {"id_number": first["candidate"]["id_number"], "name": "李四"}
        started = time.monotonic()
        await asyncio.to_thread(services.start_item, aid, "K21", "exam1")
        step = await next_data(stream, "timeline", 1, lambda d: d["kind"] == "item_start")
        assert step["item"] == "K21" and step["attempt_id"] == aid
        snap = await next_data(stream, "state", 1, lambda d: d["item"] is not None)
        assert time.monotonic() - started < 1.0
        assert snap["item"]["code"] == "K21" and snap["state"] == "running"
        assert snap["item"]["limit_s"] > 0 and snap["item"]["paused"] is False
        assert snap["total"] == 100.0 and snap["deductions"] == [] and snap["vetoed"] is False
        assert set(snap) == {"station", "operation", "attempt_id", "candidate", "state", "item", "total",
                             "deductions", "vetoed", "devices", "cameras", "alarms", "discipline"}
        await stream.aclose()


async def test_samples_only_when_asked_and_alarms(ui_ctx: UiContext) -> None:
    services = ui_ctx.services
    clock = services.clock
    async with serving(create_app(ui_ctx), "127.0.0.1", 0) as url, httpx.AsyncClient(base_url=url) as client:
        cookie = await sign_in(client, "exam1", PASSWORD)
        with_samples = events(client, cookie, "?station=A01&samples=1")
        await next_data(with_samples, "state", 5)
        for _ in range(3):
            services.record_sample(Sample("bench.main_switch", True, clock.mono_ns(), clock.utc_ns(),
                                          DeviceRef("A01", "bench")))
        sample = await next_data(with_samples, "sample", 2)
        assert sample == {"station": "A01", "device": "bench", "signal": "bench.main_switch", "value": True,
                          "t_utc_ns": clock.utc_ns()}
        services.events.publish(AlarmEvent("disk.low", "disk: 9 GB free", "free space", None, clock.utc_ns()))
        alarm = await next_data(with_samples, "alarm", 2)
        assert alarm["code"] == "disk.low" and alarm["cleared"] is False and alarm["station"] is None
        await with_samples.aclose()
        # a new hall page shows the site-wide alarm still raised
        page = await client.get("/", headers={"cookie": cookie, "accept": "text/html"})
        assert "disk: 9 GB free" in page.text
        unknown = await client.get("/events?station=Z99", headers={"cookie": cookie})
        assert unknown.status_code == 404
