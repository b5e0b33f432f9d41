"""The whole simulated hall, built from the same site config the controller reads.

For every configured device it starts what a real site would have on the wire: a Modbus TCP
server (behind a fault-injecting relay) per Ethernet rig, one Modbus RTU server per RS-485 bus on
a pty pair (every unit id of that bus on it), a manikin streaming frames on a pty, an ID-card
reader on a pty, and per configured camera an H.264 main stream over RTSP (`SimRtspCamera`) beside
an MJPEG camera (`SimCamera`) whose `/sub.mjpg` is the sub-stream, as hall IP cameras offer both; the
main stream has the camera's declared `resolution` and `fps` (so the site check finds what the config
says), and `freeze_camera()` stalls a camera as a hung one does (connected, no frames).
`endpoints()` says where each one is (`examstation sim --print-endpoints`) and `resolved_config()`
rewrites the site config to point at them, so the controller under test is configured exactly as on
a real site.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devices.profile import ModbusProfile, SerialProfile, load_profile
from devices.settings import ModbusRtuDevice, ModbusTcpDevice, SerialDevice
from hardware_sim.camera import SimCamera
from hardware_sim.fault import FaultPlan
from hardware_sim.id_card_reader import IdCardReaderSim
from hardware_sim.manikin import ManikinSim
from hardware_sim.modbus_server import SimModbusServer, SimulatedDevice
from hardware_sim.models.base import DeviceModel
from hardware_sim.models.bench import BenchModel
from hardware_sim.models.extinguisher import ExtinguisherModel
from hardware_sim.models.ppe_cabinet import PpeCabinetModel
from hardware_sim.models.welding import WeldPowerModel, WeldSimModel
from hardware_sim.pty_bridge import PtyBridge
from hardware_sim.rtsp_camera import SimRtspCamera
from hardware_sim.tcp_proxy import FaultyTcpProxy
from station.config import Camera, SiteConfig

Endpoint = dict[str, Any]
_DEFAULT_CAMERA_SIZE = (1280, 720)
_DEFAULT_CAMERA_FPS = 10.0


@dataclass
class StationRig:
    """The simulated equipment of one station, for scenarios to drive like a candidate would."""

    station: str
    bench: BenchModel | None = None
    extinguisher: ExtinguisherModel | None = None
    cabinet: PpeCabinetModel | None = None
    weldsim: WeldSimModel | None = None
    power: WeldPowerModel | None = None
    manikin: ManikinSim | None = None
    id_reader: IdCardReaderSim | None = None
    faults: dict[str, FaultPlan] = field(default_factory=dict)
    """Per device name: the fault plan of its endpoint (for RTU devices, the device's own plan)."""


def _model_for(profile: str, rig: StationRig) -> DeviceModel:
    if profile == "lv-bench":
        rig.bench = BenchModel()
        return rig.bench
    if profile == "extinguisher":
        rig.extinguisher = ExtinguisherModel()
        return rig.extinguisher
    if profile == "ppe-cabinet":
        rig.cabinet = PpeCabinetModel()
        return rig.cabinet
    if profile == "weld-sim":
        rig.weldsim = rig.weldsim or WeldSimModel()
        return rig.weldsim
    if profile == "weld-power":
        rig.weldsim = rig.weldsim or WeldSimModel()
        rig.power = WeldPowerModel(rig.weldsim)
        return rig.power
    raise ValueError(f"hardware_sim has no model for profile {profile!r}; add one under hardware_sim/models/")


def _is_id_card_reader(profile: str) -> bool:
    loaded = load_profile(profile)
    return isinstance(loaded, SerialProfile) and loaded.protocol == "idcard-line-v1"


class SimSite:
    """Async context manager running every simulated device and camera of `config`."""

    def __init__(self, config: SiteConfig, *, cameras: bool = True, camera_fps: float | None = None,
                 device_clock: Callable[[], float] = time.monotonic, time_scale: float = 1.0) -> None:
        self.config = config
        self.with_cameras = cameras
        self.camera_fps = camera_fps
        """Frame rate of every camera's main stream, overriding the declared `fps`; None: each camera
        runs at its declared `fps` (10 when it declares none), at its declared `resolution` (else 720p)."""
        self.device_clock = device_clock
        self.time_scale = time_scale
        """Exam seconds per real second for the device models (with a matching `device_clock`)."""
        """Seconds for devices that keep their own time (the manikin's device_ms)."""
        self.rigs: dict[str, StationRig] = {s.id: StationRig(s.id) for s in config.stations}
        self.tcp: dict[tuple[str, str], FaultyTcpProxy] = {}
        self.buses: dict[str, PtyBridge] = {}
        self.manikins: dict[tuple[str, str], ManikinSim] = {}
        self.id_readers: dict[tuple[str, str], IdCardReaderSim] = {}
        self.cameras: dict[tuple[str, str], SimCamera] = {}
        """Per (station, camera): the MJPEG camera; its `sub_url` is the camera's sub-stream."""
        self.rtsp_cameras: dict[tuple[str, str], SimRtspCamera] = {}
        """Per (station, camera): the H.264 main stream over RTSP, the camera's `url`."""
        self._stack = contextlib.AsyncExitStack()
        self._dir: Path | None = None
        self._servers: list[SimModbusServer] = []

    def set_time_scale(self, scale: float) -> None:
        """Change how fast device models run (exam seconds per real second), from now on."""
        self.time_scale = scale
        for server in self._servers:
            server.time_scale = scale
        for manikin in self.manikins.values():
            manikin.heartbeat_interval_s = 1.0 / scale

    async def __aenter__(self) -> SimSite:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="examstation-sim-"))
        self._stack.callback(shutil.rmtree, self._dir, True)
        rtu: dict[str, list[SimulatedDevice]] = {}
        for st in self.config.stations:
            rig = self.rigs[st.id]
            # weld-sim before weld-power: the power source is wired to the torch
            for dev in sorted(st.devices, key=lambda d: d.profile != "weld-sim"):
                if isinstance(dev, SerialDevice) and _is_id_card_reader(dev.profile):
                    reader = IdCardReaderSim(name=f"{st.id}-{dev.name}", link_dir=self._dir)
                    rig.id_reader = await self._stack.enter_async_context(reader)
                    self.id_readers[(st.id, dev.name)] = reader
                    continue
                if isinstance(dev, SerialDevice):
                    sim = ManikinSim(name=f"{st.id}-{dev.name}", link_dir=self._dir, clock=self.device_clock,
                                     heartbeat_interval_s=1.0 / self.time_scale)
                    rig.manikin = await self._stack.enter_async_context(sim)
                    self.manikins[(st.id, dev.name)] = sim
                    continue
                profile = load_profile(dev.profile)
                assert isinstance(profile, ModbusProfile)
                simdev = SimulatedDevice(dev.unit, profile, _model_for(dev.profile, rig))
                rig.faults[dev.name] = simdev.faults
                if isinstance(dev, ModbusTcpDevice):
                    server = SimModbusServer([simdev], tcp_port=0, time_scale=self.time_scale)
                    await self._stack.enter_async_context(server)
                    self._servers.append(server)
                    proxy = FaultyTcpProxy("127.0.0.1", server.port, simdev.faults)
                    self.tcp[(st.id, dev.name)] = await self._stack.enter_async_context(proxy)
                else:
                    rtu.setdefault(dev.bus, []).append(simdev)
            if self.with_cameras:
                for cam in st.cameras:
                    await self._start_camera(st.id, cam)
        for bus_id, simdevs in rtu.items():
            bus = self.config.bus(bus_id)
            bridge = await self._stack.enter_async_context(PtyBridge(self._dir, bus_id))
            self.buses[bus_id] = bridge
            server = SimModbusServer(simdevs, serial_path=bridge.device_path, baudrate=bus.baudrate,
                                     time_scale=self.time_scale)
            await self._stack.enter_async_context(server)
            self._servers.append(server)

    async def _start_camera(self, station: str, cam: Camera) -> None:
        """The camera as it is set up: its declared main-stream size and rate (a site that declares
        1920x1080 at 15 fps gets that), the sub-stream at half the rate."""
        size = _DEFAULT_CAMERA_SIZE
        if cam.resolution is not None:
            width, height = cam.resolution.split("x")
            size = (int(width), int(height))
        fps = self.camera_fps or cam.fps or _DEFAULT_CAMERA_FPS
        sc = SimCamera(station, cam.id, main_size=size, main_fps=fps, sub_fps=max(1.0, fps / 2))
        self.cameras[(station, cam.id)] = await self._stack.enter_async_context(sc)
        rtsp = SimRtspCamera(station, cam.id, size=size, fps=min(30, max(1, round(fps))))
        self.rtsp_cameras[(station, cam.id)] = await self._stack.enter_async_context(rtsp)

    def freeze_camera(self, station: str, camera: str) -> None:
        """A frozen camera: both streams stay connected and send nothing more (see `resume_camera`)."""
        self.rtsp_cameras[(station, camera)].freeze()
        self.cameras[(station, camera)].freeze()

    def resume_camera(self, station: str, camera: str) -> None:
        self.rtsp_cameras[(station, camera)].resume()
        self.cameras[(station, camera)].resume()

    def endpoints(self) -> list[Endpoint]:
        """One record per device and camera, in config order (the `--print-endpoints` contract)."""
        out: list[Endpoint] = []
        for st in self.config.stations:
            for dev in st.devices:
                if isinstance(dev, ModbusTcpDevice):
                    px = self.tcp[(st.id, dev.name)]
                    out.append({"station": st.id, "device": dev.name, "kind": dev.kind,
                                "host": px.host, "port": px.port, "unit": dev.unit})
                elif isinstance(dev, ModbusRtuDevice):
                    out.append({"station": st.id, "device": dev.name, "kind": dev.kind,
                                "path": self.buses[dev.bus].path, "unit": dev.unit})
                else:
                    out.append({"station": st.id, "device": dev.name, "kind": "serial",
                                "path": self._serial_path((st.id, dev.name))})
            for cam in st.cameras:
                key = (st.id, cam.id)
                if key in self.rtsp_cameras:
                    out.append({"station": st.id, "camera": cam.id, "url": self.rtsp_cameras[key].url,
                                "sub_url": self.cameras[key].sub_url})
        return out

    def _serial_path(self, key: tuple[str, str]) -> str:
        return self.id_readers[key].path if key in self.id_readers else self.manikins[key].path

    def resolved_config(self) -> SiteConfig:
        """The site config with every host, port, serial path and camera URL pointing at the simulator."""
        data = self.config.model_dump(mode="python")
        for bus in data["buses"]:
            if bus["id"] in self.buses:
                bus["port"] = self.buses[bus["id"]].path
                # A pty carries bytes, not parity bits, and Linux refuses to re-apply PARENB on a
                # reopened pty (EINVAL): the simulated line is always 8N1 whatever the site says.
                bus["parity"] = "N"
        for st in data["stations"]:
            for dev in st["devices"]:
                key = (st["id"], dev["name"])
                if dev["kind"] == "modbus-tcp":
                    dev["host"], dev["port"] = self.tcp[key].host, self.tcp[key].port
                elif dev["kind"] == "serial":
                    dev["port"] = self._serial_path(key)
            for cam in st["cameras"]:
                key = (st["id"], cam["id"])
                if key in self.rtsp_cameras:
                    cam["url"], cam["sub_url"] = self.rtsp_cameras[key].url, self.cameras[key].sub_url
        return SiteConfig.model_validate(data)
