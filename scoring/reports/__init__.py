"""Report data for the UI, per item kind: QCPR-style CPR data, VRTEX-style welding traces.

Each report is a pure function of the item's view and its rubric item, returning JSON-ready data;
the engine puts it in `ItemScore.report` for items whose rubric names a report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from scoring.detectors.base import ItemView
from scoring.rubric import Item

REPORTS: dict[str, Callable[[ItemView, Item], Mapping[str, Any]]] = {}

# Reports register last: each imports scoring.detectors, never this package, so there is no cycle.
from scoring.reports.cpr import cpr_report  # noqa: E402
from scoring.reports.weld import weld_report  # noqa: E402

REPORTS["cpr"] = lambda view, _item: cpr_report(view)
REPORTS["weld"] = weld_report
