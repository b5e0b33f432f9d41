"""The site configuration: one YAML file describing the hall, its stations, devices and cameras.

Loaded once by the entry point. Pydantic models with `extra="forbid"` so a misspelt key is an
error, not a silently ignored setting; every field documented, and the documentation is what an
error shows as the fix. `load_site_config` reports every problem with the file, its YAML path
(`stations[2].devices[0].port`) and line, and what to write instead.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator
from pydantic_core import PydanticCustomError

from devices.settings import DeviceSettings, ModbusRtuDevice, ModbusTcpDevice, RtuBus, SerialDevice
from station.box import Box, BoxError, box_problem, choose_box

OPERATIONS = ("低压电工作业", "熔化焊接与热切割作业")
"""Operation types this controller scores (STANDARD.md)."""


class ConfigError(Exception):
    """The site file is missing, unreadable or wrong; the message lists every problem and its fix."""


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteInfo(_Config):
    id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{1,31}$", description="site code issued by the province, e.g. GD-SZ-0101"
    )
    name: str = Field(min_length=1, description="site name as on the accreditation, e.g. 深圳市某某实操考试点")
    province: str = Field(min_length=1, description="province whose exam server receives results, e.g. 广东")


class Camera(_Config):
    id: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="camera id within its station, e.g. overview")
    url: str = Field(pattern=r"^(rtsp|rtsps|http|https|file)://", description="main stream URL: rtsp://... or http://.../main.mjpg")
    sub_url: str | None = Field(
        None, pattern=r"^(rtsp|rtsps|http|https|file)://",
        description="low-resolution sub-stream URL for hall tiles; omit to relay the main stream",
    )
    codec: Literal["h264", "mjpeg"] | None = Field(
        None, description="main stream codec the camera is set to (h264 or mjpeg); site-check verifies it")
    resolution: str | None = Field(
        None, pattern=r"^[1-9][0-9]{1,4}x[1-9][0-9]{1,4}$",
        description="main stream resolution the camera is set to, WIDTHxHEIGHT, e.g. 1280x720; site-check verifies it")
    fps: float | None = Field(
        None, gt=0, le=120, description="main stream frame rate the camera is set to; site-check verifies it (±10 %)")


class Station(_Config):
    id: str = Field(pattern=r"^[A-Z][A-Z0-9]{1,7}$", description="station (考位) id, e.g. A01")
    operation: Literal["低压电工作业", "熔化焊接与热切割作业"] = Field(
        description="operation type: 低压电工作业 or 熔化焊接与热切割作业"
    )
    devices: tuple[DeviceSettings, ...] = Field(description="the rigs of this station, each with a kind")
    cameras: tuple[Camera, ...] = Field(min_length=1, description="at least one camera: every station is recorded")
    box: str | None = Field(None, description="with boxes: declared, the id of the box that runs this station")

    @model_validator(mode="after")
    def _unique_names(self) -> Station:
        for what, names in (("device", [d.name for d in self.devices]), ("camera", [c.id for c in self.cameras])):
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"station {self.id}: {what} name {sorted(dup)[0]} is used twice; names must be unique")
        return self


class Storage(_Config):
    data_dir: str = Field("./examstation-data", description="directory for the database, evidence video and keys")
    min_free_gb: float = Field(20.0, ge=0, description="raise the low-disk alarm below this much free space (GB)")
    critical_free_gb: float = Field(
        5.0, ge=0,
        description="below this much free space (GB) no new attempt starts: evidence is never deleted for room")

    @model_validator(mode="after")
    def _watermarks(self) -> Storage:
        if self.critical_free_gb > self.min_free_gb:
            raise ValueError(f"storage: critical_free_gb {self.critical_free_gb:g} is above min_free_gb "
                             f"{self.min_free_gb:g}; the warning must come before the refusal: lower critical_free_gb")
        return self


class Recording(_Config):
    policy: Literal["attempts", "continuous"] = Field(
        "attempts", description="attempts: footage no attempt links is removed after unlinked_keep_hours; "
        "continuous: kept continuous_keep_days. Attempt-linked footage is kept 3 years either way")
    segment_s: float = Field(10.0, ge=2, le=60, description="segment length in seconds (cut at the next keyframe)")
    pre_roll_s: float = Field(30.0, ge=0, le=600, description="seconds before check-in linked to the attempt")
    post_roll_s: float = Field(10.0, ge=0, le=600, description="seconds after sign-off linked to the attempt")
    unlinked_keep_hours: float = Field(24.0, ge=1, description="policy attempts: keep unlinked footage this long")
    continuous_keep_days: float = Field(30.0, ge=1, description="policy continuous: keep unlinked footage this long")


class Uplink(_Config):
    broker_url: str = Field(
        "mqtt://127.0.0.1:1883", pattern=r"^mqtts?://[^/:]+(:\d+)?/?$",
        description="MQTT broker of the provincial exam server: mqtt://host:port or mqtts://host:port",
    )
    username: str | None = Field(None, description="MQTT user name, if the broker requires one")
    password_file: str | None = Field(None, description="file holding the MQTT password (never the password itself)")
    ca_file: str | None = Field(None, description="CA certificate file for mqtts://")
    province_key: str | None = Field(
        None, description="file holding the provincial exam centre's Ed25519 public key (PEM): only receipts signed "
        "with it settle a result; without it no receipt is trusted and results stay queued")
    live_every_s: float | None = Field(
        None, ge=1, le=3600,
        description="publish live station state (examstation/v1/SITE/STATION/live, QoS 0) this often; omit for none",
    )


class Acceptance(_Config):
    """What `examstation site-check` measures the site against, beyond the stations themselves."""

    ntp_server: str | None = Field(
        None, pattern=r"^[A-Za-z0-9.:_-]+$",
        description="NTP server the site's clock is checked against, host or host:port (e.g. ntp.gd.example); "
        "omit and the clock check fails, asking for one")
    max_clock_offset_s: float = Field(
        1.0, gt=0, le=60, description="largest clock offset from the NTP server accepted, in seconds")
    attempts_per_day: int = Field(
        40, ge=1, le=10000, description="attempts (考试人次) the site plans per exam day: sizes 3 years of evidence")
    exam_days_per_year: int = Field(250, ge=1, le=366, description="exam days the site plans per year")
    minutes_per_attempt: float = Field(
        45.0, gt=0, le=600, description="recorded minutes per attempt, check-in to sign-off, per camera")
    requirements: str | None = Field(
        None, description="province override of the station requirements (YAML, same form as "
        "station/site_check/requirements.yaml); omit to use the national ones")
    sample_s: float = Field(10.0, ge=1, le=300, description="seconds each device and camera is sampled")


class Exam(_Config):
    examiners_required: Literal[1, 2] = Field(2, description="examiners (考评员) who must sign each result: 1 or 2")


class Monitoring(_Config):
    metrics_token_file: str | None = Field(
        None, description="file holding the bearer token a remote Prometheus sends to read /metrics (one line; "
        "Prometheus' `authorization: {credentials_file: ...}`); without it /metrics is open to loopback and "
        "signed-in administrators only")


class SiteConfig(_Config):
    site: SiteInfo = Field(description="who this site is")
    buses: tuple[RtuBus, ...] = Field((), description="RS-485 lines that modbus-rtu devices name in `bus:`")
    stations: tuple[Station, ...] = Field(min_length=1, description="the exam stations (考位) of the hall")
    boxes: tuple[Box, ...] = Field((), description="the edge boxes a hall larger than one box is split over; each "
                                   "station names its box, and `examstation run --box ID` runs one (docs/boxes.md)")
    storage: Storage = Field(default_factory=Storage, description="where data lives")
    recording: Recording = Field(default_factory=Recording, description="evidence video: segments, rolls, retention")
    uplink: Uplink = Field(default_factory=Uplink, description="how results reach the province")
    exam: Exam = Field(default_factory=Exam, description="exam rules this site applies")
    acceptance: Acceptance = Field(
        default_factory=Acceptance, description="what `examstation site-check` measures the site against")
    monitoring: Monitoring = Field(default_factory=Monitoring, description="who may read /metrics")
    _box: Box | None = PrivateAttr(None)
    _whole: SiteConfig | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _references(self) -> SiteConfig:
        ids = [s.id for s in self.stations]
        for i, sid in enumerate(ids):
            if sid in ids[:i]:
                raise _at(f"station id {sid} is used twice; give every station its own id", "stations", i, "id")
        if (problem := box_problem(self.boxes, self.stations, [b.id for b in self.buses])) is not None:
            raise _at(problem[0], *problem[1])
        # each endpoint (a TCP address and unit, an RS-485 line and unit, a serial port) -> who has it
        owners: dict[tuple[object, ...], str] = {}
        for i, b in enumerate(self.buses):
            if (port := ("port", _same_port(b.port))) in owners:
                raise _at(f"bus {b.id}: serial port {b.port} is already {owners[port]}'s; one port is one RS-485 "
                          "line: declare it once and put its devices on it with their own unit ids", "buses", i)
            owners[port] = f"bus {b.id}"
        buses = {b.id: b for b in self.buses}
        for si, st in enumerate(self.stations):
            for di, dev in enumerate(st.devices):
                who = f"station {st.id} device {dev.name}"
                if isinstance(dev, ModbusRtuDevice) and dev.bus not in buses:
                    known = ", ".join(buses) or "none declared"
                    raise _at(f"{who}: bus {dev.bus!r} is not declared under buses: (known: {known}); add it or "
                              "fix the name", "stations", si, "devices", di, "bus")
                key, what, fix = _endpoint(dev, buses)
                if key in owners:
                    raise _at(f"{who}: {what} is already {owners[key]}'s {fix}", "stations", si, "devices", di)
                owners[key] = who
        return self

    def bus(self, bus_id: str) -> RtuBus:
        for b in self.buses:
            if b.id == bus_id:
                return b
        raise KeyError(bus_id)

    def station(self, station_id: str) -> Station:
        for s in self.stations:
            if s.id == station_id:
                return s
        raise KeyError(station_id)

    def for_box(self, box_id: str | None) -> SiteConfig:
        """This machine's part of the site (`--box`): its stations and their RS-485 lines only, knowing
        its box (`this_box`) and the whole site (`whole_site`, for the hall). Unchanged without boxes."""
        try:
            box = choose_box(self.boxes, box_id)
        except BoxError as err:
            raise ConfigError(str(err)) from err
        if box is None:
            return self
        own = tuple(st for st in self.stations if st.box == box.id)
        used = {getattr(d, "bus", None) for st in own for d in st.devices}
        part = self.model_copy(update={"stations": own, "buses": tuple(b for b in self.buses if b.id in used)})
        part._box, part._whole = box, self
        return part

    @property
    def this_box(self) -> Box | None:
        """The box this controller is (`for_box`); None for a site that is not split."""
        return self._box

    @property
    def whole_site(self) -> SiteConfig:
        """Every station of the site, whichever box runs it."""
        return self._whole or self


def _at(message: str, *loc: int | str) -> PydanticCustomError:
    """A cross-reference error placed at the YAML path it is about, so the error shows its line."""
    return PydanticCustomError("site_reference", "{message}", {"message": message, "at": loc})


def _same_port(port: str) -> str:
    """`/dev//ttyUSB0/` and `/dev/ttyUSB0` are one port; a pyserial URL is compared as written."""
    return posixpath.normpath(port) if port.startswith("/") else port


def _endpoint(dev: ModbusTcpDevice | ModbusRtuDevice | SerialDevice,
              buses: dict[str, RtuBus]) -> tuple[tuple[object, ...], str, str]:
    """What a device occupies (the key, and in words), and what to do when another has it already.
    Host names compare as DNS does (case, a trailing dot); nothing is resolved here."""
    if isinstance(dev, ModbusTcpDevice):
        return (("tcp", dev.host.lower().rstrip("."), dev.port, dev.unit),
                f"Modbus TCP {dev.host}:{dev.port} unit {dev.unit}", "address; two devices there would answer as one: "
                "give each device its own host or port, or its own unit id behind a shared gateway")
    if isinstance(dev, ModbusRtuDevice):
        port = buses[dev.bus].port
        return (("rtu", _same_port(port), dev.unit), f"unit {dev.unit} on bus {dev.bus} ({port})",
                "address; every device on one RS-485 line needs its own unit id: set a free one on the device and "
                "here")
    return (("port", _same_port(dev.port)), f"serial port {dev.port}",
            "port; a serial port carries one device or one RS-485 line: give each its own port")


def load_site_config(path: Path | str, encoding: str | None = None) -> SiteConfig:
    """Read and validate the site file, including that every device profile exists and fits.

    The file may be UTF-8 (with or without BOM) or GBK/GB18030 (what Notepad and WPS save on a
    Chinese PC); `encoding` names it instead of detecting it. Reading and the error report (each
    problem with its line and the fix) live in station.config_file.
    """
    from station.config_file import read_site_config

    return read_site_config(Path(path), encoding)
