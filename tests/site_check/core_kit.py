"""What the core site-check tests share: the example hall, a data directory made the way a site makes
it (`db upgrade`, `keys init`), a small planned volume, and one run of the core probes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from station.config import SiteConfig, load_site_config
from station.maintenance import db_upgrade, keys
from station.site_check.report import CheckContext, Report
from station.site_check.runner import core_probes, run_site_check

EXAMPLE = Path("examples/site.yaml")
CONFIG = load_site_config(EXAMPLE)
SMALL_PLAN: dict[str, Any] = {"attempts_per_day": 1, "exam_days_per_year": 1, "minutes_per_attempt": 1.0,
                              "sample_s": 1.5}
"""3 years of this is about 60 MB at the default 2 Mbit/s: room on any test machine's disk."""


def with_acceptance(config: SiteConfig, **changes: Any) -> SiteConfig:
    data = config.model_dump(mode="python")
    data["acceptance"] = {**data["acceptance"], **changes}
    return SiteConfig.model_validate(data)


def without_device(config: SiteConfig, station: str, device: str) -> SiteConfig:
    data = config.model_dump(mode="python")
    for st in data["stations"]:
        if st["id"] == station:
            st["devices"] = [d for d in st["devices"] if d["name"] != device]
    return SiteConfig.model_validate(data)


def prepared_data_dir(where: Path) -> Path:
    """A data directory as a site has it before its first exam: database created, key made."""
    db_upgrade(where)
    keys(where, "init")
    return where


async def run_core(config: SiteConfig, data_dir: Path, **acceptance: Any) -> Report:
    """The core probes (stations, devices, database, key, disk) against `config` (already resolved
    to the simulator), with the small plan unless `acceptance` says otherwise."""
    config = with_acceptance(config, **{**SMALL_PLAN, **acceptance})
    ctx = CheckContext(config=config, config_path=EXAMPLE, data_dir=data_dir, sample_s=config.acceptance.sample_s)
    return await run_site_check(ctx, core_probes())


def failed_ids(report: Report) -> list[str]:
    return [c.id for c in report.failures]


def failures(report: Report) -> str:
    """The failures in words, for an assertion's message."""
    return "\n".join(f"{c.id}: {c.detail} {c.figures}" for c in report.failures)
