"""The simulated rigs react like the real ones, observed the way the controller observes them:
through the production poller over the wire, never by peeking at the model."""

from __future__ import annotations

import pytest

from hardware_sim.models.bench import BenchModel, Wiring
from hardware_sim.models.extinguisher import ExtinguisherModel
from hardware_sim.models.ppe_cabinet import PpeCabinetModel
from hardware_sim.models.welding import WeldPowerModel, WeldSimModel
from tests.integration.modbus_rig import Rig, modbus_rig
from tests.integration.waiting import wait_for


def seen(rig: Rig, signal: str, value: object) -> bool:
    try:
        return rig.latest(signal) == value
    except KeyError:
        return False


async def tap(rig: Rig, bench: BenchModel, button: str) -> None:
    """Press a button until the controller has seen it pressed, then release it."""
    bench.press(button)
    await wait_for(lambda: seen(rig, f"bench.{button}", True), 2.0, f"{button} pressed")
    bench.press(button, down=False)
    await wait_for(lambda: seen(rig, f"bench.{button}", False), 2.0, f"{button} released")


async def test_k21_start_self_hold_jog_and_stop() -> None:
    bench = BenchModel(task=21)
    async with modbus_rig("modbus-tcp", "lv-bench", bench) as rig:
        bench.main_switch = True
        await wait_for(lambda: seen(rig, "bench.voltage_l1_v", 220.0), 2.0, "supply voltage")
        await tap(rig, bench, "sb2_start")
        await wait_for(lambda: seen(rig, "bench.motor_dir", 1), 2.0, "motor running forward")
        assert rig.latest("bench.km1") is True  # still in after SB2 was released: self-hold
        await wait_for(lambda: seen(rig, "bench.current_l1_a", 1.5), 2.0, "motor current")
        await tap(rig, bench, "sb1_stop")
        await wait_for(lambda: seen(rig, "bench.km1", False), 2.0, "KM1 out after SB1")
        bench.press("sb3_jog")
        await wait_for(lambda: seen(rig, "bench.km1", True), 2.0, "KM1 in while jogging")
        bench.press("sb3_jog", down=False)
        await wait_for(lambda: seen(rig, "bench.km1", False), 2.0, "KM1 out when jog released")


async def test_short_circuit_wiring_trips_on_power_on() -> None:
    bench = BenchModel(task=21, wiring=Wiring.SHORT_CIRCUIT)
    async with modbus_rig("modbus-tcp", "lv-bench", bench) as rig:
        await wait_for(lambda: seen(rig, "bench.short_trip", False), 2.0, "first poll")
        bench.main_switch = True
        await wait_for(lambda: seen(rig, "bench.short_trip", True), 2.0, "short-circuit trip")
        assert rig.latest("bench.main_switch") is False
        assert rig.latest("bench.km1") is False


async def test_k22_without_interlock_shorts_when_both_contactors_close() -> None:
    bench = BenchModel(task=22, wiring=Wiring.NO_INTERLOCK)
    async with modbus_rig("modbus-tcp", "lv-bench", bench) as rig:
        bench.main_switch = True
        await tap(rig, bench, "sb2_start")
        await wait_for(lambda: seen(rig, "bench.km1", True), 2.0, "forward")
        bench.press("sb4_reverse")
        await wait_for(lambda: seen(rig, "bench.short_trip", True), 2.0, "phase-to-phase short")


async def test_k22_interlock_keeps_reverse_out_while_forward_runs() -> None:
    bench = BenchModel(task=22)
    async with modbus_rig("modbus-tcp", "lv-bench", bench) as rig:
        bench.main_switch = True
        await tap(rig, bench, "sb2_start")
        await wait_for(lambda: seen(rig, "bench.motor_dir", 1), 2.0, "forward")
        await tap(rig, bench, "sb4_reverse")
        assert rig.latest("bench.km2") is False and rig.latest("bench.short_trip") is False
        await tap(rig, bench, "sb1_stop")
        await tap(rig, bench, "sb4_reverse")
        await wait_for(lambda: seen(rig, "bench.motor_dir", 2), 2.0, "reverse after stop")


