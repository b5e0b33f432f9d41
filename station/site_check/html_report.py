"""The printable site-check report: one HTML file, Chinese labels, nothing fetched from the network.

A site administrator prints it and signs it for the province's acceptance visit, or files it after
the morning check, so everything is in the file: the CSS inline (with print rules: A4, no section
split across pages where it can be helped) and each camera's snapshot as a data: URI. The verdict
is at the top; every failure is listed first with what was found (原因) and what to do (处理办法),
then each station's checks with its snapshots, then the site-wide checks.

`report_view` groups a report the way both this file and the UI page (/site-check) show it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from station.site_check.report import CATEGORIES, Category, Check, Report

CATEGORY_LABELS: dict[Category, str] = {
    "station": "考位配置", "device": "设备", "camera": "摄像头", "clock": "时钟", "disk": "存储空间",
    "database": "数据库", "key": "签名密钥", "uplink": "上报链路",
}
"""As the report and the UI name each category (the UI translates them through its catalog)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    camera: str
    data_uri: str


@dataclass(frozen=True, slots=True)
class StationSection:
    station: str
    checks: tuple[Check, ...]
    snapshots: tuple[Snapshot, ...]

    @property
    def failed(self) -> int:
        return sum(not c.passed for c in self.checks)


@dataclass(frozen=True, slots=True)
class CategoryCount:
    category: Category
    label: str
    passed: int
    failed: int


@dataclass(frozen=True, slots=True)
class ReportView:
    report: Report
    summary: tuple[CategoryCount, ...]
    failures: tuple[Check, ...]
    stations: tuple[StationSection, ...]
    site_wide: tuple[Check, ...]
    """Checks about the site as a whole (clock, disk, database, key, uplink), in report order."""


def _order(check: Check) -> int:
    return CATEGORIES.index(check.category)


def report_view(report: Report) -> ReportView:
    checks = sorted(report.checks, key=_order)  # stable: a probe's own order within a category stays
    summary = tuple(CategoryCount(cat, CATEGORY_LABELS[cat], sum(c.passed for c in checks if c.category == cat),
                                  sum(not c.passed for c in checks if c.category == cat))
                    for cat in CATEGORIES if any(c.category == cat for c in checks))
    names = sorted({c.station for c in checks if c.station} | {k.split("/", 1)[0] for k in report.snapshots})
    stations = tuple(
        StationSection(st, tuple(c for c in checks if c.station == st),
                       tuple(Snapshot(key.split("/", 1)[1], data_uri(jpeg))
                             for key, jpeg in sorted(report.snapshots.items()) if key.split("/", 1)[0] == st))
        for st in names)
    return ReportView(report, summary, tuple(c for c in checks if not c.passed), stations,
                      tuple(c for c in checks if not c.station))


def data_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


_env = Environment(loader=PackageLoader("station.site_check", "templates"), autoescape=select_autoescape(
    enabled_extensions=("html", "j2"), default=True), trim_blocks=True, lstrip_blocks=True)
_env.globals["category_labels"] = CATEGORY_LABELS


def render_html(report: Report) -> str:
    """The whole printable report as one HTML document."""
    return _env.get_template("site_check.html.j2").render(view=report_view(report))


def write_html(report: Report, out: Path) -> None:
    """Write the printable report to `out` (through a temporary file, so a reader never sees half)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(render_html(report), encoding="utf-8")
    tmp.replace(out)
