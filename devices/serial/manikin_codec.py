"""Pure codec for manikin-frame-v1, the CPR manikin's serial frame protocol.

Why a separate, pure module: the byte-level rules (framing, CRC, resync, sequence gaps) are the
part that must be exactly right and is easiest to prove with property tests, so it has no asyncio,
no serial port and no clock. The stream decoder (`manikin_decoder.py`), the asyncio reader
(`manikin_reader.py`) and the simulator (`hardware_sim/manikin.py`) all build on it. The wire format is specified in
docs/devices/manikin-protocol.md; the constants below are that document in code.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import ClassVar, Final

from devices.sample import Scalar

SOF: Final = b"\xaa\x55"
"""Start-of-frame marker."""
VERSION: Final = 1
"""Protocol version byte this codec speaks."""
HEADER_LEN: Final = 6
"""SOF (2) + version + type + sequence + payload length."""
CRC_LEN: Final = 2
MAX_PAYLOAD_LEN: Final = 64
"""Upper bound on the length byte; a larger value is treated as line noise, not as a frame."""

TYPE_COMPRESSION: Final = 0x01
TYPE_VENTILATION: Final = 0x02
TYPE_STATE: Final = 0x03
TYPE_HEARTBEAT: Final = 0x04

_COMPRESSION = struct.Struct("<IHHHBB")  # device_ms, depth 0.1 mm, duration_ms, peak_force_n, flags, zone
_VENTILATION = struct.Struct("<IHH")  # device_ms, volume_ml, duration_ms
_STATE = struct.Struct("<IBB")  # device_ms, flags, head_tilt_deg
_HEARTBEAT = struct.Struct("<IBBBB")  # uptime_ms, battery_pct, firmware major, minor, patch

PAYLOAD_LEN: Final[dict[int, int]] = {
    TYPE_COMPRESSION: _COMPRESSION.size,
    TYPE_VENTILATION: _VENTILATION.size,
    TYPE_STATE: _STATE.size,
    TYPE_HEARTBEAT: _HEARTBEAT.size,
}
"""Fixed payload length of every known frame type."""

_RECOIL_OK = 0x01
_AIRWAY_OPEN, _PULSE_CHECK, _CONSCIOUSNESS_CHECK = 0x01, 0x02, 0x04


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE: Final = _crc_table()


def crc16_modbus(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/MODBUS (poly 0x8005 reflected, init 0xFFFF, no final xor); b"123456789" -> 0x4B37."""
    crc = 0xFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


class HandZone(enum.IntEnum):
    """Where the hands were on the sternum during a compression, as the manikin's sensor grid saw it."""

    CORRECT = 0
    TOO_HIGH = 1
    TOO_LOW = 2
    LEFT = 3
    RIGHT = 4

    @property
    def label(self) -> str:
        """The name used in signal values: correct, too_high, too_low, left, right."""
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> HandZone:
        """The zone called `label` (correct, too_high, too_low, left, right)."""
        try:
            return cls[label.upper()]
        except KeyError:
            names = ", ".join(z.label for z in cls)
            raise ValueError(f"unknown hand zone {label!r}; expected one of {names}") from None


def _check(name: str, value: int, high: int) -> None:
    if isinstance(value, bool) or not 0 <= value <= high:
        raise ValueError(f"{name}={value!r} is outside 0..{high}")


