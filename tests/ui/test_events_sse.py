"""GET /events over real HTTP (uvicorn on 127.0.0.1): the snapshot at connect, a `state` event
within 1 s of an item starting, the item step as a `timeline` event, samples only when asked, and
a raised alarm as an `alarm` event."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx

from devices.ref import DeviceRef
from devices.sample import Sample
from proctor_ui.app import create_app
from proctor_ui.context import UiContext
from proctor_ui.server import serving
from station.events import AlarmEvent
from tests.integration.conftest import ready_station
from tests.ui.conftest import PASSWORD


async def sign_in(client: httpx.AsyncClient, name: str) -> str:
    """Sign in through the form; returns the Cookie header (the `__Host-` cookies are Secure, which
    httpx's jar keeps back over loopback HTTP, where browsers do send them)."""
    page = await client.get("/login")
    login_cookie = page.headers["set-cookie"].split(";")[0]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    r = await client.post("/login", data={"name": name, "password": PASSWORD, "csrf": csrf.group(1), "next": "/"},
                          headers={"cookie": login_cookie})
    assert r.status_code == 303, r.text
    return r.headers["set-cookie"].split(";")[0]


async def events(client: httpx.AsyncClient, cookie: str, query: str) -> AsyncGenerator[tuple[str, Any], None]:
    async with client.stream("GET", f"/events{query}", headers={"cookie": cookie}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        name = ""
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                yield name, json.loads(line.split(":", 1)[1])


async def next_event(stream: AsyncIterator[tuple[str, Any]], wanted: str, timeout_s: float,
                     check: Any = lambda data: True) -> Any:
    async with asyncio.timeout(timeout_s):
        async for name, data in stream:
            if name == wanted and check(data):
                return data
    raise AssertionError("stream ended")


async def test_item_start_reaches_the_hall_within_a_second(ui_ctx: UiContext) -> None:
    services = ui_ctx.services
    aid = ready_station(services, services.clock, {"K2": "K21"}, name="李四")
    async with serving(create_app(ui_ctx), "127.0.0.1", 0) as url, httpx.AsyncClient(base_url=url) as client:
        cookie = await sign_in(client, "proc1")
        stream = events(client, cookie, "?station=A01")
        first = await next_event(stream, "state", 5)
        assert first["station"] == "A01" and first["attempt_id"] == aid and first["item"] is None
        assert first["candidate"] == {"id_number": first["candidate"]["id_number"], "name": "李四"}
        started = time.monotonic()
        await asyncio.to_thread(services.start_item, aid, "K21", "exam1")
        step = await next_event(stream, "timeline", 1, lambda d: d["kind"] == "item_start")
        assert step["item"] == "K21" and step["attempt_id"] == aid
        snap = await next_event(stream, "state", 1, lambda d: d["item"] is not None)
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
        cookie = await sign_in(client, "exam1")
        with_samples = events(client, cookie, "?station=A01&samples=1")
        await next_event(with_samples, "state", 5)
        for _ in range(3):
            services.record_sample(Sample("bench.main_switch", True, clock.mono_ns(), clock.utc_ns(),
                                          DeviceRef("A01", "bench")))
        sample = await next_event(with_samples, "sample", 2)
        assert sample == {"station": "A01", "device": "bench", "signal": "bench.main_switch", "value": True,
                          "t_utc_ns": clock.utc_ns()}
        services.events.publish(AlarmEvent("disk.low", "disk: 9 GB free", "free space", None, clock.utc_ns()))
        alarm = await next_event(with_samples, "alarm", 2)
        assert alarm["code"] == "disk.low" and alarm["cleared"] is False and alarm["station"] is None
        await with_samples.aclose()
        # a new hall page shows the site-wide alarm still raised
        page = await client.get("/", headers={"cookie": cookie, "accept": "text/html"})
        assert "disk: 9 GB free" in page.text
        unknown = await client.get("/events?station=Z99", headers={"cookie": cookie})
        assert unknown.status_code == 404
