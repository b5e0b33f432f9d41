"""Boxes: a hall larger than one edge box, its stations split over several (docs/boxes.md).

Why a box is config and not discovery: which machine polls which rig is wiring (an RS-485 line
runs to one machine), so the site file says it, every box reads the same file, and
`examstation run --box ID` picks this machine's part. Each box then runs the controller for its
own stations only (its own database, evidence, seq and audit chain) and learns the others' state
from their live topics on the site's broker.

The rules, checked when the file loads (each message names the station or box and the fix):
- with no `boxes:` nothing changes, and no station may name a box;
- with `boxes:` every station names one declared box, every box runs at least one station, and an
  RS-485 line carries devices of one box only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

BOX_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,15}$"


class Box(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=BOX_PATTERN, description="box id, e.g. A or box-2: `examstation run --box ID` names it, "
                    "and its MQTT client id and status topic carry it")
    name: str = Field(min_length=1, description="what the hall calls this machine, e.g. 一号机 (shown on the tiles)")
    ui_url: str | None = Field(
        None, pattern=r"^https?://[^/\s]+/?$",
        description="this box's proctor UI as the other boxes' browsers reach it, e.g. https://192.168.10.12:8443; "
        "the other boxes' hall tiles of its stations link there (omit: no link)")


class BoxError(ValueError):
    """`--box` does not fit the site config (missing, unknown, or given where no boxes are declared)."""


class _Station(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def box(self) -> str | None: ...
    @property
    def devices(self) -> Sequence[object]: ...


Problem = tuple[str, tuple[int | str, ...]]
"""A rule broken: the message and the YAML path it is about."""


def box_problem(boxes: Sequence[Box], stations: Sequence[_Station], bus_ids: Sequence[str]) -> Problem | None:
    """The first box rule the site breaks, or None. `bus_ids`: the declared RS-485 lines, in order."""
    ids = [b.id for b in boxes]
    for i, bid in enumerate(ids):
        if bid in ids[:i]:
            return f"box id {bid} is used twice; give every box its own id", ("boxes", i, "id")
    known = ", ".join(ids)
    for si, st in enumerate(stations):
        if st.box is not None and not boxes:
            return (f"station {st.id} names box {st.box}, but no boxes: are declared; declare the boxes the hall "
                    "is split over, or remove box:", ("stations", si, "box"))
        if boxes and st.box is None:
            return (f"station {st.id} names no box; with boxes: declared every station says which box runs it "
                    f"(box: one of {known})", ("stations", si))
        if boxes and st.box not in ids:
            return (f"station {st.id}: box {st.box} is not declared under boxes: (known: {known}); add it or fix "
                    "the name", ("stations", si, "box"))
    for i, b in enumerate(boxes):
        if not any(st.box == b.id for st in stations):
            return (f"box {b.id} ({b.name}) runs no station; give it stations (box: {b.id}) or remove it",
                    ("boxes", i))
    owner: dict[str, str] = {}
    for st in stations:
        for dev in st.devices:
            bus = getattr(dev, "bus", None)
            if bus is None or st.box is None:
                continue
            first = owner.setdefault(bus, st.box)
            if first != st.box:
                at: tuple[int | str, ...] = ("buses", bus_ids.index(bus)) if bus in bus_ids else ("buses",)
                return (f"bus {bus} carries devices of stations on box {first} and on box {st.box} (station "
                        f"{st.id}); an RS-485 line is wired to one machine: put its stations on one box", at)
    return None


def choose_box(boxes: Sequence[Box], box_id: str | None) -> Box | None:
    """This machine's box from `--box`: None for a site with no boxes (and no `--box`)."""
    if not boxes:
        if box_id is not None:
            raise BoxError(f"--box {box_id}: the site config declares no boxes:, so one machine runs every "
                           "station; remove --box, or split the hall with boxes: (docs/boxes.md)")
        return None
    listed = ", ".join(f"{b.id} ({b.name})" for b in boxes)
    if box_id is None:
        raise BoxError(f"this site is split over boxes {listed}: give --box with the box this machine is")
    for b in boxes:
        if b.id == box_id:
            return b
    raise BoxError(f"--box {box_id}: no such box; the site config declares {listed}")