@dataclass(frozen=True, slots=True)
class CompressionFrame:
    """One chest compression, reported when the press is released."""

    NAME: ClassVar[str] = "compression"
    seq: int
    device_ms: int
    depth_tenth_mm: int
    """Deepest point of the press in 0.1 mm (523 = 52.3 mm)."""
    duration_ms: int
    """Time from the start of the press to its deepest point back to release, in ms."""
    peak_force_n: int
    recoil_ok: bool
    hand_zone: HandZone

    def __post_init__(self) -> None:
        _check("seq", self.seq, 0xFF)
        _check("device_ms", self.device_ms, 0xFFFF_FFFF)
        _check("depth_tenth_mm", self.depth_tenth_mm, 0xFFFF)
        _check("duration_ms", self.duration_ms, 0xFFFF)
        _check("peak_force_n", self.peak_force_n, 0xFFFF)
        if not isinstance(self.hand_zone, HandZone):
            raise ValueError(f"hand_zone={self.hand_zone!r} must be a HandZone")

    @property
    def depth_mm(self) -> float:
        """Depth in millimetres."""
        return self.depth_tenth_mm / 10


@dataclass(frozen=True, slots=True)
class VentilationFrame:
    """One rescue breath, reported when the breath ends."""

    NAME: ClassVar[str] = "ventilation"
    seq: int
    device_ms: int
    volume_ml: int
    duration_ms: int

    def __post_init__(self) -> None:
        _check("seq", self.seq, 0xFF)
        _check("device_ms", self.device_ms, 0xFFFF_FFFF)
        _check("volume_ml", self.volume_ml, 0xFFFF)
        _check("duration_ms", self.duration_ms, 0xFFFF)


@dataclass(frozen=True, slots=True)
class StateFrame:
    """The manikin's assessment sensors, sent whenever one of them changes."""

    NAME: ClassVar[str] = "state"
    seq: int
    device_ms: int
    airway_open: bool
    head_tilt_deg: int
    pulse_check: bool
    """Fingers are on the carotid pulse point."""
    consciousness_check: bool
    """The shoulders are being tapped."""

    def __post_init__(self) -> None:
        _check("seq", self.seq, 0xFF)
        _check("device_ms", self.device_ms, 0xFFFF_FFFF)
        _check("head_tilt_deg", self.head_tilt_deg, 0xFF)


@dataclass(frozen=True, slots=True)
class HeartbeatFrame:
    """Sent once a second whatever happens, so silence means a broken link, not an idle candidate."""

    NAME: ClassVar[str] = "heartbeat"
    seq: int
    uptime_ms: int
    battery_pct: int
    firmware_major: int
    firmware_minor: int
    firmware_patch: int

    def __post_init__(self) -> None:
        _check("seq", self.seq, 0xFF)
        _check("uptime_ms", self.uptime_ms, 0xFFFF_FFFF)
        _check("battery_pct", self.battery_pct, 100)
        _check("firmware_major", self.firmware_major, 0xFF)
        _check("firmware_minor", self.firmware_minor, 0xFF)
        _check("firmware_patch", self.firmware_patch, 0xFF)

    @property
    def firmware(self) -> str:
        """Firmware version as text, e.g. 1.2.0."""
        return f"{self.firmware_major}.{self.firmware_minor}.{self.firmware_patch}"


Frame = CompressionFrame | VentilationFrame | StateFrame | HeartbeatFrame
"""Any decoded manikin-frame-v1 frame."""

FRAME_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "compression": ("depth_mm", "recoil_ok", "hand_zone", "duration_ms", "peak_force_n", "device_ms"),
    "ventilation": ("volume_ml", "duration_ms", "device_ms"),
    "state": ("airway_open", "head_tilt_deg", "pulse_check", "consciousness_check", "device_ms"),
    "heartbeat": ("uptime_ms", "battery_pct", "firmware"),
}
"""Frame name -> the keys `frame_fields` produces, so a profile can be checked against the codec."""


