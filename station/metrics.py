"""The controller's figures for Prometheus (`/metrics`) and for `/healthz`, read when asked.

Why a collector that reads on each scrape, not prometheus_client's Counter objects: every figure is
already counted where it happens (the pollers' DeviceHealth, the station's sample counts, the
recorder's CameraStats, the outbox in the database, the hall's alarms) as plain ints. Copying them
into a second set of counters would cost every poll and every frame a lock; reading them when
Prometheus asks (every 15 s or so) costs nothing in between, and no background thread runs.

`gather(sources)` takes one consistent-enough snapshot (`Figures`); `families(figures)` turns it
into metric families with units in their names and HELP text that says what each counts;
`exposition(sources)` is the text a scrape gets. `gather` reads the outbox (a database query) when
asked to: call it off the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from devices.camera.camera_stats import CameraStatsSnapshot
from devices.serial.id_card_reader import IdCardHealth
from station.device_hub import DeviceHub
from station.events import AlarmEvent
from station.recording import Recording
from station.services import StationServices
from station.uplink.broker_link import UplinkHealth
from station.uplink.relay import UplinkRelay

GB = 1_000_000_000
C, G = CounterMetricFamily, GaugeMetricFamily
"""Short names keep the tables of metrics below readable."""
Family = CounterMetricFamily | GaugeMetricFamily


@dataclass(frozen=True, slots=True)
class AlarmFigures:
    """The alarms now raised and not cleared, and how many of each code were raised since start."""

    active: tuple[AlarmEvent, ...] = ()
    raised: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the figures are read: the running controller's parts (None where a part does not run)."""

    services: StationServices
    hub: DeviceHub | None = None
    relay: UplinkRelay | None = None
    alarms: Callable[[], AlarmFigures] = AlarmFigures
    """Thread-safe: `gather` runs off the event loop."""


@dataclass(frozen=True, slots=True)
class DeviceFigures:
    station: str
    device: str
    kind: str
    """modbus or serial."""
    online: bool | None
    """None until the device was first heard (or, for Modbus, first polled)."""
    polls: int = 0
    polls_failed: int = 0
    polls_late: int = 0
    request_errors: Mapping[str, int] = field(default_factory=dict)
    mean_latency_s: float | None = None
    frames: int = 0
    """Serial devices: good frames (the manikin) or ID-card reads."""
    frames_rejected: int = 0
    samples: int = 0
    samples_refused: int = 0


@dataclass(frozen=True, slots=True)
class Figures:
    site: str
    software: str
    devices: tuple[DeviceFigures, ...]
    cameras: tuple[tuple[str, str, CameraStatsSnapshot], ...]
    """(station, camera, stats) of every recorded camera."""
    cameras_configured: tuple[tuple[str, str], ...]
    recording: bool
    """An evidence recording runs (station.recording)."""
    uplink_connected: bool | None
    """None: no relay runs in this process."""
    uplink_down_s: float | None
    """How long the uplink has been disconnected (None when connected or no relay)."""
    outbox: UplinkHealth | None
    """Read only when asked (`gather(..., outbox=True)`): it queries the database."""
    alarms: AlarmFigures
    disk_free_bytes: float | None
    disk_level: str | None
    """None, disk.low or disk.critical (station.disk_watch)."""
    since_tick_s: float | None
    """Seconds since the main loop last ticked the item clocks (None: it never did)."""


def gather(sources: Sources, *, outbox: bool = True) -> Figures:
    """Read every figure now. Blocking when `outbox` (a database query): call it in a thread."""
    services = sources.services
    now_mono = services.clock.mono_ns()
    samples = dict(services.devices.samples)
    refused = dict(services.devices.samples_refused)
    devices: list[DeviceFigures] = []
    if sources.hub is not None:
        for ref, h in sources.hub.poller.health().items():
            mean = h.mean_latency_ms
            devices.append(DeviceFigures(
                ref.station, ref.name, "modbus", h.online, h.polls_ok + h.polls_failed, h.polls_failed, h.polls_late,
                dict(h.errors), None if mean is None else mean / 1000.0, samples=samples.get(ref, 0),
                samples_refused=refused.get(ref, 0)))
        for reader in sources.hub.readers:
            m = reader.health
            ok, bad = ((m.cards_ok, m.bad_lines + m.overlong_lines) if isinstance(m, IdCardHealth)
                       else (m.frames_ok, m.crc_errors + m.malformed_frames))
            devices.append(DeviceFigures(m.device.station, m.device.name, "serial", m.online, frames=ok,
                                         frames_rejected=bad, samples=samples.get(m.device, 0),
                                         samples_refused=refused.get(m.device, 0)))
    recording = services.registration.recording
    cameras: list[tuple[str, str, CameraStatsSnapshot]] = []
    disk_free = disk_level = None
    if isinstance(recording, Recording):
        for label, snap in recording.recorder.stats().items():
            station, _, camera = label.partition("/")
            cameras.append((station, camera, snap))
        disk_free = None if recording.disk.free_gb is None else recording.disk.free_gb * GB
        disk_level = recording.disk.level
    relay = sources.relay
    down = None
    if relay is not None and not relay.connected:
        down = max(0.0, (relay.clock.utc_ns() - relay.link_changed_utc_ns) / 1e9)
    ticked = services.ticked_mono_ns
    return Figures(
        site=services.config.site.id, software=services.software, devices=tuple(devices), cameras=tuple(cameras),
        cameras_configured=tuple((st.id, cam.id) for st in services.config.stations for cam in st.cameras),
        recording=isinstance(recording, Recording), uplink_connected=None if relay is None else relay.connected,
        uplink_down_s=down, outbox=relay.health() if outbox and relay is not None else None,
        alarms=sources.alarms(), disk_free_bytes=disk_free, disk_level=disk_level,
        since_tick_s=None if ticked is None else max(0.0, (now_mono - ticked) / 1e9))


