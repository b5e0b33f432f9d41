"""The Sample: one observed value of one canonical signal, the only thing devices hand upwards.

Why canonical names: scoring rubrics reference `bench.km1` or `manikin.compression`, never a
vendor's register 0x0012, so a new vendor's rig is a new profile (data), not new code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from devices.ref import DeviceRef

Scalar = bool | int | float | str
"""A plain signal value: a bit, a count, a measurement or a code."""

SignalValue = Scalar | Mapping[str, Scalar]
"""A scalar, or a small record for event signals (a compression: depth_mm, recoil_ok, hand_zone)."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one signal at one moment.

    `t_mono_ns` orders samples and measures durations (it never jumps); `t_utc_ns` (nanoseconds
    since the Unix epoch) ties the sample to wall-clock time and to video. Both come from the
    injected clock, so tests and replays are deterministic.
    """

    signal: str
    value: SignalValue
    t_mono_ns: int
    t_utc_ns: int
    device: DeviceRef
    """Which configured device produced it (A01/bench), for health, device gaps and audit."""


@dataclass(frozen=True, slots=True)
class ValueFault:
    """A device answered, but with a value its profile cannot represent: NaN or infinity in a float
    register, a reading outside the profile's range. It is a device fault, never a Sample: scoring a
    made-up value, or silently dropping it, would change a candidate's score. `raw` keeps what the
    device sent (register words, a frame field) for the examiner and the appeal."""

    signal: str
    raw: str
    reason: str
    t_mono_ns: int
    t_utc_ns: int
    device: DeviceRef


SampleSink = Callable[[Sample], "bool | None"]
"""Where a device hands its samples: returns False when the sample was not accepted (the station's
store is full), and the device offers it again; None or True means accepted."""
