"""Every configured device answers, is what its profile says, within its poll interval, error-free.

Probed with the controller's own drivers, as `station.device_hub` wires them: Modbus devices through
`DevicePoller` on one `ModbusLink` per TCP endpoint or RS-485 bus (the link's lock makes the devices
of one bus take turns, as on the wire; separate links run in parallel), the manikin and the ID-card
reader through their readers. Identity:
- Modbus: the profile's identity register (a product code) must hold this profile's code; another
  profile's code means another kind of device answers at this address (a swapped IP or unit id).
- Manikin: its frames must decode as manikin-frame-v1, with a heartbeat (firmware) among them.
- ID-card reader: it transmits only when a card is placed, so its known answer is an open port and
  nothing on the line that is not an idcard-line-v1 card line.
Then each device is polled (or listened to) for the sample time; any failed request, retried or
not, any garbled frame, or a median poll slower than the device's interval fails its check.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

from devices.clock import SystemClock
from devices.errors import DeviceError, DeviceExceptionResponse, DeviceTimeout, DeviceUnreachable, ProtocolError
from devices.modbus.block_plan import FUNCTION_CODE
from devices.modbus.link import ModbusLink, RtuTarget, TcpTarget
from devices.modbus.poller import DevicePoller, PolledDevice
from devices.profile import ModbusProfile, SerialProfile, available_profiles, load_profile
from devices.sample import Sample
from devices.serial.id_card_reader import IdCardReader
from devices.serial.manikin_reader import HEARTBEAT_INTERVAL_S, ManikinReader
from devices.settings import ModbusRtuDevice, SerialDevice
from station.site_check.report import Check, CheckContext, Figure

CHECK_POWER = "check the device's power and cabling, and its address (host/port, bus and unit, or serial port) in " \
              "the site config"


def _accept(_: Sample) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class _Device:
    """The device a Check is about; `check()` makes its one Check."""

    station: str
    name: str
    profile: str

    def check(self, passed: bool, detail: str, fix: str | None = None,
              figures: dict[str, Figure] | None = None) -> Check:
        return Check(id=f"device:{self.station}/{self.name}", category="device", passed=passed, detail=detail,
                     title=f"{self.station} {self.name} ({self.profile}) answers as its profile", fix=fix,
                     station=self.station, subject=self.name, figures=figures or {})


async def check_devices(ctx: CheckContext) -> list[Check]:
    """One Check per configured device, in config order; devices on separate links probed at once."""
    links: dict[TcpTarget | RtuTarget, ModbusLink] = {}
    users: dict[TcpTarget | RtuTarget, int] = {}
    jobs: list[asyncio.Task[Check]] = []
    try:
        async with asyncio.TaskGroup() as group:
            for st in ctx.config.stations:
                for dev in st.devices:
                    profile = load_profile(dev.profile)
                    if isinstance(dev, SerialDevice):
                        assert isinstance(profile, SerialProfile)
                        jobs.append(group.create_task(_serial(st.id, dev, profile, ctx.sample_s)))
                        continue
                    assert isinstance(profile, ModbusProfile)
                    bus = ctx.config.bus(dev.bus) if isinstance(dev, ModbusRtuDevice) else None
                    polled = PolledDevice(st.id, dev, profile, bus)
                    key = polled.link_key()
                    if key not in links:
                        links[key] = ModbusLink(key, timeout_s=dev.timeout_s)
                    users[key] = users.get(key, 0) + 1
                    jobs.append(group.create_task(_modbus(polled, links[key], ctx.sample_s, users),
                                                  name=f"site-check {polled.ref}"))
    finally:
        for link in links.values():
            link.close()
    return [job.result() for job in jobs]


def _identity_names() -> dict[int, str]:
    out: dict[int, str] = {}
    for name in available_profiles():
        p = load_profile(name)
        if isinstance(p, ModbusProfile) and p.identity is not None:
            out[p.identity.code] = name
    return out


async def _modbus(device: PolledDevice, link: ModbusLink, sample_s: float,
                  users: dict[TcpTarget | RtuTarget, int]) -> Check:
    s = device.settings
    poller = DevicePoller(device, link, _accept, clock=SystemClock())
    # The worst case of one poll (every block timing out with its retries), times the devices that
    # share the link and so may each hold it that long first.
    worst_s = (len(poller.blocks) + 1) * (s.retries + 1) * s.timeout_s * users[device.link_key()]
    base = _Device(device.station, s.name, s.profile)
    try:
        async with asyncio.timeout(sample_s + worst_s + 2.0):
            code, problem = await _read_identity(poller)
            if problem is not None:
                return base.check(passed=False, detail=problem, fix=CHECK_POWER, figures={"answered": False})
            latencies = await _sample(poller, sample_s)
    except TimeoutError:
        return base.check(passed=False, detail=f"{poller.who}: the probe did not finish within "
                     f"{sample_s + worst_s + 2.0:.1f} s", fix=CHECK_POWER)
    return _modbus_verdict(poller, base, code, latencies)


async def _read_identity(poller: DevicePoller) -> tuple[int | None, str | None]:
    """The identity register's value (None without one), or why it could not be read."""
    ident = poller.device.profile.identity
    s = poller.device.settings
    if ident is None:
        return None, None
    err: DeviceError | None = None
    for _ in range(s.retries + 1):
        try:
            words = await poller.link.read(poller.who, s.unit, FUNCTION_CODE[ident.table], ident.address, 1)
            return int(words[0]), None
        except DeviceExceptionResponse as e:
            return None, (f"{e}; the profile {s.profile} puts its identity register at {ident.table} "
                          f"{ident.address}: this device has another register map")
        except (DeviceUnreachable, DeviceTimeout, ProtocolError) as e:
            err = e
            if isinstance(e, DeviceUnreachable):
                break
        except DeviceError as e:
            err = e
    return None, f"no answer: {err}"


