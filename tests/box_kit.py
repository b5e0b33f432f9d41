"""The example hall split over two boxes, as tests of split halls need it: A01-A04 (with their shared
RS-485 line) on box A, the welding booths W01-W02 on box B."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "site.yaml"
BOXES = [{"id": "A", "name": "一号机", "ui_url": "http://127.0.0.1:8101"},
         {"id": "B", "name": "二号机", "ui_url": "http://127.0.0.1:8102"}]


def box_of(station: str) -> str:
    return "B" if station.startswith("W") else "A"


def split(raw: dict[str, Any], boxes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """`raw` (a site config as data) with `boxes:` and each station's `box:`."""
    out = dict(raw, boxes=boxes if boxes is not None else BOXES)
    out["stations"] = [dict(st, box=box_of(st["id"])) for st in raw["stations"]]
    return out


def example_raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return data


def write(raw: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path
