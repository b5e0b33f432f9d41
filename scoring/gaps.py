"""Device gaps: the stretches of an item a device could not see, and the findings that fall in them.

A dead manikin does not mean a careless candidate. While a device an item reads is offline, the
station records a fault (`FaultRecord`, online false, then true when it is back); a value a device
sent but its profile cannot represent is a fault at one instant for that one signal. A finding of
a row that reads such a device (or signal), whose evidence overlaps one of these gaps, is not
charged automatically: the sheet lists it as unverified and the examiner decides. How long the
gaps lasted also decides whether the examiner must choose between a re-sit and scoring with the
gap before the sheet can be signed (`needs_decision`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from scoring.condition import SignalUse
from scoring.sheet import DeviceGap
from scoring.timeline import FaultRecord

DECISION_SHARE = 0.10
"""A gap over this share of the item (or one still open at its end) needs the examiner's choice."""


@dataclass(frozen=True, slots=True)
class Gap:
    device: str
    signal: str
    """Empty for a device that was offline; the signal of a value fault."""
    reason: str
    raw: str
    t_from_ns: int
    t_to_ns: int
    open_at_end: bool = False

    def overlaps(self, a: int, b: int) -> bool:
        return a <= self.t_to_ns and b >= self.t_from_ns

    def shown(self, origin_ns: int) -> DeviceGap:
        return DeviceGap(self.device, self.signal, self.reason, self.raw, self.t_from_ns, self.t_to_ns,
                         round((self.t_from_ns - origin_ns) / 1e9, 1), round((self.t_to_ns - origin_ns) / 1e9, 1))


def item_gaps(faults: Iterable[FaultRecord], start_ns: int, end_ns: int) -> list[Gap]:
    """The gaps within [start, end]: offline stretches (a device already offline when the item
    started counts from the start) and value faults, in time order."""
    down: dict[str, FaultRecord] = {}
    out: list[Gap] = []
    for f in faults:  # in time order
        if f.t_mono_ns > end_ns:
            break
        if f.signal:
            if f.t_mono_ns >= start_ns:
                out.append(Gap(f.device, f.signal, f.reason, f.raw, f.t_mono_ns, f.t_mono_ns))
            continue
        if not f.online:
            down.setdefault(f.device, f)
        elif f.device in down:
            went = down.pop(f.device)
            if f.t_mono_ns >= start_ns:
                out.append(Gap(f.device, "", went.reason, "", max(start_ns, went.t_mono_ns), f.t_mono_ns))
    for device, went in down.items():
        out.append(Gap(device, "", went.reason, "", max(start_ns, went.t_mono_ns), end_ns, open_at_end=True))
    return sorted(out, key=lambda g: (g.t_from_ns, g.device, g.signal))


class GapIndex:
    """Which gaps a row's findings depend on, by the signals the row reads and the devices that
    report them (known from the timeline's samples: a signal not reported yet belongs to the device
    that reported others of its family, manikin.ventilation to the one that sent manikin.compression;
    one with no such relative depends on every offline device, since its silence may be theirs)."""

    def __init__(self, gaps: list[Gap], device_of: Mapping[str, str]) -> None:
        self.gaps = gaps
        self._device_of = dict(device_of)
        for signal, device in device_of.items():  # a signal's family (manikin.*) is one device
            self._device_of.setdefault(signal.split(".", 1)[0], device)

    def _device(self, signal: str) -> str:
        return self._device_of.get(signal) or self._device_of.get(signal.split(".", 1)[0], "")

    def relevant(self, uses: Iterable[SignalUse]) -> list[Gap]:
        signals = {u.signal for u in uses}
        devices = {self._device(s) for s in signals}
        unknown = "" in devices


        def matters(g: Gap) -> bool:
            return g.signal in signals if g.signal else unknown or g.device in devices

        return [g for g in self.gaps if matters(g)]

    def needs_decision(self, uses: Iterable[SignalUse], start_ns: int, end_ns: int) -> bool:
        return needs_decision(self.relevant(uses), start_ns, end_ns)


def needs_decision(gaps: Iterable[Gap], start_ns: int, end_ns: int) -> bool:
    """An offline stretch still open at the end, or offline time over DECISION_SHARE of the item."""
    offline = sorted((g for g in gaps if not g.signal), key=lambda g: g.t_from_ns)
    if any(g.open_at_end for g in offline):
        return True
    return end_ns > start_ns and offline_ns(offline) > DECISION_SHARE * (end_ns - start_ns)


def offline_ns(gaps: Iterable[Gap]) -> int:
    """Time covered by at least one offline stretch (overlapping stretches count once)."""
    covered, reach = 0, None
    for g in sorted((g for g in gaps if not g.signal), key=lambda g: g.t_from_ns):
        a = g.t_from_ns if reach is None else max(g.t_from_ns, reach)
        if g.t_to_ns > a:
            covered += g.t_to_ns - a
            reach = g.t_to_ns
    return covered


def first_overlap(gaps: list[Gap], a: int, b: int) -> Gap | None:
    return next((g for g in gaps if g.overlaps(a, b)), None)