async def _sample(poller: DevicePoller, sample_s: float) -> list[float]:
    """Poll at the device's interval for `sample_s` (as the controller does); each poll's seconds."""
    loop = asyncio.get_running_loop()
    interval = poller.device.interval_s
    end = loop.time() + sample_s
    next_at = loop.time()
    took: list[float] = []
    while (now := loop.time()) < end:
        await poller.poll_once()
        took.append(loop.time() - now)
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - loop.time()))
    return took


def _modbus_verdict(poller: DevicePoller, base: _Device, code: int | None, took: Sequence[float]) -> Check:
    s, profile, h = poller.device.settings, poller.device.profile, poller.health
    interval_ms = poller.device.interval_s * 1000
    ordered = sorted(took)
    median_ms = ordered[len(ordered) // 2] * 1000 if ordered else None
    p95_ms = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] * 1000 if ordered else None
    errors = sum(h.errors.values())
    figures: dict[str, Figure] = {
        "polls_ok": h.polls_ok, "polls_failed": h.polls_failed, "errors": errors,
        "poll_interval_ms": round(interval_ms), "poll_median_ms": _r(median_ms), "poll_p95_ms": _r(p95_ms),
        "poll_max_ms": _r(ordered[-1] * 1000 if ordered else None)}
    ident = profile.identity
    if ident is not None and code is not None:
        figures["identity_code"] = f"0x{code:04X}"
        if code != ident.code:
            other = _identity_names().get(code)
            what = f"the code of {other}" if other else "no known profile's code"
            return base.check(passed=False, figures=figures,
                         detail=f"{poller.who}: identity register {ident.table} {ident.address} holds 0x{code:04X} "
                         f"({what}), expected 0x{ident.code:04X} ({s.profile})",
                         fix=(f"another device answers at this address{f' ({other})' if other else ''}: check the "
                              "device's IP address or unit id against the site config, or set its profile: to the "
                              "device actually there"))
    problems = []
    if h.polls_failed or errors:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(h.errors.items()))
        problems.append(f"{h.polls_failed} of {h.polls_ok + h.polls_failed} polls failed, {errors} request errors "
                        f"({kinds or 'none'}); last: {h.last_error}")
    if median_ms is None:
        problems.append("no poll finished within the sample")
    elif median_ms > interval_ms:
        problems.append(f"a poll takes {median_ms:.1f} ms (median), longer than the poll interval "
                        f"{interval_ms:.0f} ms: the device cannot be read as often as its profile says")
    if problems:
        return base.check(passed=False, figures=figures, detail=f"{poller.who}: " + "; ".join(problems),
                     fix="check the cabling, termination and line speed; a slow bus needs a longer "
                         "poll_interval_ms for its devices, or fewer devices per bus")
    who = (f"identity 0x{code:04X} as {s.profile}" if code is not None
           else "no identity register in its profile (identity not verified)")
    return base.check(passed=True, figures=figures,
                 detail=f"{who}; {h.polls_ok} polls in the sample, none failed, taking {median_ms or 0:.1f} ms "
                        f"(median; 95 % within {p95_ms or 0:.1f} ms) of its {interval_ms:.0f} ms interval")


