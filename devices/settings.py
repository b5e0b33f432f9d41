"""How to reach one device: the typed, validated settings the device layer is built from.

They live here, not in `station/`, because the device layer must not import the application;
`station.config` embeds them in the site file. Pydantic models (this is the edge where YAML
arrives), `extra="forbid"` so a typo is an error, frozen, and every field documented: the
description doubles as the fix a config error shows.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PollTiming(_Settings):
    """Request timing shared by Modbus devices; defaults follow LIBRARY-NOTES (0.5 s, one retry)."""

    poll_interval_ms: int | None = Field(
        None, ge=10, le=60_000,
        description="poll period in ms (10..60000); omit to use the profile's own interval",
    )
    timeout_s: float = Field(
        0.5, gt=0, le=10, description="seconds to wait for one answer (0 < t <= 10), 0.5 is right for LAN and RS-485"
    )
    retries: int = Field(1, ge=0, le=5, description="extra attempts after a failed request (0..5)")


class ModbusTcpDevice(PollTiming):
    """A rig with its own Ethernet port (or behind a Modbus TCP gateway)."""

    kind: Literal["modbus-tcp"] = Field(description="modbus-tcp")
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="device name within its station, e.g. bench")
    profile: str = Field(description="register map name from devices/profiles, e.g. lv-bench")
    host: str = Field(min_length=1, description="IP address or host name of the rig or gateway")
    port: int = Field(502, ge=1, le=65535, description="TCP port (1..65535), Modbus default 502")
    unit: int = Field(1, ge=0, le=255, description="Modbus unit / device id (0..255), usually 1")


class ModbusRtuDevice(PollTiming):
    """A rig on an RS-485 bus; several devices may share the bus, each with its own unit id."""

    kind: Literal["modbus-rtu"] = Field(description="modbus-rtu")
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="device name within its station, e.g. weldsim")
    profile: str = Field(description="register map name from devices/profiles, e.g. weld-sim")
    bus: str = Field(description="id of an RS-485 bus declared under `buses:`")
    unit: int = Field(ge=1, le=247, description="Modbus RTU slave address on the bus (1..247)")


class SerialDevice(_Settings):
    """A device that streams its own frames over a serial line (the CPR manikin)."""

    kind: Literal["serial"] = Field(description="serial")
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="device name within its station, e.g. manikin")
    profile: str = Field(description="frame map name from devices/profiles, e.g. cpr-manikin")
    port: str = Field(min_length=1, description="serial port path (/dev/ttyUSB0) or pyserial URL (socket://host:port)")
    baudrate: int = Field(115200, ge=1200, le=4_000_000, description="line speed in baud, e.g. 115200")
    heartbeat_timeout_s: float = Field(
        3.0, gt=0, le=60, description="seconds without any good frame before the device counts as offline"
    )


DeviceSettings = Annotated[
    ModbusTcpDevice | ModbusRtuDevice | SerialDevice, Field(discriminator="kind")
]
"""One device of a station, told apart by `kind`."""


class RtuBus(_Settings):
    """One physical RS-485 line: one port, one lock, one speed, shared by every device on it."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$", description="bus id that devices name in `bus:`")
    port: str = Field(min_length=1, description="serial port path, e.g. /dev/ttyUSB0")
    baudrate: int = Field(19200, ge=1200, le=4_000_000, description="line speed in baud (9600, 19200, 115200...)")
    parity: Literal["N", "E", "O"] = Field("N", description="parity: N, E or O")
    stopbits: Literal[1, 2] = Field(1, description="stop bits: 1 or 2")
    inter_frame_gap_ms: float | None = Field(
        None, ge=0, le=1000,
        description="silence between frames in ms; omit for 3.5 character times (1.75 ms above 19200 baud)",
    )

    def gap_s(self) -> float:
        """The silent interval the Modbus RTU spec requires between frames on this line."""
        if self.inter_frame_gap_ms is not None:
            return self.inter_frame_gap_ms / 1000.0
        if self.baudrate > 19200:
            return 0.00175
        bits_per_char = 1 + 8 + (0 if self.parity == "N" else 1) + self.stopbits
        return 3.5 * bits_per_char / self.baudrate
