"""`/healthz`: is this controller fit to examine right now, and if not, why (no candidate data).

Read by load balancers, systemd's or a monitoring system's probes, without signing in: so the
verdict names stations, devices and cameras, never a candidate, an attempt or an address. It is
not fit ("ok": false, HTTP 503) when
- the main loop has not ticked the item clocks for `tick_s` (hung or not started: the systemd
  watchdog restarts it; this says so to anyone else watching);
- a device is offline (a device not heard from yet is not counted: the controller is starting);
- a configured camera is not recorded: no recording runs, the recorder holds no connection to it,
  or its last frame is older than `camera_silent_s`;
- the uplink to the province has been disconnected for more than `uplink_down_s` (results stay in
  the outbox meanwhile, so a short outage is not a failure);
- the evidence disk is below `storage.min_free_gb`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from station.metrics import Figures


@dataclass(frozen=True, slots=True)
class HealthLimits:
    tick_s: float = 5.0
    """The main loop ticks ten times a second; this long without a tick is a hung loop."""
    camera_silent_s: float = 10.0
    uplink_down_s: float = 300.0


@dataclass(frozen=True, slots=True)
class Problem:
    what: str
    """main_loop, device, camera, uplink or disk."""
    who: str
    """station/device, station/camera, or '' for the site."""
    detail: str


@dataclass(frozen=True, slots=True)
class Verdict:
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def document(self) -> dict[str, Any]:
        """The /healthz body."""
        return {"ok": self.ok, "problems": [{"what": p.what, "who": p.who, "detail": p.detail}
                                            for p in self.problems]}


def judge(f: Figures, limits: HealthLimits | None = None) -> Verdict:
    lim = limits or HealthLimits()
    out: list[Problem] = []
    if f.since_tick_s is None:
        out.append(Problem("main_loop", "", "the main loop has not ticked yet"))
    elif f.since_tick_s > lim.tick_s:
        out.append(Problem("main_loop", "", f"the main loop has not ticked for {f.since_tick_s:.1f} s "
                                            f"(limit {lim.tick_s:g} s)"))
    for d in f.devices:
        if d.online is False:
            out.append(Problem("device", f"{d.station}/{d.device}", "offline"))
    recorded = {(s, c): snap for s, c, snap in f.cameras}
    for station, camera in f.cameras_configured:
        who = f"{station}/{camera}"
        snap = recorded.get((station, camera))
        if not f.recording:
            out.append(Problem("camera", who, "not recorded: no evidence recording runs"))
        elif snap is None:
            out.append(Problem("camera", who, "not recorded by this controller"))
        elif not snap.connected:
            out.append(Problem("camera", who, "not recording: not connected"))
        elif snap.last_frame_age_s is None or snap.last_frame_age_s > lim.camera_silent_s:
            age = "no frame yet" if snap.last_frame_age_s is None else f"no frame for {snap.last_frame_age_s:.0f} s"
            out.append(Problem("camera", who, f"not recording: {age}"))
    if f.uplink_down_s is not None and f.uplink_down_s > lim.uplink_down_s:
        out.append(Problem("uplink", "", f"disconnected from the province's broker for {f.uplink_down_s:.0f} s "
                                         f"(limit {lim.uplink_down_s:g} s); results wait in the outbox"))
    if f.disk_level is not None:
        free = "" if f.disk_free_bytes is None else f": {f.disk_free_bytes / 1e9:.1f} GB free"
        out.append(Problem("disk", "", f"{f.disk_level}{free}"))
    return Verdict(tuple(out))
