"""Every wire fault the simulator can inject, over real TCP sockets and a real pty RS-485 line:
the production poller reports the documented error in health and log, goes offline, and is back
within two poll intervals once the fault clears."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import pytest

from devices.ref import DeviceRef
from hardware_sim.models.bench import BenchModel
from tests.integration.modbus_rig import POLL_MS, TIMEOUT_S, Rig, modbus_rig
from tests.integration.waiting import wait_for

KINDS = ["modbus-tcp", "modbus-rtu"]
RECOVERY_S = 2 * POLL_MS / 1000


async def _fault_then_recover(
    rig: Rig, kind: str, expected_text: list[str], clear: Callable[[], Awaitable[None]], in_flight_s: float = 0.0
) -> None:
    """Wait for the fault to take the device offline, check the error, clear it, time the recovery.

    Recovery must take at most two poll intervals, plus `in_flight_s` for a request already on the
    wire when the fault cleared (a swallowed request still waits out its timeout; a slow device
    still owes its queued late answers).
    """
    await wait_for(lambda: rig.health.online is False, 5.0, "device to go offline")
    health = rig.health
    assert health.errors.get(kind, 0) >= 1, health.errors
    for text in expected_text:
        assert text in health.last_error, health.last_error
    assert rig.transitions[-1][:2] == (DeviceRef("T01", "dut"), False)
    await clear()
    cleared_at = time.monotonic()
    await wait_for(lambda: rig.health.online is True, 5.0, "device to come back")
    took = time.monotonic() - cleared_at
    assert took <= RECOVERY_S + in_flight_s + 0.05, f"back after {took:.3f} s"
    assert rig.transitions[-1] == (DeviceRef("T01", "dut"), True, "")


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_no_answer_is_a_timeout(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    async with modbus_rig(kind, "lv-bench", BenchModel()) as rig:
        await wait_for(lambda: rig.health.online is True, 3.0, "first poll")
        rig.wire_faults.no_answer = True

        async def clear() -> None:
            rig.wire_faults.no_answer = False

        with caplog.at_level(logging.WARNING):
            await _fault_then_recover(
                rig, "timeout", ["timed out after 0.30 s", "check power, cabling and the unit id"], clear, TIMEOUT_S
            )
        offline_logs = [r for r in caplog.records if "offline" in r.getMessage()]
        assert len(offline_logs) == 1, "an outage is logged once, not once per poll"
        assert "station T01 dut@" in offline_logs[0].getMessage()
        assert any("back online" in r.getMessage() for r in caplog.records)


async def test_slow_device_is_reported_as_late(kind: str) -> None:
    async with modbus_rig(kind, "lv-bench", BenchModel()) as rig:
        await wait_for(lambda: rig.health.online is True, 3.0, "first poll")
        rig.wire_faults.delay_s = 0.5  # longer than the 0.3 s timeout

        async def clear() -> None:
            rig.wire_faults.delay_s = 0.0

        await _fault_then_recover(rig, "timeout", [], clear, 0.5 + TIMEOUT_S)
        # the first request times out; its late answer then collides with the retry
        reason = next(r for _, online, r in rig.transitions if not online)
        assert "timed out after 0.30 s" in reason or "answer came too late" in reason, reason
        assert "protocol" not in rig.health.errors, "a slow device is not a garbled line"


async def test_corrupt_answers_are_rejected(kind: str) -> None:
    async with modbus_rig(kind, "lv-bench", BenchModel()) as rig:
        await wait_for(lambda: rig.health.online is True, 3.0, "first poll")
        good = len(rig.samples)
        rig.wire_faults.corrupt = True

        async def clear() -> None:
            rig.wire_faults.corrupt = False

        await _fault_then_recover(rig, "protocol", ["not a valid answer", "check wiring, termination"], clear)
        bad = [s for s in rig.samples[good:] if s.signal == "bench.task" and s.value != 21]
        assert not bad, "a garbled answer must never become a sample"


async def test_exception_response_is_named(kind: str) -> None:
    async with modbus_rig(kind, "lv-bench", BenchModel()) as rig:
        await wait_for(lambda: rig.health.online is True, 3.0, "first poll")
        rig.device.faults.exception_code = 4

        async def clear() -> None:
            rig.device.faults.exception_code = 0

        await _fault_then_recover(rig, "exception", ["exception 4 (server device failure)"], clear)


async def test_link_reset_reconnects_without_going_offline(kind: str) -> None:
    """A dropped TCP connection (or a pty hang-up) is retried at once on a new connection."""
    if kind == "modbus-rtu":
        pytest.skip("an RS-485 line has no connection to reset; unplugging is tested below")
    async with modbus_rig(kind, "lv-bench", BenchModel()) as rig:
        await wait_for(lambda: rig.health.online is True, 3.0, "first poll")
        assert rig.proxy is not None
        before = rig.proxy.connections_accepted
        rig.proxy.disconnect_all()
        await wait_for(lambda: rig.proxy is not None and rig.proxy.connections_accepted > before, 3.0, "reconnect")
        await wait_for(lambda: rig.health.polls_ok > 3, 3.0, "polling to continue")
        assert rig.health.online is True


async def test_device_switched_off_and_on(kind: str) -> None:
    async with modbus_rig(kind, "lv-bench", BenchModel()) as rig:
        await wait_for(lambda: rig.health.online is True, 3.0, "first poll")
        await rig.power_off()
        await _fault_then_recover(rig, "disconnected", ["check"], rig.power_on)
        assert rig.health.errors["disconnected"] >= 1
