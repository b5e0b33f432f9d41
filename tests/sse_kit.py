"""The proctor UI's live stream read as a browser reads it, over real HTTP: sign in through the
form, then `GET /events` as server-sent events (tests/ui and tests/e2e share this)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, NamedTuple

import httpx


class SseEvent(NamedTuple):
    name: str
    data: Any
    at: float
    """time.monotonic() when it arrived."""


async def sign_in(client: httpx.AsyncClient, name: str, password: str) -> str:
    """Sign in through the form; returns the Cookie header (the `__Host-` cookies are Secure, which
    httpx's jar keeps back over loopback HTTP, where browsers do send them)."""
    page = await client.get("/login")
    login_cookie = page.headers["set-cookie"].split(";")[0]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    r = await client.post("/login", data={"name": name, "password": password, "csrf": csrf.group(1), "next": "/"},
                          headers={"cookie": login_cookie})
    assert r.status_code == 303, r.text
    return r.headers["set-cookie"].split(";")[0]


async def events(client: httpx.AsyncClient, cookie: str, query: str = "") -> AsyncGenerator[SseEvent, None]:
    """Each event of `/events{query}`, as it arrives."""
    async with client.stream("GET", f"/events{query}", headers={"cookie": cookie}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        name = ""
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                yield SseEvent(name, json.loads(line.split(":", 1)[1]), time.monotonic())


async def next_event(stream: AsyncIterator[SseEvent], wanted: str, timeout_s: float,
                     check: Callable[[Any], bool] = lambda data: True) -> SseEvent:
    """The next `wanted` event whose data passes `check`, within `timeout_s`."""
    async with asyncio.timeout(timeout_s):
        async for ev in stream:
            if ev.name == wanted and check(ev.data):
                return ev
    raise AssertionError("the event stream ended")


async def next_data(stream: AsyncIterator[SseEvent], wanted: str, timeout_s: float,
                    check: Callable[[Any], bool] = lambda data: True) -> Any:
    return (await next_event(stream, wanted, timeout_s, check)).data
