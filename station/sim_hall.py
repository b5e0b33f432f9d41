"""`examstation sim`: the simulated hall on its own, for trying the real commands against it.

With `--write-config OUT` the simulator writes the site config resolved to its own endpoints (the
TCP ports, pty paths and camera URLs it opened), and beside the rigs it runs what the rest of a
site reaches: a broker with the simulated province behind it (holding this site's public key, as
a province does once the site is registered) and an NTP server. Then `examstation run --config
OUT` and `examstation site-check --config OUT` work against the simulated hall exactly as against
a real one, while the simulator runs. The data directory is prepared as on an installed site: the
site's signing key (created if missing) and the database.

One thing in the written file is not the site's: the planned exam volume. Three years of evidence
for a real hall's plan is terabytes, which a developer's machine does not hold; the written plan
is the simulated hall's own (`SIM_PLAN`), and the file says so.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from hardware_sim.ntp_server import SimNtpServer
from hardware_sim.site import SimSite
from station.config import SiteConfig
from station.demo import demo_config, until_stopped, uplink_stack
from station.signing import SiteKey
from station.stored import ensure_database

SIM_PLAN = {"attempts_per_day": 4, "exam_days_per_year": 10}
"""The simulated hall's planned volume (site-check sizes 3 years of evidence from it)."""


async def run_sim(config: SiteConfig, data_dir: Path, *, print_endpoints: bool, duration_s: float | None,
                  write_config: Path | None) -> None:
    async with SimSite(config) as site:
        if print_endpoints:
            for ep in site.endpoints():
                print(json.dumps(ep, ensure_ascii=False), flush=True)
        n_dev = sum(len(s.devices) for s in config.stations)
        n_cam = sum(len(s.cameras) for s in config.stations)
        print(f"examstation sim: {n_dev} devices and {n_cam} cameras of site {config.site.id} are running "
              f"on 127.0.0.1 and ptys; Ctrl-C stops them", file=sys.stderr, flush=True)
        if write_config is None:
            await until_stopped(duration_s)
            return
        # the data directory as an installed site has it: the signing key (which the simulated province
        # registers) and the database at the current revision
        key = SiteKey.load_or_create(data_dir)
        ensure_database(data_dir)
        async with uplink_stack(config, key, None, data_dir) as province, SimNtpServer() as ntp:
            hall = resolved_hall(site.resolved_config(), demo_config(config, province, data_dir), ntp.address,
                                 data_dir)
            write_hall_config(hall, write_config)
            print(f"examstation sim: wrote {write_config}: the site resolved to the simulator (broker "
                  f"{province.broker_url}, simulated province, NTP {ntp.address}, data in {data_dir}); try "
                  f"`examstation site-check --config {write_config}` or `examstation run --config "
                  f"{write_config}` while this runs", file=sys.stderr, flush=True)
            await until_stopped(duration_s)


def resolved_hall(resolved: SiteConfig, with_uplink: SiteConfig, ntp_address: str, data_dir: Path) -> SiteConfig:
    """The resolved site with the simulated uplink, NTP server, data directory and plan."""
    acceptance = resolved.acceptance.model_copy(update={"ntp_server": ntp_address, **SIM_PLAN})
    storage = resolved.storage.model_copy(update={"data_dir": str(data_dir.resolve())})
    return resolved.model_copy(update={"uplink": with_uplink.uplink, "acceptance": acceptance, "storage": storage})


def write_hall_config(hall: SiteConfig, out: Path) -> None:
    """The config as YAML that `load_site_config` reads back to the same config (atomic write)."""
    data: dict[str, Any] = hall.model_dump(mode="json", exclude_none=True)
    header = (
        "# Written by `examstation sim --write-config` for the simulated hall: every host, port, serial\n"
        "# path, camera URL, the broker, the province's key and the NTP server point at the simulator,\n"
        "# valid while it runs. The planned volume under acceptance: is the simulated hall's own, not\n"
        f"# the site's ({', '.join(f'{k}: {v}' for k, v in SIM_PLAN.items())}).\n")
    text = header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=120)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