def _family(kind: type[Family], name: str, help_text: str, labels: tuple[str, ...],
            rows: Iterable[tuple[tuple[str, ...], float]]) -> Family:
    fam = kind(name, help_text, labels=list(labels))
    for values, value in rows:
        fam.add_metric(list(values), value)
    return fam


def families(f: Figures) -> Iterator[Family | InfoMetricFamily]:
    """The metric families of `f`. Counters are totals since the controller started."""
    info = InfoMetricFamily("examstation", "the site this controller serves and its software")
    info.add_metric([], {"site": f.site, "software": f.software})
    yield info
    dev = ("station", "device")
    modbus = [d for d in f.devices if d.kind == "modbus"]
    serial = [d for d in f.devices if d.kind == "serial"]
    yield _family(G, "examstation_device_online", "1 when the device answers, 0 when it is offline or not heard "
                  "from yet", (*dev, "kind"),
                  [((d.station, d.device, d.kind), float(bool(d.online))) for d in f.devices])
    yield _family(C, "examstation_device_polls", "Modbus polls of the device (every block read once), "
                  "good or failed", dev, [((d.station, d.device), d.polls) for d in modbus])
    yield _family(C, "examstation_device_polls_failed", "Modbus polls that failed after their retries (the device "
                  "counts as offline)", dev, [((d.station, d.device), d.polls_failed) for d in modbus])
    yield _family(C, "examstation_device_polls_late", "Modbus polls that ended after the next poll was due (their "
                  "deadline is one poll interval): a slow or silent device, or a busy controller",
                  dev, [((d.station, d.device), d.polls_late) for d in modbus])
    yield _family(C, "examstation_device_request_errors", "failed Modbus requests by kind (timeout, disconnected, "
                  "protocol, exception, value...), retries included", (*dev, "error"),
                  [((d.station, d.device, k), n) for d in modbus for k, n in sorted(d.request_errors.items())])
    yield _family(G, "examstation_device_poll_latency_seconds", "moving mean of a good poll's duration",
                  dev, [((d.station, d.device), d.mean_latency_s) for d in modbus if d.mean_latency_s is not None])
    yield _family(C, "examstation_serial_frames", "good frames from a serial device (manikin frames, ID-card "
                  "reads)", dev, [((d.station, d.device), d.frames) for d in serial])
    yield _family(C, "examstation_serial_frames_rejected", "frames a serial device sent that were refused (CRC, "
                  "malformed, bad ID-card lines)", dev, [((d.station, d.device), d.frames_rejected) for d in serial])
    yield _family(C, "examstation_samples", "changed readings (samples) a device reported to the station",
                  dev, [((d.station, d.device), d.samples) for d in f.devices])
    yield _family(C, "examstation_samples_refused", "samples not accepted because the station's store was full or "
                  "stalled (offered again by the device layer; the stretch is recorded as a device gap)",
                  dev, [((d.station, d.device), d.samples_refused) for d in f.devices])
    yield from _camera_families(f)
    yield from _uplink_families(f)
    yield _family(G, "examstation_alarms_active", "alarms raised and not cleared, by code and station "
                  "('' for site-wide ones)", ("code", "station"),
                  [((a.code, a.station or ""), 1.0) for a in f.alarms.active])
    yield _family(C, "examstation_alarms_raised", "alarms raised since the controller started, by code",
                  ("code",), sorted(((code,), n) for code, n in f.alarms.raised.items()))
    if f.disk_free_bytes is not None:
        yield _family(G, "examstation_disk_free_bytes", "free space on the evidence disk", (),
                      [((), f.disk_free_bytes)])
    yield _family(G, "examstation_disk_low", "1 below storage.min_free_gb, 2 below storage.critical_free_gb (no "
                  "new attempt starts), else 0", (), [((), {"disk.low": 1.0, "disk.critical": 2.0}.get(
                      f.disk_level or "", 0.0))])
    if f.since_tick_s is not None:
        yield _family(G, "examstation_main_loop_tick_age_seconds", "seconds since the main loop last ticked the item "
                      "clocks (it ticks ten times a second)", (), [((), f.since_tick_s)])