@pytest.mark.parametrize(("wiring", "result", "fault"), [(Wiring.CORRECT, 1, 0), (Wiring.NO_SELF_HOLD, 2, 3)])
async def test_self_check_reports_the_wiring(wiring: Wiring, result: int, fault: int) -> None:
    bench = BenchModel(task=21, wiring=wiring)
    async with modbus_rig("modbus-tcp", "lv-bench", bench) as rig:
        bench.start_check()
        await wait_for(lambda: seen(rig, "bench.check_active", True), 2.0, "检测开始")
        await wait_for(lambda: seen(rig, "bench.check_active", False), 4.0, "检测结束")
        assert rig.latest("bench.check_result") == result
        assert rig.latest("bench.check_fault") == fault
        assert rig.latest("bench.check_count") == 1


async def test_welding_arc_needs_power_and_earth_clamp_over_rs485() -> None:
    torch = WeldSimModel("co2")
    power = WeldPowerModel(torch, current_setpoint_a=160.0)
    async with modbus_rig("modbus-rtu", "weld-power", power, unit=2) as rig:
        power.power_on = True
        torch.trigger = True
        await wait_for(lambda: seen(rig, "weld.power_on", True), 2.0, "power on")
        assert rig.latest("weld.arc_on") is False  # no earth clamp, no arc
        power.earth_clamp_on = True
        await wait_for(lambda: seen(rig, "weld.arc_on", True), 2.0, "arc")
        await wait_for(lambda: seen(rig, "weld.current_a", 160.0), 2.0, "welding current")
        assert rig.latest("weld.voltage_v") == pytest.approx(22.0)  # 14 + 0.05 x 160 (MAG load line)


async def test_extinguisher_root_aim_puts_the_fire_out() -> None:
    ext = ExtinguisherModel("B_liquid")
    ext.intensity_pct = 10.0
    async with modbus_rig("modbus-tcp", "extinguisher", ext) as rig:
        ext.choose("dry_powder_abc")
        ext.pin_pulled = True
        ext.aim_at("flame_root", 200)
        ext.squeezing = True
        await wait_for(lambda: seen(rig, "extinguisher.aim_zone", 1), 2.0, "aiming at the root")
        await wait_for(lambda: seen(rig, "extinguisher.fire_out", True), 3.0, "fire out")


async def test_extinguisher_wrong_agent_does_not_work() -> None:
    ext = ExtinguisherModel("C_gas")
    ext.intensity_pct = 10.0
    async with modbus_rig("modbus-tcp", "extinguisher", ext) as rig:
        ext.choose("water")
        ext.pin_pulled = True
        ext.aim_at("flame_root", 200)
        ext.squeezing = True
        await wait_for(lambda: seen(rig, "extinguisher.discharging", True), 2.0, "discharging")
        await wait_for(lambda: ext.agent_pct < 90, 3.0, "agent spent")
        assert rig.latest("extinguisher.fire_out") is False


async def test_cabinet_reports_items_taken_over_rs485() -> None:
    cabinet = PpeCabinetModel()
    async with modbus_rig("modbus-rtu", "ppe-cabinet", cabinet, unit=3) as rig:
        await wait_for(lambda: seen(rig, "cabinet.slot.welding_gloves", True), 2.0, "first poll")
        cabinet.take("welding_gloves")
        cabinet.take("welding_mask")
        await wait_for(lambda: seen(rig, "cabinet.slot.welding_gloves", False), 2.0, "gloves taken")
        assert rig.latest("cabinet.slot.welding_mask") is False
        assert rig.latest("cabinet.door_open") is True
        assert rig.latest("cabinet.slot.spats") is True
