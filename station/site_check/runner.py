"""Run the site check: every probe at once, then the follow-ups that read what the probes measured.

Probes are independent (`async def check_x(ctx) -> list[Check]`, the camera probe also returning
snapshots), so they run concurrently; each one's buses are its own business (the device probe makes
RS-485 devices take turns). A follow-up needs another probe's figures (the disk check sizes 3
years at the bitrates the camera check measured), so it runs after them with their checks. A
probe that raises or overruns its time is a bug or a hang, not a site fault: it still becomes a
failed Check naming the probe, so the report is never silently short.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Protocol

from station.site_check.camera_check import check_cameras
from station.site_check.clock_check import check_clock
from station.site_check.device_check import check_devices
from station.site_check.disk_check import check_disk
from station.site_check.report import CATEGORIES, Category, Check, CheckContext, Report
from station.site_check.station_check import check_stations
from station.site_check.store_check import check_database, check_key
from station.site_check.uplink_check import check_uplink

log = logging.getLogger(__name__)

ProbeResult = list[Check] | tuple[list[Check], dict[str, bytes]]
Probe = Callable[[CheckContext], Awaitable[ProbeResult]]


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A probe run after the others, given their checks (e.g. the disk check reads camera bitrates)."""

    name: str
    category: Category
    run: Callable[[CheckContext, Sequence[Check]], Awaitable[list[Check]]]


class Progress(Protocol):
    """What the runner tells a display: a probe started, a probe finished (with its checks)."""

    def started(self, name: str) -> None: ...

    def finished(self, name: str, checks: Sequence[Check]) -> None: ...


def core_probes() -> list[Probe | FollowUp]:
    """What the station holds and whether its devices, database, key and disk are fit: the checks
    that need no camera, NTP server or broker (their own tests run those)."""
    return [check_stations, check_devices, check_database, check_key, FollowUp("disk", "disk", check_disk)]


def default_probes() -> list[Probe | FollowUp]:
    """Every check of the site, in the order the issue lists them; the disk check follows the cameras
    (it sizes 3 years at their measured bitrates)."""
    return [check_stations, check_devices, check_cameras, check_clock, check_database, check_key, check_uplink,
            FollowUp("disk", "disk", check_disk)]


def probe_name(probe: Probe | FollowUp) -> str:
    if isinstance(probe, FollowUp):
        return probe.name
    name = getattr(probe, "__name__", type(probe).__name__)
    return str(name).removeprefix("check_")


def probe_timeout_s(ctx: CheckContext) -> float:
    """How long one probe may take: its sample, and the slow answers of a hall of dead devices."""
    return ctx.sample_s * 2 + 60.0


async def _run_one(name: str, category: Category, ctx: CheckContext, call: Awaitable[ProbeResult],
                   progress: Progress | None) -> tuple[list[Check], dict[str, bytes]]:
    if progress is not None:
        progress.started(name)
    limit = probe_timeout_s(ctx)
    try:
        async with asyncio.timeout(limit):
            result = await call
        checks, shots = result if isinstance(result, tuple) else (result, {})
    except TimeoutError:
        checks, shots = [_broken(name, category, f"the {name} probe did not finish within {limit:.0f} s")], {}
    except Exception as err:
        log.exception("site-check probe %s failed", name)
        checks, shots = [_broken(name, category, f"the {name} probe failed: {type(err).__name__}: {err}")], {}
    if progress is not None:
        progress.finished(name, checks)
    return checks, shots


def _broken(name: str, category: Category, detail: str) -> Check:
    return Check(id=f"{category}:probe/{name}", category=category, title=f"the {name} probe ran", passed=False,
                 detail=detail, fix="run again with -v and report the log: this is a fault of the check, not "
                                    "necessarily of the site")


def _category_of(probe: Probe) -> Category:
    """Where a broken probe's failure is listed: its own category when its name says one."""
    name = probe_name(probe).removesuffix("s")
    return next((c for c in CATEGORIES if c == name), "station")


async def run_site_check(ctx: CheckContext, probes: Sequence[Probe | FollowUp], progress: Progress | None = None,
                         ) -> Report:
    """Every probe's checks in one report, ordered by CATEGORIES (then in each probe's own order)."""
    first = [p for p in probes if not isinstance(p, FollowUp)]
    later = [p for p in probes if isinstance(p, FollowUp)]
    results = await asyncio.gather(*(_run_one(probe_name(p), _category_of(p), ctx, p(ctx), progress) for p in first))
    checks: list[Check] = [c for cs, _ in results for c in cs]
    snapshots: dict[str, bytes] = {k: v for _, shots in results for k, v in shots.items()}
    earlier = tuple(checks)
    followed = await asyncio.gather(*(_run_one(f.name, f.category, ctx, f.run(ctx, earlier), progress) for f in later))
    checks += [c for cs, _ in followed for c in cs]
    rank = {c: i for i, c in enumerate(CATEGORIES)}
    ordered = sorted(enumerate(checks), key=lambda ic: (rank[ic[1].category], ic[0]))
    cfg = ctx.config
    return Report(site_id=cfg.site.id, site_name=cfg.site.name, province=cfg.site.province,
                  checked_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), software_version=software_version(),
                  checks=tuple(c for _, c in ordered), snapshots=snapshots)


def software_version() -> str:
    try:
        return version("examstation")
    except PackageNotFoundError:
        return "0+unknown"
