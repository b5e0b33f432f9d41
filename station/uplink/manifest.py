"""The station's status messages: the retained birth manifest and the `offline` will.

The province learns from the birth manifest what it is talking to before any result arrives:
software version, the rubric files (id and hash) the results will name, stations with their
devices and cameras, the signing key id, and the delivery backlog. The will says `offline` when
the broker loses the station without a goodbye. Pure functions: the relay publishes them.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from scoring.rubric import Rubric
from station.config import SiteConfig
from station.result_document import iso_utc
from station.uplink.outbox import Backlog

STATUS_SCHEMA = "examstation/status/v1"


def software_version() -> str:
    try:
        return version("examstation")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def software() -> str:
    """What result documents name as their producer, e.g. `examstation 0.1.0`."""
    return f"examstation {software_version()}"


def birth(config: SiteConfig, rubrics: list[Rubric], key_id: str, backlog: Backlog, now_utc_ns: int) -> dict[str, Any]:
    """The birth manifest of `config`'s stations: a box of a split hall names itself (`box`) and lists
    only the stations it runs."""
    doc = {
        "schema": STATUS_SCHEMA,
        "site": config.site.id,
        "state": "online",
        "at": iso_utc(now_utc_ns),
        "software": {"name": "examstation", "version": software_version()},
        "key_id": key_id,
        "rubrics": [{"id": r.id, "hash": r.hash, "operation": r.operation} for r in rubrics],
        "stations": [
            {"id": st.id, "operation": st.operation,
             "devices": [{"name": d.name, "kind": d.kind, "profile": d.profile} for d in st.devices],
             "cameras": [{"id": c.id} for c in st.cameras]}
            for st in config.stations
        ],
        "outbox": {"queued": backlog.queued, "failed": backlog.failed,
                   "oldest_queued_age_s": backlog.oldest_age_s(now_utc_ns)},
    }
    if config.this_box is not None:
        doc["box"] = config.this_box.id
    return doc


def offline(site: str, reason: str | None = None, now_utc_ns: int | None = None,
            box: str | None = None) -> dict[str, Any]:
    """The will (no time: the broker sends it later) or, with a reason and time, a clean goodbye."""
    doc: dict[str, Any] = {"schema": STATUS_SCHEMA, "site": site, "state": "offline"}
    if box is not None:
        doc["box"] = box
    if now_utc_ns is not None:
        doc["at"] = iso_utc(now_utc_ns)
    if reason:
        doc["reason"] = reason
    return doc
