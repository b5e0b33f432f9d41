"""Device profiles: a vendor's registers or frame fields mapped to canonical signals, as data.

A profile is a YAML file in `devices/profiles/`; adding a vendor's bench means adding a file.
The model is pydantic because it is loaded from files a site administrator may edit; a bad file
fails with the file, the point and the fix.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from devices.errors import DeviceConfigError

PROFILE_DIR = Path(__file__).parent / "profiles"

Table = Literal["coil", "discrete", "holding", "input"]
"""The four Modbus tables: coils (FC1), discrete inputs (FC2), holding (FC3), input registers (FC4)."""

SIGNAL_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$"
"""Canonical signal names: lower-case dotted, device family first (bench.km1, cabinet.slot.gloves)."""

PointType = Literal["bool", "uint16", "int16", "uint32", "int32", "float32"]

WORDS: dict[str, int] = {"bool": 1, "uint16": 1, "int16": 1, "uint32": 2, "int32": 2, "float32": 2}
"""Registers a value of each type occupies (a bool in a coil/discrete table occupies one bit)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisterPoint(_Model):
    """One signal read from one Modbus address."""

    signal: str = Field(pattern=SIGNAL_PATTERN, description="canonical signal, e.g. bench.km1")
    table: Table = Field(description="coil, discrete, holding or input")
    address: int = Field(ge=0, le=65535, description="0-based address in its table")
    type: PointType = Field("uint16", description="bool, uint16, int16, uint32, int32 or float32")
    bit: int | None = Field(None, ge=0, le=15, description="for a bool packed in a register: bit 0..15")
    scale: float = Field(1.0, description="engineering value = raw * scale + offset")
    offset: float = Field(0.0, description="engineering value = raw * scale + offset")
    unit: str = Field("", description="unit of the engineering value, e.g. V, A, mm, mm/s")
    deadband: float = Field(0.0, ge=0, description="emit a new sample only when the value moves more than this")
    word_order: Literal["big", "little"] = Field("big", description="for 32-bit types: big = high word first")
    min: float | None = Field(None, description="lowest engineering value the device can really report; below it "
                              "is a device fault (kept with its raw words), not a reading")
    max: float | None = Field(None, description="highest engineering value the device can really report; above it "
                              "is a device fault (kept with its raw words), not a reading")
    enum: dict[int, str] | None = Field(None, description="raw code -> meaning, for documentation and the UI")
    description: str = Field("", description="what the point is, in the vendor's and the exam's words")

    @model_validator(mode="after")
    def _type_fits_table(self) -> RegisterPoint:
        if self.table in ("coil", "discrete") and self.type != "bool":
            raise ValueError(f"{self.signal}: a {self.table} holds single bits, so type must be bool")
        if self.bit is not None and (self.type != "bool" or self.table in ("coil", "discrete")):
            raise ValueError(f"{self.signal}: bit: applies only to a bool in a holding or input register")
        if (self.min is not None or self.max is not None) and self.type == "bool":
            raise ValueError(f"{self.signal}: min/max apply to numbers, not to a bool")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"{self.signal}: min {self.min:g} is above max {self.max:g}; swap them")
        return self

    @property
    def words(self) -> int:
        """How many table entries (registers or bits) the point covers."""
        return 1 if self.table in ("coil", "discrete") else WORDS[self.type]


class Identity(_Model):
    """A register whose value says what the device is, so a site check can tell a wiring bench from a
    trainer answering at the bench's address (a swapped IP address or unit id).

    A register, not Modbus Read Device Identification (FC43/MEI 14): few PLC-based rigs implement
    FC43, and pymodbus 3.16 serves one FC43 identity per process, not per unit id, so a simulated
    RS-485 bus could not give each device its own.
    """

    table: Literal["holding", "input"] = Field(description="holding or input: the table of the identity register")
    address: int = Field(ge=0, le=65535, description="0-based address of the identity register")
    code: int = Field(ge=0, le=65535, description="the product code the register holds on this kind of device")
    source: str = Field(description="where the identity register comes from (vendor manual, provisional)")