def _pack_payload(frame: Frame) -> tuple[int, bytes]:
    if isinstance(frame, CompressionFrame):
        flags = _RECOIL_OK if frame.recoil_ok else 0
        return TYPE_COMPRESSION, _COMPRESSION.pack(
            frame.device_ms, frame.depth_tenth_mm, frame.duration_ms, frame.peak_force_n, flags,
            int(frame.hand_zone),
        )
    if isinstance(frame, VentilationFrame):
        return TYPE_VENTILATION, _VENTILATION.pack(frame.device_ms, frame.volume_ml, frame.duration_ms)
    if isinstance(frame, StateFrame):
        flags = (
            (_AIRWAY_OPEN if frame.airway_open else 0)
            | (_PULSE_CHECK if frame.pulse_check else 0)
            | (_CONSCIOUSNESS_CHECK if frame.consciousness_check else 0)
        )
        return TYPE_STATE, _STATE.pack(frame.device_ms, flags, frame.head_tilt_deg)
    return TYPE_HEARTBEAT, _HEARTBEAT.pack(
        frame.uptime_ms, frame.battery_pct, frame.firmware_major, frame.firmware_minor, frame.firmware_patch
    )


def encode(frame: Frame) -> bytes:
    """The complete wire bytes of one frame: SOF, header, payload, CRC-16/MODBUS (low byte first)."""
    frame_type, payload = _pack_payload(frame)
    body = bytes((VERSION, frame_type, frame.seq, len(payload))) + payload
    return SOF + body + crc16_modbus(body).to_bytes(2, "little")


class MalformedFrame(Exception):
    """A CRC-valid frame whose content breaks the spec (reserved bits, out-of-range enum)."""


def parse_payload(frame_type: int, seq: int, payload: bytes) -> Frame:
    """Decode a CRC-checked payload of a known type and exact length; MalformedFrame when its content
    breaks the spec."""
    try:
        if frame_type == TYPE_COMPRESSION:
            device_ms, depth, duration, force, flags, zone = _COMPRESSION.unpack(payload)
            if flags & ~_RECOIL_OK:
                raise MalformedFrame
            return CompressionFrame(seq, device_ms, depth, duration, force, bool(flags), HandZone(zone))
        if frame_type == TYPE_VENTILATION:
            device_ms, volume, duration = _VENTILATION.unpack(payload)
            return VentilationFrame(seq, device_ms, volume, duration)
        if frame_type == TYPE_STATE:
            device_ms, flags, tilt = _STATE.unpack(payload)
            if flags & ~(_AIRWAY_OPEN | _PULSE_CHECK | _CONSCIOUSNESS_CHECK):
                raise MalformedFrame
            return StateFrame(
                seq, device_ms, bool(flags & _AIRWAY_OPEN), tilt, bool(flags & _PULSE_CHECK),
                bool(flags & _CONSCIOUSNESS_CHECK),
            )
        uptime, battery, major, minor, patch = _HEARTBEAT.unpack(payload)
        return HeartbeatFrame(seq, uptime, battery, major, minor, patch)
    except (ValueError, struct.error) as err:
        raise MalformedFrame from err


def frame_name(frame: Frame) -> str:
    """compression, ventilation, state or heartbeat."""
    return frame.NAME


def frame_fields(frame: Frame) -> dict[str, Scalar]:
    """The frame as a flat record of scalars: the value of its signal (or the health's input)."""
    if isinstance(frame, CompressionFrame):
        return {
            "depth_mm": frame.depth_mm,
            "recoil_ok": frame.recoil_ok,
            "hand_zone": frame.hand_zone.label,
            "duration_ms": frame.duration_ms,
            "peak_force_n": frame.peak_force_n,
            "device_ms": frame.device_ms,
        }
    if isinstance(frame, VentilationFrame):
        return {"volume_ml": frame.volume_ml, "duration_ms": frame.duration_ms, "device_ms": frame.device_ms}
    if isinstance(frame, StateFrame):
        return {
            "airway_open": frame.airway_open,
            "head_tilt_deg": frame.head_tilt_deg,
            "pulse_check": frame.pulse_check,
            "consciousness_check": frame.consciousness_check,
            "device_ms": frame.device_ms,
        }
    return {"uptime_ms": frame.uptime_ms, "battery_pct": frame.battery_pct, "firmware": frame.firmware}
