"""Which device: a station and the device's name there, e.g. A01 and bench.

Written `A01/bench` wherever a person reads it (logs, the timeline's records, result documents),
but passed as this value everywhere in code, so no module builds or parses the text itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class DeviceRef:
    station: str
    name: str

    def __str__(self) -> str:
        return f"{self.station}/{self.name}"

    @classmethod
    def parse(cls, text: str) -> DeviceRef:
        """`A01/bench` -> DeviceRef("A01", "bench"); ValueError naming the text otherwise."""
        station, sep, name = text.partition("/")
        if not sep or not station or not name or "/" in name:
            raise ValueError(f"{text!r} is not a device reference; write it as STATION/DEVICE, e.g. A01/bench")
        return cls(station, name)
