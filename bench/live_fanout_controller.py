"""The measured process of bench/live_fanout.py: a one-camera controller serving the proctor UI.

`--sim`: runs SimSite for a one-station, one-camera site and writes its resolved config (JSON) to
`--config`, then waits (the camera's process, not measured). Without `--sim`: reads that config and
runs what a controller runs for live video in one process: StationServices, Recording (the camera's
main stream recorded to segments), the LiveHub and the UI (proctor_ui.server.serving), with a user
`bench` (password from `--password`) in the database; prints the UI's URL on stdout, then waits
until killed. Bench-only: nothing else imports this.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from devices.clock import SystemClock
from hardware_sim.site import SimSite
from proctor_ui.app import create_app
from proctor_ui.server import serving
from proctor_ui.wiring import live_hub_for, ui_context
from station.config import SiteConfig, load_site_config
from station.db import database_path, open_database
from station.recording import Recording
from station.services import StationServices
from station.signing import SiteKey
from station.stored import ensure_database
from station.users import UserBook

ROOT = Path(__file__).resolve().parents[1]


def one_camera_site() -> SiteConfig:
    """The example site cut to station A01 with its overview camera and no devices."""
    data = load_site_config(ROOT / "examples" / "site.yaml").model_dump(mode="python")
    st = next(s for s in data["stations"] if s["id"] == "A01")
    st["devices"], st["cameras"] = [], st["cameras"][:1]
    data["stations"], data["buses"] = [st], []
    return SiteConfig.model_validate(data)


async def run_sim(config_out: Path, fps: float) -> None:
    async with SimSite(one_camera_site(), camera_fps=fps) as site:
        await asyncio.to_thread(config_out.write_text, site.resolved_config().model_dump_json())
        print("sim ready", flush=True)
        await asyncio.Event().wait()


async def run_controller(config: SiteConfig, data_dir: Path, password: str) -> None:
    ensure_database(data_dir)
    clock = SystemClock()
    with open_database(database_path(data_dir)) as db:
        services = StationServices(config, db, SiteKey.load_or_create(data_dir), clock)
        UserBook(db, clock, [s.id for s in config.stations]).add("bench", "proctor", password, [])
        try:
            async with Recording(services, data_dir, config) as recording, \
                    live_hub_for(config, readers=recording.recorder.reader) as hub:
                ctx = ui_context(services, data_dir, live=hub)
                async with serving(create_app(ctx), "127.0.0.1", 0) as url:
                    print(url, flush=True)
                    await asyncio.Event().wait()
        finally:
            await asyncio.to_thread(services.close)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sim", action="store_true")
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--data", type=Path)
    p.add_argument("--password", default="")
    p.add_argument("--fps", type=float, default=10)
    a = p.parse_args()
    try:
        if a.sim:
            asyncio.run(run_sim(a.config, a.fps))
        else:
            asyncio.run(run_controller(SiteConfig.model_validate_json(a.config.read_text()), a.data, a.password))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
