"""The hall's live feed: one task per event loop turns the station's event stream into what the
SSE clients receive (`state` snapshots, `timeline`, `sample` and `alarm` events).

Why one task and not one per browser: a snapshot reads the database (the running score over the
stored timeline); built once per change and handed to every watcher, twenty open hall pages cost
what one does. A station's snapshot is rebuilt at most `MIN_GAP_S` apart (4 per second), so a
burst of events costs one rebuild, and within that of the event that changed it. Samples only mark
a station dirty; its running score is scored again at most every `SAMPLE_SCORE_S` for them (an
item's start or end, a finding or a mark scores it at once). Every `REFRESH_S` every station is
rebuilt anyway (device and camera health change without events); only changed snapshots are sent.

In a hall split over boxes the other boxes' stations are rebuilt from their live messages
(proctor_ui.hall_peers) when one arrives, and at each refresh (so one that goes quiet turns stale).

Alarms are only events, so the feed keeps those raised and not cleared; start it early
(`await HallFeed.of(ui).start()`, the hall page and /events do) so none raised before the first
browser connects is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from proctor_ui.context import UiContext
from proctor_ui.hall_peers import box_mark, peer_snapshot
from proctor_ui.hall_snapshot import Scored, Snapshot, build_snapshot
from proctor_ui.uplink_alarm import UPLINK_BACKLOG, UPLINK_EVERY_S, UPLINK_REJECTED, backlog_alarm, rejected_cleared
from station.events import (
    AlarmEvent,
    DeviceHealthEvent,
    DisciplineEvent,
    Event,
    FindingEvent,
    ItemStateEvent,
    Lost,
    SampleEvent,
)

log = logging.getLogger(__name__)

MIN_GAP_S = 0.25
SAMPLE_SCORE_S = 2.0
REFRESH_S = 5.0
SAMPLE_GAP_S = 0.2
"""A signal's samples go to watchers at most 5 per second (the station page's live readings)."""
WATCH_MAX = 500

Message = tuple[str, dict[str, Any]]
"""(SSE event name, data)."""

_feeds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, HallFeed]] = weakref.WeakKeyDictionary()


class Watch:
    """One SSE client's queue: the latest snapshot per station (older ones are replaced, never
    queued) and, in order, the other events (the oldest dropped past WATCH_MAX)."""

    def __init__(self, station: str | None, samples: bool) -> None:
        self.station = station
        self.samples = samples
        self._states: dict[str, Snapshot] = {}
        self._events: deque[Message] = deque(maxlen=WATCH_MAX)
        self._ready = asyncio.Event()

    def wants(self, station: str | None) -> bool:
        return self.station is None or station is None or station == self.station

    def put_state(self, snap: Snapshot) -> None:
        if self.wants(snap["station"]):
            self._states[snap["station"]] = snap
            self._ready.set()

    def put(self, message: Message) -> None:
        if message[0] == "sample" and not self.samples:
            return
        if self.wants(message[1].get("station")):
            self._events.append(message)
            self._ready.set()

    async def __aiter__(self) -> AsyncIterator[Message]:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._events:
                yield self._events.popleft()
            while self._states:
                station = next(iter(self._states))
                yield "state", self._states.pop(station)


class HallFeed:
    """The hall's feed for one UiContext on the running event loop (`HallFeed.of(ui)`)."""

    def __init__(self, ui: UiContext) -> None:
        self.ui = ui
        config = ui.services.config
        self.stations = {st.id: st for st in config.stations}
        self.peers = ui.peers
        self.remote = {st.id: st for st in config.whole_site.stations if self.peers and st.id in self.peers.remote}
        """The stations other boxes run (a hall split over boxes), shown from their live messages."""
        self._own_box = box_mark(config.this_box, True) if config.this_box is not None else None
        self._unlisten: Any = None
        self.alarms: dict[tuple[str, str | None], AlarmEvent] = {}
        """Raised and not cleared, by (code, station)."""
        self.raised: dict[str, int] = {}
        """Alarms raised since the feed started, by code (for /metrics)."""
        self.snapshots: dict[str, Snapshot] = {}
        self._watches: set[Watch] = set()
        self._dirty: set[str] = set()
        self._sample_dirty: set[str] = set()
        self._score_version: dict[str, int] = dict.fromkeys(self.stations, 0)
        self._last_sample_score: dict[str, float] = {}
        self._sheets: dict[str, tuple[int, Scored | None]] = {}
        self._sample_sent: dict[tuple[str, str, str], float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def of(cls, ui: UiContext) -> HallFeed:
        """The feed of `ui` on the running loop (made on first use)."""
        per_loop = _feeds.setdefault(asyncio.get_running_loop(), {})
        feed = per_loop.get(id(ui))
        if feed is None or feed.ui is not ui:
            feed = per_loop[id(ui)] = cls(ui)
        return feed

    async def start(self) -> None:
        """Start the feed's task (once); it runs until the event loop ends or `stop()`."""
        if self.peers is not None and self._unlisten is None:
            self._unlisten = self.peers.listen(self._peer_heard)
        if self._task is None or self._task.done():
            sub = self.ui.services.events.subscribe("proctor UI hall", maxsize=5000)
            self._task = asyncio.create_task(self._run(sub), name="proctor UI hall feed")

    async def stop(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def current(self, stations: list[str]) -> list[Snapshot]:
        """Fresh snapshots of `stations` (for a first paint or a new SSE client)."""
        snaps = await asyncio.to_thread(self._build_all, stations)
        self.snapshots.update({s["station"]: s for s in snaps})
        return snaps

    def active_alarms(self, station: str | None = None) -> list[dict[str, Any]]:
        """Alarms raised and not cleared, as `alarm` event data: site-wide ones (station None) only,
        or those of one station."""
        return [_alarm_data(e) for (_c, where), e in self.alarms.items() if where == station]

    @contextlib.asynccontextmanager
    async def watch(self, station: str | None = None, samples: bool = False) -> AsyncIterator[Watch]:
        await self.start()
        w = Watch(station, samples)
        self._watches.add(w)
        try:
            yield w
        finally:
            self._watches.discard(w)

    # -- the task --------------------------------------------------------------------------------

    async def _run(self, sub: Any) -> None:
        reader = asyncio.create_task(self._read(sub), name="proctor UI hall events")
        try:
            await self._publish_loop()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            sub.close()

    async def _read(self, sub: Any) -> None:
        while True:
            self._take(await sub.get())

    def _take(self, ev: Event | Lost) -> None:
        """Note what `ev` changes; timeline, alarm and sample events go to the watchers at once."""
        if isinstance(ev, SampleEvent):
            station = ev.device.station
            self._sample_dirty.add(station)
            key = (station, ev.device.name, ev.signal)
            now = time.monotonic()
            if now - self._sample_sent.get(key, 0.0) >= SAMPLE_GAP_S:
                self._sample_sent[key] = now
                self._send(("sample", {"station": station, "device": ev.device.name, "signal": ev.signal,
                                       "value": _plain(ev.value), "t_utc_ns": ev.t_utc_ns}))
            return
        if isinstance(ev, ItemStateEvent | FindingEvent | DisciplineEvent):
            self._mark(ev.station, rescore=True)
            self._send(("timeline", _timeline(ev)))
        elif isinstance(ev, AlarmEvent):
            self._alarm(ev)
        elif isinstance(ev, DeviceHealthEvent):
            self._mark(ev.device.station, rescore=False)
        elif isinstance(ev, Lost):
            for station in self.stations:
                self._mark(station, rescore=True)

    def _alarm(self, ev: AlarmEvent) -> None:
        key = (ev.code, ev.station)
        if ev.cleared:
            self.alarms.pop(key, None)
        else:
            if key not in self.alarms:  # counted when raised, not when a raised alarm's text changes
                self.raised[ev.code] = self.raised.get(ev.code, 0) + 1
            self.alarms[key] = ev
        self._send(("alarm", _alarm_data(ev)))
        if ev.station is not None:
            self._mark(ev.station, rescore=False)

    def _mark(self, station: str, rescore: bool) -> None:
        if station not in self.stations:
            return
        if rescore:
            self._score_version[station] += 1
        self._dirty.add(station)
        self._wake.set()

    def _peer_heard(self, station: str) -> None:
        """Another box's station spoke: its tile is rebuilt with the next burst (within ~0.5 s)."""
        if station in self.remote:
            self._dirty.add(station)
            self._wake.set()

    def _send(self, message: Message) -> None:
        for w in self._watches:
            w.put(message)

    async def _publish_loop(self) -> None:
        last_refresh = last_uplink = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(MIN_GAP_S):
                    await self._wake.wait()
            await asyncio.sleep(MIN_GAP_S)  # gather the burst: at most 4 rebuilds a second
            self._wake.clear()
            now = time.monotonic()
            for station in list(self._sample_dirty):
                if now - self._last_sample_score.get(station, 0.0) >= SAMPLE_SCORE_S:
                    self._last_sample_score[station] = now
                    self._sample_dirty.discard(station)
                    self._mark(station, rescore=True)
            if now - last_refresh >= REFRESH_S:
                last_refresh = now
                self._dirty.update(self.stations)
                self._dirty.update(self.remote)
            if self.ui.uplink_health is not None and now - last_uplink >= UPLINK_EVERY_S:
                last_uplink = now
                await self._check_uplink()
            dirty, self._dirty = sorted(self._dirty), set()
            if not dirty or not self._watches:  # nobody to send to: a new watcher gets fresh ones (`current`)
                continue
            try:
                snaps = await asyncio.to_thread(self._build_all, dirty)
            except Exception:  # a broken snapshot must not end the hall's feed for everyone
                log.exception("hall: snapshots of %s could not be built", dirty)
                continue
            for snap in snaps:
                if _changed(self.snapshots.get(snap["station"]), snap):
                    self.snapshots[snap["station"]] = snap
                    for w in self._watches:
                        w.put_state(snap)

    def _build_all(self, stations: list[str]) -> list[Snapshot]:
        out = []
        for s in stations:
            if s in self.stations:
                snap = build_snapshot(self.ui, self.stations[s], self.alarms, self._sheets,
                                      self._score_version.get(s, 0))
                if self._own_box is not None:
                    snap["box"] = self._own_box
                out.append(snap)
            elif s in self.remote and self.peers is not None:
                heard = self.peers.heard(s)
                out.append(peer_snapshot(self.remote[s], self.peers.remote[s], heard,
                                         None if heard is None else self.peers.age_s(heard), self.peers.stale_after_s,
                                         self._item_title))
        return out

    def _item_title(self, operation: str, code: str) -> str:
        return self.ui.services.rubric(operation).item(code).title_zh

    async def _check_uplink(self) -> None:
        assert self.ui.uplink_health is not None
        try:
            health = await asyncio.to_thread(self.ui.uplink_health)
        except Exception as err:  # the outbox cannot be read (the storage watch alarms on the store itself)
            log.warning("hall: the uplink's health is unreadable (%s); its alarms stay as they are", err)
            health = None
        now_utc = self.ui.services.clock.utc_ns()
        for change in (backlog_alarm(health, (UPLINK_BACKLOG, None) in self.alarms, now_utc),
                       rejected_cleared(health, (UPLINK_REJECTED, None) in self.alarms, now_utc)):
            if change is not None:
                self._alarm(change)


def _changed(old: Snapshot | None, new: Snapshot) -> bool:
    if old is None or new.get("remote"):  # another box's: sent at each rebuild, with how long ago it was heard
        return True
    keep = {k: v for k, v in new.items() if k != "item"}
    before = {k: v for k, v in old.items() if k != "item"}
    if keep != before:
        return True
    # time left moves every rebuild; the browser counts down itself, so only a change of item or
    # pause, or a drift over 2 s, is worth sending
    a, b = old.get("item"), new.get("item")
    if a is None or b is None:
        return a != b
    return (a["code"], a["paused"]) != (b["code"], b["paused"]) or abs(a["time_left_s"] - b["time_left_s"]) > 2


def _timeline(ev: ItemStateEvent | FindingEvent | DisciplineEvent) -> dict[str, Any]:
    if isinstance(ev, ItemStateEvent):
        return {"station": ev.station, "attempt_id": ev.attempt_id, "kind": ev.kind, "item": ev.item,
                "detail": ev.detail, "t_utc_ns": ev.t_utc_ns}
    if isinstance(ev, FindingEvent):
        return {"station": ev.station, "attempt_id": ev.attempt_id, "kind": "finding", "item": ev.item,
                "detail": f"{ev.code}: {ev.detail}", "t_utc_ns": ev.t_utc_ns}
    return {"station": ev.station, "attempt_id": ev.attempt_id, "kind": "discipline", "item": "",
            "detail": f"{ev.category}: {ev.note} ({ev.recorded_by})", "t_utc_ns": ev.t_utc_ns}


def _alarm_data(ev: AlarmEvent) -> dict[str, Any]:
    return {"code": ev.code, "what": ev.what, "todo": ev.todo, "station": ev.station, "t_utc_ns": ev.t_utc_ns,
            "cleared": ev.cleared}


def _plain(value: Any) -> Any:
    """A sample's value as JSON can carry it (ID card reads are dataclasses or dicts)."""
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)
