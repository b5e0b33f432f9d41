"""ManikinReader against the simulated manikin over a real pty: values, faults, health, logs.

Nothing of ours is mocked: the simulator writes manikin-frame-v1 bytes into a pty, the production
reader opens the pty's path with pyserial and reads it from the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import pytest

from devices.clock import SystemClock
from devices.errors import DeviceConfigError
from devices.profile import FrameField, FramePoint, SerialProfile, load_profile
from devices.sample import Sample, ValueFault
from devices.serial.manikin_codec import StateFrame, encode
from devices.serial.manikin_reader import ManikinReader
from devices.settings import SerialDevice
from hardware_sim.manikin import ManikinSim

LOGGER = "devices.serial.manikin_reader"
HEARTBEAT_S = 0.2
TIMEOUT_S = 0.6


@pytest.fixture(autouse=True)
def no_leaked_fds_or_threads() -> Iterator[None]:
    fds = set(os.listdir("/proc/self/fd"))
    threads = set(threading.enumerate())
    yield
    assert set(os.listdir("/proc/self/fd")) <= fds, "file descriptors leaked"
    leaked = [t for t in threading.enumerate() if t not in threads]
    assert not leaked, f"threads leaked: {leaked}"


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    yield
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not others, f"tasks leaked: {others}"


def profile() -> SerialProfile:
    loaded = load_profile("cpr-manikin")
    assert isinstance(loaded, SerialProfile)
    return loaded


async def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    async with asyncio.timeout(timeout_s):
        # polling a predicate over plain state (sample list, health snapshot) that has no event
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    assert condition(), what


@asynccontextmanager
async def running(
    sim: ManikinSim,
    samples: list[Sample],
    *,
    wait_open: bool = True,
    on_sample: Callable[[Sample], None] | None = None,
    on_fault: Callable[[ValueFault], None] | None = None,
) -> AsyncIterator[ManikinReader]:
    """A reader on the simulator's path; with wait_open, once the port is open (frames sent
    before that are flushed by the open, as on a real port)."""
    settings = SerialDevice(
        kind="serial", name="manikin", profile="cpr-manikin", port=sim.path, heartbeat_timeout_s=TIMEOUT_S
    )
    reader = ManikinReader(
        "A01", settings, profile(), on_sample or samples.append, SystemClock(),
        reopen_min_s=0.05, reopen_max_s=0.2, on_fault=on_fault,
    )
    async with reader:
        if wait_open:
            await wait_until(lambda: reader.health.port_open, 2.0, "reader never opened the pty")
        yield reader


def path_exists(path: str) -> bool:
    return os.path.exists(path)


def values(samples: list[Sample], signal: str) -> list[object]:
    return [s.value for s in samples if s.signal == signal]


async def test_samples_arrive_with_the_right_values() -> None:
    samples: list[Sample] = []
    sim = ManikinSim(heartbeat_interval_s=HEARTBEAT_S, battery_pct=77, firmware=(2, 0, 1))
    async with sim, running(sim, samples) as reader:
        before = time.monotonic_ns()
        pressed = await sim.compress(52.3, recoil_ok=False, hand_zone="too_low", duration_ms=310, peak_force_n=400)
        sent = await sim.ventilate(550, 1200)
        state = await sim.set_state(airway_open=True, head_tilt_deg=30)
        await wait_until(lambda: len(samples) == 3, 2.0, "three samples")
        await wait_until(lambda: reader.health.firmware is not None, 2.0, "a heartbeat")
    compression, ventilation, state_sample = samples
    assert compression.signal == "manikin.compression"
    assert str(compression.device) == "A01/manikin"
    assert compression.value == {
        "depth_mm": 52.3, "recoil_ok": False, "hand_zone": "too_low", "duration_ms": 310, "peak_force_n": 400,
        "device_ms": pressed.device_ms,
    }
    assert ventilation.signal == "manikin.ventilation"
    assert ventilation.value == {"volume_ml": 550, "duration_ms": 1200, "device_ms": sent.device_ms}
    assert state_sample.signal == "manikin.state"
    assert state_sample.value == {
        "airway_open": True, "head_tilt_deg": 30, "pulse_check": False, "consciousness_check": False,
        "device_ms": state.device_ms,
    }
    assert before <= compression.t_mono_ns <= ventilation.t_mono_ns <= state_sample.t_mono_ns
    assert abs(compression.t_utc_ns - time.time_ns()) < 10e9
    health = reader.health
    assert (health.battery_pct, health.firmware) == (77, "2.0.1")
    assert (health.crc_errors, health.lost_frames, health.garbage_bytes) == (0, 0, 0)


async def test_a_frame_field_outside_the_profiles_range_is_a_fault_not_a_sample() -> None:
    """A sensor that reports a 1500 mm compression (the profile says the chest travels at most
    100 mm): the frame is a device fault with its raw fields, and the next good frame a sample."""
    samples: list[Sample] = []
    faults: list[ValueFault] = []
    sim = ManikinSim(heartbeat_interval_s=HEARTBEAT_S)
    async with sim, running(sim, samples, on_fault=faults.append):
        await sim.compress(1500.0)
        good = await sim.compress(55.0)
        await wait_until(lambda: len(samples) == 1 and len(faults) == 1, 2.0, "one fault, one sample")
    assert samples[0].value["depth_mm"] == 55.0 and samples[0].value["device_ms"] == good.device_ms  # type: ignore[index]
    fault = faults[0]
    assert (fault.signal, str(fault.device)) == ("manikin.compression", "A01/manikin")
    assert "depth_mm is above 100 mm" in fault.reason and "depth_mm=1500.0" in fault.raw


async def test_crc_corrupted_frames_are_counted_and_never_delivered() -> None:
    samples: list[Sample] = []
    sim = ManikinSim(heartbeat_interval_s=60)  # no periodic heartbeat may take a corruption
    async with sim, running(sim, samples) as reader:
        await sim.heartbeat()
        sim.faults.corrupt_next = 3
        for depth in (40.0, 41.0, 42.0, 55.0):
            await sim.compress(depth)
        await wait_until(lambda: len(samples) == 1, 2.0, "the one good compression")
        await sim.ventilate(500)
        await wait_until(lambda: len(samples) == 2, 2.0, "the ventilation after it")
        health = reader.health
    assert [v["depth_mm"] for v in values(samples, "manikin.compression")] == [55.0]  # type: ignore[index]
    assert health.crc_errors == 3
    assert health.lost_frames == 3
    assert health.frames_ok == 3  # heartbeat, compression, ventilation


async def test_garbage_and_split_frames_are_survived() -> None:
    samples: list[Sample] = []
    bad = bytearray(encode(StateFrame(9, 1, True, 5, True, True)))
    bad[-1] ^= 0x5A  # a whole frame with a broken CRC, then a lone first half of a SOF
    garbage = b"\x00\xff\x55" + bytes(bad) + b"\xaa"
    async with ManikinSim(heartbeat_interval_s=HEARTBEAT_S) as sim, running(sim, samples) as reader:
        sim.faults.garbage_between = garbage
        sim.faults.chunk_size = 3
        sim.faults.chunk_delay_s = 0.001
        depths = [45.0 + i for i in range(8)]
        for depth in depths:
            await sim.compress(depth, hand_zone="left" if depth > 50 else "correct")
        await sim.ventilate(600, 1500)
        await wait_until(lambda: len(samples) == 9, 3.0, "every frame behind the garbage")
        health = reader.health
    assert [v["depth_mm"] for v in values(samples, "manikin.compression")] == depths  # type: ignore[index]
    assert values(samples, "manikin.ventilation")[0]["volume_ml"] == 600  # type: ignore[index]
    assert health.lost_frames == 0
    assert health.crc_errors >= 9
    assert health.garbage_bytes >= 9 * len(garbage)


async def test_silence_goes_offline_with_a_clear_log_and_comes_back(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    samples: list[Sample] = []
    async with ManikinSim(heartbeat_interval_s=HEARTBEAT_S) as sim, running(sim, samples) as reader:
        await wait_until(lambda: reader.health.online, 2.0, "online from heartbeats")
        sim.faults.silent = True
        await wait_until(lambda: not reader.health.online, 2 * TIMEOUT_S + 1, "offline after silence")
        await asyncio.sleep(TIMEOUT_S * 1.5)  # still silent: it must not log again
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert warnings[0].getMessage().startswith(
            f"station A01 manikin@{sim.path}: no valid frame for {TIMEOUT_S:.1f} s (expected a heartbeat"
        )
        assert warnings[0].getMessage().endswith("check the cable and the manikin's power")
        assert reader.health.problem.startswith(f"station A01 manikin@{sim.path}: no valid frame for ")

        sim.faults.silent = False
        resumed = time.monotonic()
        await wait_until(lambda: reader.health.online, 2 * HEARTBEAT_S + 0.5, "back online")
        assert time.monotonic() - resumed <= 2 * HEARTBEAT_S
    back = [r.getMessage() for r in caplog.records if "back online" in r.getMessage()]
    assert len(back) == 1 and back[0].startswith(f"station A01 manikin@{sim.path}: back online after ")
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


async def test_unplug_and_replug_recovers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    samples: list[Sample] = []
    async with ManikinSim(heartbeat_interval_s=HEARTBEAT_S) as sim, running(sim, samples) as reader:
        await sim.compress(50.0)
        await wait_until(lambda: len(samples) == 1, 2.0, "a compression before the unplug")
        first_tty = sim.tty_name
        await sim.unplug()
        assert not path_exists(sim.path)
        await wait_until(lambda: not reader.health.online, 2.0, "offline once unplugged")
        assert not reader.health.port_open
        await asyncio.sleep(0.3)  # several failed reopens: they must not log again
        await sim.plug()
        assert path_exists(sim.path) and sim.tty_name is not None
        await wait_until(lambda: reader.health.port_open, 2.0, "reopened after replug")
        await sim.compress(56.0)
        await wait_until(lambda: len(samples) == 2, 2.0, "a compression after the replug")
        await wait_until(lambda: reader.health.online, 2.0, "online after replug")
    assert [v["depth_mm"] for v in values(samples, "manikin.compression")] == [50.0, 56.0]  # type: ignore[index]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"station A01 manikin@{sim.path}: serial port lost")
    assert first_tty is not None


async def test_a_port_missing_at_start_is_offline_then_found(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    samples: list[Sample] = []
    async with ManikinSim(heartbeat_interval_s=HEARTBEAT_S) as sim:
        await sim.unplug()
        async with running(sim, samples, wait_open=False) as reader:
            await wait_until(lambda: "cannot open" in reader.health.problem, 2.0, "the failed first open")
            assert not reader.health.online
            await sim.plug()
            await wait_until(lambda: reader.health.online, 3.0, "online once plugged in")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"station A01 manikin@{sim.path}: cannot open the serial port (")
    assert "check that the manikin is plugged in" in warnings[0]


def test_a_profile_naming_an_unknown_field_is_refused() -> None:
    base = profile()
    point = FramePoint(frame="compression", signal="manikin.compression", fields=(FrameField(field="depth_cm"),))
    broken = base.model_copy(update={"points": (point,)})
    settings = SerialDevice(kind="serial", name="manikin", profile="cpr-manikin", port="/dev/null")
    with pytest.raises(DeviceConfigError, match=r"depth_cm.*use one of depth_mm"):
        ManikinReader("A01", settings, broken, lambda s: None, SystemClock())


async def test_leaving_at_once_cancels_the_open_without_leaking() -> None:
    async with ManikinSim(heartbeat_interval_s=HEARTBEAT_S) as sim:
        for _ in range(5):  # cancelled in the open's worker thread or just after it
            async with running(sim, [], wait_open=False) as reader:
                await asyncio.sleep(0)
            assert not reader.health.port_open


async def test_a_failing_consumer_is_logged_and_reading_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger=LOGGER)
    delivered: list[Sample] = []

    def consumer(sample: Sample) -> None:
        if not delivered:
            delivered.append(sample)
            raise RuntimeError("consumer bug")
        delivered.append(sample)

    sim = ManikinSim(heartbeat_interval_s=HEARTBEAT_S)
    async with sim, running(sim, delivered, on_sample=consumer):
        await sim.compress(50.0)
        await sim.compress(51.0)
        await wait_until(lambda: len(delivered) == 2, 2.0, "both compressions offered")
    assert [r.getMessage() for r in caplog.records if "on_sample failed" in r.getMessage()]