class ModbusProfile(_Model):
    """Register map of a Modbus device."""

    protocol: Literal["modbus"] = Field(description="modbus")
    profile: str = Field(description="profile name, equal to the file name without .yaml")
    title_zh: str = Field(description="device name as the site knows it, e.g. 低压电工实操考核台")
    vendor: str = Field(description="whose register map this is, or 'examstation reference map'")
    source: str = Field(description="where the map comes from (vendor manual, provisional)")
    poll_interval_ms: int = Field(100, ge=10, le=60_000, description="default poll period in ms")
    max_gap: int = Field(
        8, ge=0, le=100,
        description="unused registers a block read may span to merge two groups (0 if the device rejects gaps)",
    )
    points: tuple[RegisterPoint, ...] = Field(min_length=1, description="the signals this device reports")
    identity: Identity | None = Field(
        None, description="the register that tells this kind of device from others (site-check reads it); omit "
        "when the device has none")

    @model_validator(mode="after")
    def _no_overlap(self) -> ModbusProfile:
        seen: dict[tuple[str, int, int | None], str] = {}
        signals: set[str] = set()
        for p in self.points:
            if p.signal in signals:
                raise ValueError(f"signal {p.signal} is mapped twice; give each signal one point")
            signals.add(p.signal)
            for a in range(p.address, p.address + p.words):
                key = (p.table, a, p.bit)
                if key in seen:
                    raise ValueError(
                        f"{p.signal} overlaps {seen[key]} at {p.table} {a}; move one of them"
                    )
                seen[key] = p.signal
        ident = self.identity
        if ident is not None and any((ident.table, ident.address, b) in seen for b in (None, *range(16))):
            raise ValueError(f"identity register {ident.table} {ident.address} is also a point's; move one of them")
        return self


class FrameField(_Model):
    """One field of a decoded serial frame, as it appears in the signal's value."""

    field: str = Field(description="field name in the decoded frame, e.g. depth_mm")
    unit: str = Field("", description="unit, e.g. mm, ml, ms")
    description: str = Field("", description="what the field means")
    min: float | None = Field(None, description="lowest value a real frame carries; below it the frame is a device "
                              "fault (kept with its raw value), not a reading")
    max: float | None = Field(None, description="highest value a real frame carries; above it the frame is a device "
                              "fault (kept with its raw value), not a reading")


class FramePoint(_Model):
    """One frame type of a serial protocol mapped to one signal."""

    frame: str = Field(description="frame type name in the protocol, e.g. compression")
    signal: str = Field(pattern=SIGNAL_PATTERN, description="canonical signal, e.g. manikin.compression")
    fields: tuple[FrameField, ...] = Field(description="fields carried into the signal's value")
    description: str = Field("", description="what the frame reports")


class SerialProfile(_Model):
    """Frame map of a device that streams framed records over a serial line."""

    protocol: Literal["manikin-frame-v1", "idcard-line-v1"] = Field(
        description="manikin-frame-v1 (docs/devices/manikin-protocol.md) "
        "or idcard-line-v1 (docs/devices/id-card-reader.md)"
    )
    profile: str = Field(description="profile name, equal to the file name without .yaml")
    title_zh: str = Field(description="device name as the site knows it, e.g. 心肺复苏模拟人")
    vendor: str = Field(description="whose protocol this is")
    source: str = Field(description="where the map comes from")
    points: tuple[FramePoint, ...] = Field(min_length=1, description="frames and the signals they become")


Profile = Annotated[ModbusProfile | SerialProfile, Field(discriminator="protocol")]


class _ProfileFile(_Model):
    body: Profile


def available_profiles(directory: Path = PROFILE_DIR) -> list[str]:
    """Names of the profiles shipped in (or dropped into) the profile directory."""
    return sorted(p.stem for p in directory.glob("*.yaml"))


def load_profile_file(path: Path) -> ModbusProfile | SerialProfile:
    """Load and validate one profile file; errors name the file, the point and the fix."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise DeviceConfigError(f"profile {path}: cannot read it ({err}); fix the file or restore it") from err
    try:
        body = _ProfileFile.model_validate({"body": raw}).body
    except ValidationError as err:
        lines = []
        for e in err.errors():
            loc = _with_signal(raw, e["loc"][2:]) if isinstance(raw, dict) else ""
            lines.append(f"  {loc or '(top level)'}: {e['msg']}")
        raise DeviceConfigError(f"profile {path} is invalid:\n" + "\n".join(lines)) from err
    if body.profile != path.stem:
        raise DeviceConfigError(
            f"profile {path}: `profile: {body.profile}` differs from the file name; make them equal"
        )
    return body


def _with_signal(raw: dict[str, object], loc: tuple[int | str, ...]) -> str:
    """Render `points[3].address (bench.km1)` so an error names the signal, not just an index."""
    parts = [p for p in loc if p not in ("modbus", "manikin-frame-v1", "idcard-line-v1")]
    text = ""
    for p in parts:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    if len(parts) >= 2 and parts[0] == "points" and isinstance(parts[1], int):
        points = raw.get("points")
        if isinstance(points, list) and parts[1] < len(points) and isinstance(points[parts[1]], dict):
            sig = points[parts[1]].get("signal")
            if sig:
                text += f" ({sig})"
    return text


@cache
def load_profile(name: str) -> ModbusProfile | SerialProfile:
    """The shipped profile called `name` (cached: profiles are read-only data)."""
    path = PROFILE_DIR / f"{name}.yaml"
    if not path.is_file():
        raise DeviceConfigError(
            f"no device profile named {name!r}; known profiles: {', '.join(available_profiles())}"
        )
    return load_profile_file(path)
