"""One station as the hall shows it: the `state` snapshot of the SSE contract, built from the services.

Why one builder: the hall's first paint (Jinja2), the `state` events and the station page all show
the same facts; built in one place they cannot disagree. Building reads the database (the running
score, the candidate's name, discipline incidents): call `build_snapshot` off the event loop.

The snapshot (JSON types only):
    {"station", "operation", "attempt_id" | None, "candidate": {"id_number", "name"} | None,
     "state" (attempt state or "idle"), "item": {"code", "title", "started_utc_ns", "limit_s",
     "time_left_s", "paused"} | None, "total": float | None (the running or last item's score of its
     own 100), "deductions": [{"item", "row", "points",
     "reason", "t_utc_ns"}], "vetoed": bool, "devices": [{"name", "online", "detail"}],
     "cameras": [{"id", "ok", "detail"}], "alarms": [{"code", "what", "todo", "t_utc_ns"}],
     "discipline": [{"id", "category", "note", "recorded_by", "t_utc_ns"}]}
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from typing import Any

from proctor_ui.context import UiContext
from scoring.sheet import ScoreSheet
from station import session as sm
from station.config import Station
from station.errors import ServiceError
from station.events import AlarmEvent
from station.live_score import candidate_name, provisional, running_score

log = logging.getLogger(__name__)

Snapshot = dict[str, Any]
Scored = tuple[ScoreSheet, dict[str, int]]
"""A provisional sheet and each unfinished item's provisional end (station.live_score.provisional)."""

AWAITING = (sm.State.ENDED, sm.State.SCORED, sm.State.REVIEWED)
"""Items over, result not signed: the tile still shows the attempt (someone must sign it)."""


def attempt_at(ui: UiContext, station: str) -> str | None:
    """The attempt the station's tile shows: the one in progress, else one awaiting signatures."""
    active = ui.services.active_attempt(station)
    if active is not None:
        return active
    waiting = [aid for st, aid in ui.services.awaiting_sign_off() if st == station]
    return waiting[-1] if waiting else None


def build_snapshot(ui: UiContext, st: Station, alarms: Mapping[tuple[str, str | None], AlarmEvent],
                   sheet_cache: dict[str, tuple[int, Scored | None]] | None = None,
                   score_version: int = 0) -> Snapshot:
    """The station's snapshot now. `alarms`: the alarms raised and not cleared, by (code, station).
    `sheet_cache`: attempt -> (version, sheet); a sheet is scored again only when `score_version`
    moved on (the hall bumps it on lifecycle events and, at most every few seconds, on samples)."""
    services = ui.services
    snap: Snapshot = {"station": st.id, "operation": st.operation, "attempt_id": None, "candidate": None,
                      "state": "idle", "item": None, "total": None, "deductions": [], "vetoed": False,
                      "devices": _devices(ui, st.id), "cameras": _cameras(ui, st, alarms), "alarms": [],
                      "discipline": []}
    aid = attempt_at(ui, st.id)
    a = services.attempt(aid) if aid is not None else None
    if a is not None:
        snap["attempt_id"] = a.attempt_id
        snap["state"] = a.state.value
        snap["candidate"] = {"id_number": a.candidate, "name": candidate_name(services, a.candidate) or ""}
        snap["item"] = _item(ui, a)
        scored = _sheet(ui, a, sheet_cache, score_version)
        if scored is not None and scored[0].items:
            sheet, ends = scored
            snap["total"], snap["deductions"] = _running(a, sheet, ends)
            snap["vetoed"] = sheet.veto_failed
    snap["alarms"] = _alarms(snap, alarms, st.id)
    snap["discipline"] = _discipline(ui, st.id, aid)
    return snap


def _item(ui: UiContext, a: sm.Attempt) -> dict[str, Any] | None:
    it = a.running_item
    if it is None or it.started_ns is None:
        return None
    clock = ui.services.clock
    now_mono, now_utc = clock.mono_ns(), clock.utc_ns()
    title = ui.services.rubric(a.operation).item(it.code).title_zh
    return {"code": it.code, "title": title, "started_utc_ns": now_utc - (now_mono - it.started_ns),
            "limit_s": it.time_limit_s, "time_left_s": round(it.remaining_s(now_mono), 1),
            "paused": it.paused_since_ns is not None}