def _r(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 2)


async def _serial(station: str, dev: SerialDevice, profile: SerialProfile, sample_s: float) -> Check:
    base = _Device(station, dev.name, dev.profile)
    clock = SystemClock()
    if profile.protocol == "idcard-line-v1":
        async with IdCardReader(station, dev, profile, _accept, clock) as reader:
            await asyncio.sleep(sample_s)
            h = reader.health
        figures: dict[str, Figure] = {"port_open": h.port_open, "cards": h.cards_ok,
                                      "bad_lines": h.bad_lines, "overlong_lines": h.overlong_lines}
        if not h.online:
            return base.check(passed=False, figures=figures, detail=h.problem, fix=CHECK_POWER)
        if h.bad_lines or h.overlong_lines:
            return base.check(passed=False, figures=figures,
                         detail=f"{h.bad_lines + h.overlong_lines} lines on {dev.port} in {sample_s:g} s are not "
                         "idcard-line-v1 card lines: another device, or the reader set to another output format",
                         fix="check that the ID-card reader is on this port and set to its serial line output "
                             f"({dev.baudrate} baud, docs/devices/id-card-reader.md)")
        return base.check(passed=True, figures=figures,
                     detail=f"port open for {sample_s:g} s, nothing on the line but idcard-line-v1 "
                            f"({h.cards_ok} cards read; the reader sends only when a card is placed)")
    # A manikin sends a heartbeat every second: listen for at least two.
    window = max(sample_s, 2 * HEARTBEAT_INTERVAL_S + 0.5)
    async with ManikinReader(station, dev, profile, _accept, clock) as manikin:
        await asyncio.sleep(window)
        m = manikin.health
    errors = m.crc_errors + m.malformed_frames + m.unknown_frames + m.lost_frames
    figures = {"frames": m.frames_ok, "crc_errors": m.crc_errors, "lost_frames": m.lost_frames,
               "garbage_bytes": m.garbage_bytes, "firmware": m.firmware, "battery_pct": m.battery_pct,
               "last_frame_age_s": _r(m.last_frame_age_s)}
    if not m.port_open or not m.frames_ok:
        what = m.problem or f"no manikin-frame-v1 frame in {window:g} s"
        return base.check(passed=False, figures=figures, detail=what, fix=CHECK_POWER)
    if m.firmware is None or errors or m.garbage_bytes or not m.online:
        return base.check(passed=False, figures=figures,
                     detail=(f"{m.frames_ok} frames in {window:g} s, heartbeat {'seen' if m.firmware else 'missing'}; "
                             f"{m.crc_errors} CRC errors, {m.lost_frames} lost, "
                             f"{m.malformed_frames + m.unknown_frames} malformed or unknown, "
                             f"{m.garbage_bytes} garbage bytes"),
                     fix="check the cable and that a cpr-manikin (manikin-frame-v1) device is on this port")
    return base.check(passed=True, figures=figures,
                 detail=f"{m.frames_ok} manikin-frame-v1 frames in {window:g} s, firmware {m.firmware}, "
                        f"battery {m.battery_pct} %, no errors")
