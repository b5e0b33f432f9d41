"""The site-check report: every check's outcome, the verdict, and the camera snapshots.

This is the contract between the probes (each returns `Check`s), the runner that collects them,
and the outputs: the console table, `--json`, the printable HTML report and the signed report
published to `examstation/v1/{site}/acceptance`. A check either passed or failed; a failure always
says why (`detail`) and what to do (`fix`). Snapshots are JPEG bytes kept beside the report, not in
its JSON (the HTML embeds them; the JSON and the published report name them only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from station.config import SiteConfig

REPORT_SCHEMA = "examstation/site-check/v1"

Category = Literal["device", "station", "camera", "clock", "disk", "database", "key", "uplink"]
CATEGORIES: tuple[Category, ...] = ("station", "device", "camera", "clock", "disk", "database", "key", "uplink")
"""Report order: what the station must hold first, then whether each part works."""

Figure = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Check:
    """One thing verified about the site, e.g. `device:A01/bench` or `clock`."""

    id: str
    """Unique within a report: `{category}` or `{category}:{station}/{subject}`, e.g. `camera:A01/overview`."""
    category: Category
    title: str
    """What was checked, for a person: `A01 bench (lv-bench) answers as its profile`."""
    passed: bool
    detail: str
    """What was found: figures in words, or on failure what went wrong."""
    fix: str | None = None
    """On failure, what to do; None when passed."""
    station: str | None = None
    subject: str | None = None
    """The device name, camera id or requirement within the station."""
    figures: dict[str, Figure] = field(default_factory=dict)
    """Measured numbers with units in their names (`offset_s`, `fps`, `errors`)."""
    source: str | None = None
    """Where the requirement comes from (a requirements row's source), for requirement checks."""

    def __post_init__(self) -> None:
        if not self.passed and not self.fix:
            raise ValueError(f"check {self.id}: a failure must say what to do (fix)")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "category": self.category, "station": self.station, "subject": self.subject,
                "title": self.title, "status": "pass" if self.passed else "fail", "detail": self.detail,
                "fix": self.fix, "figures": dict(self.figures), "source": self.source}


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What every probe gets: the site config as given, where the data lives, and the sample time."""

    config: SiteConfig
    config_path: Path
    data_dir: Path
    sample_s: float


@dataclass(frozen=True, slots=True)
class Report:
    site_id: str
    site_name: str
    province: str
    checked_at: str
    """ISO 8601 UTC, e.g. 2026-12-05T08:00:00Z."""
    software_version: str
    checks: tuple[Check, ...]
    snapshots: dict[str, bytes] = field(default_factory=dict)
    """JPEG per camera, keyed `{station}/{camera}`."""

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON (what `--json` prints and, signed, what `--publish` sends)."""
        return {
            "schema": REPORT_SCHEMA,
            "site": {"id": self.site_id, "name": self.site_name, "province": self.province},
            "checked_at": self.checked_at,
            "software": {"name": "examstation", "version": self.software_version},
            "verdict": "pass" if self.passed else "fail",
            "counts": {"pass": sum(c.passed for c in self.checks), "fail": len(self.failures)},
            "checks": [c.to_json() for c in self.checks],
            "snapshots": sorted(self.snapshots),
        }


REPORTS_DIR = "site-check"
"""Under the data directory: one `{stamp}.json` per run and `{stamp}/{station}-{camera}.jpg` snapshots."""


def _stamp(checked_at: str) -> str:
    return checked_at.replace("-", "").replace(":", "")


def save_report(report: Report, data_dir: Path) -> Path:
    """Keep the report (JSON and snapshots) under the data directory, for the UI and for the record."""
    root = data_dir / REPORTS_DIR
    stamp = _stamp(report.checked_at)
    shots = root / stamp
    shots.mkdir(parents=True, exist_ok=True)
    for key, jpeg in report.snapshots.items():
        (shots / (key.replace("/", "-") + ".jpg")).write_bytes(jpeg)
    path = root / f"{stamp}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(path)
    return path


def load_report(path: Path) -> Report:
    """A saved report back, snapshots included (files that went missing are left out)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    shots = path.with_suffix("")
    snapshots = {}
    for key in doc.get("snapshots", []):
        f = shots / (key.replace("/", "-") + ".jpg")
        if f.is_file():
            snapshots[key] = f.read_bytes()
    checks = tuple(
        Check(id=c["id"], category=c["category"], title=c["title"], passed=c["status"] == "pass",
              detail=c["detail"], fix=c["fix"], station=c["station"], subject=c["subject"],
              figures=dict(c["figures"]), source=c["source"])
        for c in doc["checks"])
    return Report(site_id=doc["site"]["id"], site_name=doc["site"]["name"], province=doc["site"]["province"],
                  checked_at=doc["checked_at"], software_version=doc["software"]["version"], checks=checks,
                  snapshots=snapshots)


def latest_report(data_dir: Path) -> Report | None:
    """The most recent saved report, or None before the first site-check."""
    root = data_dir / REPORTS_DIR
    saved = sorted(root.glob("*.json")) if root.is_dir() else []
    return load_report(saved[-1]) if saved else None
