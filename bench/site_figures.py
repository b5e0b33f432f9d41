"""The site benchmark's figures: the controller's /metrics on one side, the simulator's counts on the other.

A loss is looked for from both ends:
- samples: every value the simulated candidates changed on a bench or a cabinet (held for ten polls
  or more) must come back as a sample the controller accepted (`examstation_samples` minus
  `examstation_samples_refused`, per device, over the window); every frame a manikin sent must be a
  frame the controller's reader took (`examstation_serial_frames`); a refused sample counts as lost
  too (the poller offers it again, but the store fell behind).
- frames: every H.264 frame a camera sent over RTSP must be a packet the recorder wrote into a
  segment (`examstation_camera_frames`, whole run, cameras frozen a second before the count), with
  no gap and no drop over the window (up to the freeze); every JPEG of the
  sub-stream the camera sent must reach the hall tile watching it.
- polls: `examstation_device_polls_late` / `examstation_device_polls` over the window, Modbus devices.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

HELD_BY_DEMUXER = 1
"""The newest frame a camera sent stays in the recorder's RTSP demuxer until the next one arrives
(it cannot know the frame is complete before): with the cameras frozen, each recorder has written
every frame but that one. A frame lost in between makes the camera short by 2 or more."""
Metrics = dict[str, dict[tuple[tuple[str, str], ...], float]]


def parse_metrics(text: str) -> Metrics:
    """Sample name (`examstation_samples_total`) -> labels -> value."""
    out: Metrics = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def by_device(m: Metrics, name: str) -> dict[str, float]:
    """`STATION/device` (or `STATION/camera`) -> value of a per-device or per-camera metric."""
    out: dict[str, float] = {}
    for labels, value in m.get(name, {}).items():
        d = dict(labels)
        out[f"{d['station']}/{d.get('device', d.get('camera', ''))}"] = value
    return out


def total(m: Metrics, name: str) -> float:
    return sum(m.get(name, {}).values())


def delta(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    return {k: b.get(k, 0.0) - a.get(k, 0.0) for k in b}


def figures(m0: Metrics, m1: Metrics, r0: dict[str, Any], r1: dict[str, Any], tiles: Mapping[str, int],
            before_freeze: Metrics, window_end: Metrics) -> dict[str, Any]:
    """Loss over the run between (m0, r0) and (r1, m1). Gaps and drops are counted up to
    `before_freeze` (scraped just before the cameras froze): a frozen camera opens a gap after the
    recorder's stall limit, which is the benchmark's doing. Polls are judged from m0 to `window_end`
    (the end of the measured minutes): after it every station's examiner ends and signs at once to
    close the run, a burst no hall produces."""
    samples = delta(by_device(m0, "examstation_samples_total"), by_device(m1, "examstation_samples_total"))
    refused = delta(by_device(m0, "examstation_samples_refused_total"),
                    by_device(m1, "examstation_samples_refused_total"))
    changes: dict[str, int] = r1["changes"]
    short = {dev: n - (samples.get(dev, 0) - refused.get(dev, 0)) for dev, n in changes.items()}
    serial = delta(by_device(m0, "examstation_serial_frames_total"), by_device(m1, "examstation_serial_frames_total"))
    manikin = {dev: r1["manikin_frames"][dev] - r0["manikin_frames"].get(dev, 0) - serial.get(dev, 0)
               for dev in r1["manikin_frames"]}
    refused_n = sum(refused.values())
    samples_lost = sum(max(0, n) for n in short.values()) + sum(max(0, n) for n in manikin.values()) + refused_n

    recorded = by_device(m1, "examstation_camera_frames_total")
    gaps = delta(by_device(m0, "examstation_camera_gaps_total"),
                 by_device(before_freeze, "examstation_camera_gaps_total"))
    dropped = delta(by_device(m0, "examstation_camera_frames_dropped_total"),
                    by_device(before_freeze, "examstation_camera_frames_dropped_total"))
    cams: dict[str, dict[str, Any]] = r1["cameras"]
    main_short = {c: v["main_sent"] - HELD_BY_DEMUXER - recorded.get(c, 0) for c, v in cams.items()}
    tile_short = {c: v["sub_sent"] - tiles.get(c, 0) for c, v in cams.items()}
    frames_lost = (sum(max(0, n) for n in main_short.values()) + sum(gaps.values()) + sum(dropped.values())
                   + sum(max(0, n) for n in tile_short.values()))

    w = window_end
    polls = total(w, "examstation_device_polls_total") - total(m0, "examstation_device_polls_total")
    late = total(w, "examstation_device_polls_late_total") - total(m0, "examstation_device_polls_late_total")
    failed = total(m1, "examstation_device_polls_failed_total") - total(m0, "examstation_device_polls_failed_total")
    late_dev = delta(by_device(m0, "examstation_device_polls_late_total"),
                     by_device(w, "examstation_device_polls_late_total"))
    late_by_kind: dict[str, int] = {}
    for dev, n in late_dev.items():
        kind = dev.split("/", 1)[1]
        late_by_kind[kind] = late_by_kind.get(kind, 0) + int(n)
    return {
        "samples_lost": int(samples_lost),
        "frames_lost": int(frames_lost),
        "poll_deadline_miss_rate": round(late / polls, 6) if polls else None,
        "polls": int(polls), "polls_late": int(late), "polls_failed": int(failed), "polls_late_by_device": late_by_kind,
        "samples_changed_by_sim": sum(changes.values()),
        "samples_accepted": int(sum(samples.values()) - refused_n),
        "samples_refused": int(refused_n),
        "samples_short_by_device": {k: int(v) for k, v in short.items() if v},
        "manikin_frames_sent": sum(r1["manikin_frames"][d] - r0["manikin_frames"].get(d, 0) for d in manikin),
        "manikin_frames_short": {k: int(v) for k, v in manikin.items() if v},
        "camera_frames_sent": sum(v["main_sent"] for v in cams.values()),
        "camera_frames_recorded": int(sum(recorded.values())),
        "camera_frames_short": {k: int(v) for k, v in main_short.items() if v},
        "camera_gaps": int(sum(gaps.values())), "camera_frames_dropped": int(sum(dropped.values())),
        "camera_frames_dropped_by_sim": sum(v["main_dropped"] for v in cams.values()),
        "tile_frames_sent": sum(v["sub_sent"] for v in cams.values()),
        "tile_frames_received": int(sum(tiles.values())),
        "tile_frames_short": {k: int(v) for k, v in tile_short.items() if v},
    }
