"""A K-station electrician hall for the site benchmark (bench/site.py), as a site config.

Each station has what issue 16 puts on one station of the benchmark: its wiring bench (lv-bench
profile, Modbus TCP, polled at its profile's 10 Hz), a PPE cabinet on a shared RS-485 line
(Modbus RTU, the profile's 5 Hz; `per_line` cabinets on one line at 19200 baud, as the electrician
row of examples/site.yaml is wired), a CPR manikin on its own serial port, and one 720p10 H.264
camera (RTSP main stream, recorded; MJPEG sub-stream for the hall tile). Host names, ports and
paths are placeholders: the simulator (bench/site_sim.py) rewrites them to its own endpoints, as
`examstation sim --write-config` does.

One examiner signs (exam.examiners_required: 1) so the benchmark's examiner can sign alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from station.config import SiteConfig

SITE_ID = "BENCH-HALL"
OPERATION = "低压电工作业"
PER_LINE = 4
"""Cabinets on one RS-485 line (examples/site.yaml's hall-a-485 carries four)."""


def station_id(i: int) -> str:
    """A01..A99 (then B01...): what `scenario_runner.candidate_id` builds valid ID numbers from."""
    return f"{chr(ord('A') + i // 99)}{i % 99 + 1:02d}"


def hall_data(k: int, per_line: int = PER_LINE, recording: dict[str, float] | None = None) -> dict[str, Any]:
    """The site config of a K-station hall as plain data (what the YAML file holds)."""
    if k < 1:
        raise ValueError(f"a hall needs at least one station, not {k}")
    lines = (k + per_line - 1) // per_line
    buses = [{"id": f"hall-485-{n + 1}", "port": f"/dev/serial/by-id/usb-hall-485-{n + 1}", "baudrate": 19200,
              "parity": "N"} for n in range(lines)]
    stations = []
    for i in range(k):
        sid = station_id(i)
        low = sid.lower()
        stations.append({
            "id": sid,
            "operation": OPERATION,
            "devices": [
                {"name": "bench", "kind": "modbus-tcp", "profile": "lv-bench", "host": f"{low}-bench.hall.lan",
                 "port": 502, "unit": 1},
                {"name": "cabinet", "kind": "modbus-rtu", "profile": "ppe-cabinet",
                 "bus": f"hall-485-{i // per_line + 1}", "unit": i % per_line + 1},
                {"name": "manikin", "kind": "serial", "profile": "cpr-manikin",
                 "port": f"/dev/serial/by-id/usb-{low}-manikin", "baudrate": 115200},
            ],
            "cameras": [{"id": "overview", "url": f"rtsp://{low}-cam1.hall.lan/main",
                         "sub_url": f"rtsp://{low}-cam1.hall.lan/sub", "codec": "h264", "resolution": "1280x720",
                         "fps": 10}],
        })
    return {
        "site": {"id": SITE_ID, "name": f"基准测试考点（{k} 个考位）", "province": "广东"},
        "buses": buses,
        "stations": stations,
        "storage": {"data_dir": "./examstation-data", "min_free_gb": 1, "critical_free_gb": 0.5},
        "exam": {"examiners_required": 1},
        **({"recording": recording} if recording else {}),
    }


def hall_config(k: int, per_line: int = PER_LINE, recording: dict[str, float] | None = None) -> SiteConfig:
    return SiteConfig.model_validate(hall_data(k, per_line, recording))


def write_hall(k: int, out: Path, per_line: int = PER_LINE, recording: dict[str, float] | None = None) -> Path:
    """The hall's YAML file; `recording` overrides settings of the site's `recording:` (segment_s...)."""
    data = hall_data(k, per_line, recording)
    SiteConfig.model_validate(data)  # refuse to write a config the controller would refuse
    out.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out
