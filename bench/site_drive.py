"""What people do to the controller during the site benchmark, over its real proctor UI.

- `Examiner`: signed in through the login form, it runs each station's candidates one after
  another through the station page and the review page, exactly the POSTs the UI's buttons send:
  check-in (manual), assign K21, start, end (done), score, reviewed, the candidate's signature, the
  examiner's signature. The last signature stores the signed result and queues it for the province.
- `tile_viewer`: one hall tile per station, the WebSocket of JPEGs of the camera's MJPEG
  sub-stream that the hall page opens (`/live/STATION/CAMERA/jpeg`), counting the frames it gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field

import httpx
from websockets.asyncio.client import connect

ITEM = "K21"
SUBJECT = "K2"
START_ANYWAY = "基准测试：考位保持上一考生操作后的状态"
"""The examiner's reason to start with the rig not at rest (the simulated candidates keep acting)."""
GAP_REASON = "基准测试：设备曾离线，按缺口评分"


@dataclass
class DriveStats:
    attempts_started: int = 0
    results_signed: int = 0
    items_with_gap: int = 0
    errors: list[str] = field(default_factory=list)
    action_s: list[float] = field(default_factory=list)
    """Seconds each UI action took (request to answer)."""


class Examiner:
    """One signed-in examiner session (cookie and CSRF token) shared by the station drivers."""

    def __init__(self, base_url: str, name: str, password: str) -> None:
        self.base_url = base_url
        self.name = name
        self.password = password
        self.cookie = ""
        self.csrf = ""
        self.stats = DriveStats()
        self.client = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(90.0),
                                        limits=httpx.Limits(max_connections=200))

    async def __aenter__(self) -> Examiner:
        page = await self.client.get("/login")
        login_cookie = page.headers["set-cookie"].split(";")[0]
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        if token is None:
            raise RuntimeError("no CSRF field on the login page")
        r = await self.client.post("/login", data={"name": self.name, "password": self.password,
                                                   "csrf": token.group(1), "next": "/"},
                                   headers={"cookie": login_cookie})
        if r.status_code != 303:
            raise RuntimeError(f"sign-in as {self.name} failed: {r.status_code} {r.text[:200]}")
        self.cookie = r.headers["set-cookie"].split(";")[0]
        home = await self.client.get("/", headers={"cookie": self.cookie, "accept": "text/html"})
        found = re.search(r'data-csrf="([^"]+)"', home.text)
        if found is None:
            raise RuntimeError(f"no CSRF token on the hall page ({home.status_code})")
        self.csrf = found.group(1)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def post(self, path: str, **data: str) -> tuple[int, str]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        r = await self.client.post(path, data=data, headers={"cookie": self.cookie, "x-csrf-token": self.csrf,
                                                             "hx-request": "true"})
        self.stats.action_s.append(loop.time() - t0)
        return r.status_code, r.text

    async def must(self, path: str, **data: str) -> str:
        status, text = await self.post(path, **data)
        if status != 200:
            raise RuntimeError(f"POST {path} {data}: {status} {_message(text)}")
        return text

    async def run_station(self, station: str, candidates: list[str], item_s: float, stop: asyncio.Event,
                          delay_s: float = 0.0) -> None:
        """Candidates one after another until `stop`, the first after `delay_s`; an item running when
        `stop` is set ends at once and its result is signed, so no attempt is left open."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay_s)
        for id_number in candidates:
            if stop.is_set():
                return
            try:
                await self._one(station, id_number, item_s, stop)
            except Exception as err:  # a failed action is a finding of the benchmark
                self.stats.errors.append(f"{station} {id_number}: {err}")
                return

    async def _one(self, station: str, id_number: str, item_s: float, stop: asyncio.Event) -> None:
        at = f"/station/{station}"
        await self.must(f"{at}/check-in", id_number=id_number, method="manual")
        await self.must(f"{at}/assign", **{f"item_{SUBJECT}": ITEM})
        await self.must(f"{at}/start", item=ITEM, start_anyway=START_ANYWAY)
        self.stats.attempts_started += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), item_s)
        status, text = await self.post(f"{at}/end", reason="done")
        if status == 422 and "with_gap" in text:
            self.stats.items_with_gap += 1
            text = await self.must(f"{at}/end", reason="done", with_gap=GAP_REASON)
        elif status != 200:
            raise RuntimeError(f"POST {at}/end: {status} {_message(text)}")
        found = re.search(r"/attempt/([^/\"]+)/review", text)
        if found is None:
            raise RuntimeError(f"{station}: the panel after the end names no attempt to review")
        review = f"/attempt/{found.group(1)}"
        await self.must(f"{review}/score")
        await self.must(f"{review}/reviewed")
        await self.must(f"{review}/candidate", item=ITEM, decision="signed")
        await self.must(f"{review}/sign")
        self.stats.results_signed += 1


def _message(html: str) -> str:
    text = re.sub(r"<[^>]+>", " ", html)
    return " ".join(text.split())[:300]


async def tile_viewer(base_url: str, cookie: str, station: str, camera: str, frames: dict[str, int]) -> None:
    """A hall tile: the JPEG WebSocket of the camera's sub-stream, frames counted in `frames`."""
    key = f"{station}/{camera}"
    frames.setdefault(key, 0)
    url = base_url.rstrip("/").replace("http://", "ws://") + f"/live/{station}/{camera}/jpeg"
    async with connect(url, additional_headers={"cookie": cookie}, max_size=None, compression=None) as ws:
        async for _ in ws:
            frames[key] += 1


async def hall_page(base_url: str, cookie: str, events: dict[str, int]) -> None:
    """A proctor's open hall page: its live stream (/events, every station's state, timeline and
    alarms), events counted by name in `events`. With one open, the hall feed builds and scores
    each station's snapshot as it changes; with none it does not (proctor_ui.hall_state)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(None)) as client, \
            client.stream("GET", "/events", headers={"cookie": cookie, "accept": "text/event-stream"}) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                name = line[len("event:"):].strip()
                events[name] = events.get(name, 0) + 1