def _sheet(ui: UiContext, a: sm.Attempt, cache: dict[str, tuple[int, Scored | None]] | None,
           version: int) -> Scored | None:
    if not any(i.started_ns is not None for i in a.items):
        return None
    if cache is not None and a.attempt_id in cache and cache[a.attempt_id][0] == version:
        return cache[a.attempt_id][1]
    try:
        sheet: Scored | None = provisional(ui.services, a.attempt_id)
    except ServiceError as err:
        log.warning("hall: %s", err)
        sheet = None
    if cache is not None:
        cache[a.attempt_id] = (version, sheet)
    return sheet


def _running(a: sm.Attempt, sheet: ScoreSheet, ends: dict[str, int]) -> tuple[float, list[dict[str, Any]]]:
    """The running (or last taken) item's score of its own 100 points (a partial paper's weighted
    total would read as a failure to anyone in the hall), and every item's deductions charged so
    far, oldest first; monotonic times are turned into UTC from each item's start."""
    running = a.running_item
    code = running.code if running is not None else sheet.items[-1].code
    shown = next((i for i in sheet.items if i.code == code), sheet.items[-1])
    total = running_score(shown, ends.get(shown.code))[0]
    out: list[dict[str, Any]] = []
    for item in sheet.items:
        started_mono = next((i.started_ns for i in a.items if i.code == item.code), None)
        for row, d in running_score(item, ends.get(item.code))[1]:
            t = item.started_utc_ns + (d.t_from_ns - started_mono) if started_mono is not None else 0
            out.append({"item": item.code, "row": row.code, "points": d.points, "reason": d.reason_zh,
                        "t_utc_ns": t})
    out.sort(key=lambda d: d["t_utc_ns"])
    return total, out


def _devices(ui: UiContext, station: str) -> list[dict[str, Any]]:
    return [{"name": d.device.name, "online": d.online, "detail": d.detail}
            for d in ui.device_status() if d.device.station == station]


def _cameras(ui: UiContext, st: Station, alarms: Mapping[tuple[str, str | None], AlarmEvent]) -> list[dict[str, Any]]:
    """Each camera: not ok while its recording has a gap (a `camera.gap` alarm names it) or its live
    view's connection failed; the detail says which."""
    stats = ui.live.stats() if ui.live is not None else {}
    gap = alarms.get(("camera.gap", st.id))
    out = []
    for cam in st.cameras:
        label = f"{st.id}/{cam.id}"
        ok, detail = True, ""
        if gap is not None and f"{label} is not recorded" in gap.what:
            ok, detail = False, gap.what
        else:
            seen = stats.get(label)
            failing = [v for v in (seen.views.values() if seen else ()) if not v.connected and v.last_error]
            if failing:
                ok, detail = False, failing[0].last_error or ""
        out.append({"id": cam.id, "ok": ok, "detail": detail})
    return out


def _alarms(snap: Snapshot, alarms: Mapping[tuple[str, str | None], AlarmEvent], station: str) -> list[dict[str, Any]]:
    """The station's alarms: those raised for it, and what its snapshot shows must be acted on (a
    veto, a device lost)."""
    out = [{"code": e.code, "what": e.what, "todo": e.todo, "t_utc_ns": e.t_utc_ns}
           for (_code, where), e in alarms.items() if where == station]
    if snap["vetoed"]:
        out.append({"code": "veto", "what": "否决项：本题不及格", "todo": "考评员核对否决项与视频，结束本题后复核签字",
                    "t_utc_ns": 0})
    for d in snap["devices"]:
        if d["online"] is False:
            out.append({"code": "device.lost", "what": f"设备 {d['name']} 离线：{d['detail']}",
                        "todo": "检查设备电源与网线；设备离线超过本题时长10%需考评员决定按缺失评分或重考",
                        "t_utc_ns": 0})
    return out


def _discipline(ui: UiContext, station: str, attempt_id: str | None) -> list[dict[str, Any]]:
    """Discipline incidents (station.discipline, when that module is present): the attempt's, or the
    station's recent ones between candidates."""
    try:
        discipline = importlib.import_module("station.discipline")
    except ImportError:
        return []
    book = discipline.DisciplineBook.for_services(ui.services)
    found = book.for_attempt(attempt_id) if attempt_id is not None else book.recent(station)
    return [{"id": i.id, "category": i.category, "note": i.note, "recorded_by": i.recorded_by, "t_utc_ns": i.utc_ns}
            for i in found]