def _camera_families(f: Figures) -> Iterator[Family]:
    cam = ("station", "camera")
    rows = f.cameras
    yield _family(C, "examstation_camera_frames", "video packets written to evidence segments", cam,
                  [((s, c), x.frames) for s, c, x in rows])
    yield _family(C, "examstation_camera_segments", "evidence segments finished (fsynced, renamed, hashed)", cam,
                  [((s, c), x.segments) for s, c, x in rows])
    yield _family(C, "examstation_camera_gaps", "video gaps opened: the camera stopped, its queue was full or a "
                  "write failed", cam, [((s, c), x.gaps) for s, c, x in rows])
    yield _family(C, "examstation_camera_reconnects", "camera connection attempts after the first", cam,
                  [((s, c), x.reconnects) for s, c, x in rows])
    yield _family(C, "examstation_camera_frames_dropped", "packets lost to a full writer queue (a slow disk)", cam,
                  [((s, c), x.dropped) for s, c, x in rows])
    yield _family(G, "examstation_camera_queued_frames", "packets waiting for the segment writer", cam,
                  [((s, c), x.queued) for s, c, x in rows])
    yield _family(G, "examstation_camera_connected", "1 while the recorder holds a connection to the camera", cam,
                  [((s, c), float(x.connected)) for s, c, x in rows])
    yield _family(G, "examstation_camera_last_frame_age_seconds", "seconds since the camera's last packet", cam,
                  [((s, c), x.last_frame_age_s) for s, c, x in rows if x.last_frame_age_s is not None])
    yield _family(G, "examstation_camera_recording", "1 when the camera is recorded by this controller", cam,
                  [((s, c), float(f.recording and any((s, c) == (s2, c2) for s2, c2, _ in rows)))
                   for s, c in f.cameras_configured])


def _uplink_families(f: Figures) -> Iterator[Family]:
    if f.uplink_connected is not None:
        yield _family(G, "examstation_uplink_connected", "1 while connected to the province's MQTT broker", (),
                      [((), float(f.uplink_connected))])
        yield _family(G, "examstation_uplink_disconnected_seconds", "how long the uplink has been down (0 while "
                      "connected)", (), [((), f.uplink_down_s or 0.0)])
    h = f.outbox
    if h is None:
        return
    yield _family(G, "examstation_outbox_queued", "signed results waiting for the province's receipt", (),
                  [((), h.backlog.queued)])
    yield _family(G, "examstation_outbox_rejected", "results the province rejected (need `examstation outbox retry`)",
                  (), [((), h.backlog.failed)])
    yield _family(G, "examstation_outbox_delivered", "results delivered (a signed receipt came back), in the database",
                  (), [((), h.backlog.delivered)])
    yield _family(G, "examstation_outbox_oldest_age_seconds", "age of the oldest result still queued (0 when none is)",
                  (), [((), h.oldest_queued_age_s or 0.0)])
    s = h.stats
    yield _family(C, "examstation_uplink_connects", "connections made to the broker", (), [((), s.connects)])
    yield _family(C, "examstation_uplink_published", "results published (resends included)", (), [((), s.published)])
    yield _family(C, "examstation_uplink_receipts", "signed receipts received from the province", (),
                  [((), s.receipts)])


class StationCollector(Collector):
    """A prometheus_client collector reading the controller's figures at each `collect()`."""

    def __init__(self, read: Callable[[], Figures]) -> None:
        self._read = read

    def collect(self) -> Iterator[Family | InfoMetricFamily]:
        return families(self._read())


def exposition(sources: Sources) -> bytes:
    """The text format 0.0.4 of every figure and of the process (CPU, memory, open files).
    Blocking (reads the outbox): call it in a thread."""
    registry = CollectorRegistry()
    registry.register(StationCollector(lambda: gather(sources)))
    ProcessCollector(registry=registry)
    return generate_latest(registry)


__all__ = ["AlarmFigures", "DeviceFigures", "Figures", "Sources", "StationCollector", "exposition", "families",
           "gather"]
