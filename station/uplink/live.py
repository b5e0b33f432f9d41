"""Live station state for remote invigilation (`examstation/v1/{site}/{station}/live`, QoS 0).

What a provincial invigilator's wall shows for each station: the attempt in progress, its state,
the running item and its time left, and which devices answer. Built from the service layer and
the device hub on each publish; nothing here is stored, and a lost message is simply replaced
by the next one (QoS 0).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from devices.ref import DeviceRef
from station.config import SiteConfig
from station.result_document import iso_utc
from station.services import StationServices

LIVE_SCHEMA = "examstation/live/v1"


def live_documents(config: SiteConfig, services: StationServices, devices: Iterable[tuple[DeviceRef, bool | None]],
                   now_mono_ns: int, now_utc_ns: int) -> list[dict[str, Any]]:
    """One live document per station. `devices`: (device, online) pairs from the device hub."""
    online: dict[str, dict[str, bool]] = {}
    for ref, up in devices:
        online.setdefault(ref.station, {})[ref.name] = bool(up)
    docs = []
    for st in config.stations:
        attempt_id = services.active_attempt(st.id)
        state = item = None
        remaining = None
        if attempt_id is not None:
            a = services.attempt(attempt_id)
            state = a.state.value
            running = a.running_item
            if running is not None:
                item = running.code
                remaining = round(max(0.0, running.remaining_s(now_mono_ns)), 1)
        docs.append({"schema": LIVE_SCHEMA, "site": config.site.id, "station": st.id, "at": iso_utc(now_utc_ns),
                     "attempt_id": attempt_id, "state": state, "item": item, "remaining_s": remaining,
                     "devices": online.get(st.id, {})})
    return docs
