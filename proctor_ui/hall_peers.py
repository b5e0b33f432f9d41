"""Another box's station as this box's hall shows it: a `state` snapshot built from its live message.

Why the same snapshot shape as a local station (proctor_ui.hall_snapshot): the tile, its live
updates (static/hall.js) and the SSE contract stay one; a remote snapshot adds `box` (who runs the
station, and where its UI is) and `remote` (how long ago it was heard, and whether that is too long).

What a remote tile cannot show, and why: no camera picture (video stays on the box that records it;
the tile says where to watch), no candidate (the live topic carries no personal data: it may reach
the province's broker) and no running score (the owning box scores; its UI shows it). A station not
heard for `stale_after_s` is marked stale, its devices unknown: a frozen tile would look live.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from station.box import Box
from station.config import Station
from station.uplink.peer_live import Heard

Snapshot = dict[str, Any]
STALE_CODE = "box.stale"


def box_mark(box: Box, own: bool) -> dict[str, Any]:
    """The `box` member of a snapshot: the box that runs the station, and whether it is this one."""
    return {"id": box.id, "name": box.name, "ui_url": box.ui_url.rstrip("/") if box.ui_url else None, "own": own}


def peer_snapshot(st: Station, box: Box, heard: Heard | None, age_s: float | None, stale_after_s: float,
                  title: Callable[[str, str], str]) -> Snapshot:
    """The snapshot of station `st`, run by `box`, from its latest live message (`heard`, `age_s` ago;
    None: not heard since this box started). `title(operation, item_code)` names an item."""
    stale = heard is None or age_s is None or age_s > stale_after_s
    snap: Snapshot = {"station": st.id, "operation": st.operation, "attempt_id": None, "candidate": None,
                      "state": "idle", "item": None, "total": None, "deductions": [], "vetoed": False,
                      "devices": [], "cameras": [], "alarms": [], "discipline": [], "box": box_mark(box, False),
                      "remote": {"heard_s": None if age_s is None else round(age_s, 1), "stale": stale}}
    doc = heard.doc if heard is not None else {}
    online: dict[str, bool] = doc.get("devices", {}) if not stale else {}
    snap["devices"] = [{"name": d.name, "online": online.get(d.name),
                        "detail": "" if d.name in online else _unknown(box, heard is None)} for d in st.devices]
    if heard is not None and not stale:
        snap["attempt_id"] = doc.get("attempt_id")
        snap["state"] = doc.get("state") or "idle"
        snap["item"] = _item(st, doc, age_s or 0.0, title)
    snap["alarms"] = _alarms(snap, box, heard is None, age_s)
    return snap


def _item(st: Station, doc: dict[str, Any], age_s: float, title: Callable[[str, str], str]) -> dict[str, Any] | None:
    code, left = doc.get("item"), doc.get("remaining_s")
    if code is None or left is None:
        return None
    paused = doc.get("state") != "running"
    try:
        name = title(st.operation, code)
    except (KeyError, LookupError, ValueError):  # a rubric edition this box does not have
        name = ""
    # the message is `age_s` old: a running clock has gone on meanwhile
    return {"code": code, "title": name, "started_utc_ns": None, "limit_s": None,
            "time_left_s": round(max(0.0, left - (0.0 if paused else age_s)), 1), "paused": paused}


def _unknown(box: Box, never: bool) -> str:
    return f"{box.name}：{'尚无实时数据' if never else '实时数据中断'}"


def _alarms(snap: Snapshot, box: Box, never: bool, age_s: float | None) -> list[dict[str, Any]]:
    if snap["remote"]["stale"]:
        what = (f"{box.name}（{box.id}）尚无本考位的实时数据" if never
                else f"{box.name}（{box.id}）已 {int(age_s or 0)} 秒没有本考位的实时数据")
        return [{"code": STALE_CODE, "what": what, "t_utc_ns": 0,
                 "todo": f"确认 {box.name} 在运行，且能连上考点的 MQTT 服务器；本考位请在 {box.name} 上监看"}]
    return [{"code": "device.lost", "what": f"设备 {d['name']} 离线", "t_utc_ns": 0,
             "todo": f"检查设备电源与网线；由 {box.name} 的考评员处置"}
            for d in snap["devices"] if d["online"] is False]
