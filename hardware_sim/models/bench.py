"""The low-voltage wiring bench (低压电工实操考核台) as a behaving device.

It reacts like the real thing: pressing SB2 on a correctly wired K21 circuit pulls in KM1 and the
motor runs and keeps running (self-hold) until SB1; SB3 jogs; a K22 circuit without interlock
shorts two phases when both contactors close; a short-circuit wiring fault trips the breaker the
moment the main switch closes; the PLC self-check (检测) reports what the wiring really is. A
candidate scenario changes only what a person could change: switches, buttons, test leads and
(through `wiring`) how the circuit was wired.
"""

from __future__ import annotations

from enum import StrEnum

from devices.modbus.register_codec import Value

PHASE_VOLTAGE_V = 220.0
MOTOR_CURRENT_A = 1.5
"""A 0.55 kW training motor draws about 1.5 A per phase at 380 V."""
MOTOR_RATED_RPM = 1400
LAMP_POWER_W = 60.0
METER_CONSTANT_IMP_PER_KWH = 3200
"""A typical single-phase electronic meter's pulse constant."""
RCD_TRIP_MA = 30.0
CHECK_DURATION_S = 2.0
FR_TRIP_AFTER_S = 3.0


class Wiring(StrEnum):
    """How the candidate actually wired the circuit, as the bench PLC's self-check would find it."""

    CORRECT = "correct"
    OPEN_CIRCUIT = "open_circuit"
    SHORT_CIRCUIT = "short_circuit"
    NO_SELF_HOLD = "no_self_hold"
    NO_INTERLOCK = "no_interlock"
    PE_MISSING = "pe_missing"


FAULT_CODE: dict[Wiring, int] = {
    Wiring.CORRECT: 0, Wiring.OPEN_CIRCUIT: 1, Wiring.SHORT_CIRCUIT: 2, Wiring.NO_SELF_HOLD: 3,
    Wiring.NO_INTERLOCK: 4, Wiring.PE_MISSING: 6,
}
"""Matches the enum of bench.check_fault in devices/profiles/lv-bench.yaml."""

BUTTONS = ("sb1_stop", "sb2_start", "sb3_jog", "sb4_reverse")


class BenchModel:
    """State and behaviour of one bench; `tick` runs the circuit, `values` reports the points."""

    def __init__(self, task: int = 21, wiring: Wiring = Wiring.CORRECT) -> None:
        self.task = task
        self.wiring = wiring
        self.main_switch = False
        self.lamp_switch = False
        self.meter_probe = False
        self.buttons = dict.fromkeys(BUTTONS, False)
        self.km1 = self.km2 = False
        self.fr_trip = self.short_trip = self.rcd_trip = False
        self.overload = False
        self.leakage_ma = 0.0
        self.motor_rpm = 0.0
        self.energy_kwh = 0.0
        self.check_active = False
        self.check_result = 0
        self.check_fault = 0
        self.check_count = 0
        self._check_left_s = 0.0
        self._overload_s = 0.0
        self._jog_was_down = False

    # --- what a candidate or examiner does --------------------------------------------
    def press(self, button: str, down: bool = True) -> None:
        if button not in self.buttons:
            raise ValueError(f"bench has no button {button!r}; buttons: {', '.join(BUTTONS)}")
        self.buttons[button] = down

    def start_check(self) -> None:
        """Press the bench's 检测 key: the PLC tests the wiring (de-energised) for 2 s."""
        if not self.check_active:
            self.check_active = True
            self._check_left_s = CHECK_DURATION_S

    def reset_protection(self) -> None:
        """The examiner resets a tripped breaker, RCD or thermal relay."""
        self.short_trip = self.rcd_trip = self.fr_trip = False

    def restore(self) -> None:
        """The examiner readies the bench for the next candidate: switches off, meter leads off the
        terminals, buttons released, and the 复位 key, which clears the PLC's last self-check verdict
        and resets tripped protection (the item's rest state, scoring/rubrics)."""
        self.main_switch = self.lamp_switch = self.meter_probe = False
        self.buttons = dict.fromkeys(BUTTONS, False)
        self.reset_protection()
        self.check_active = False
        self.check_result = self.check_fault = 0
        self._check_left_s = 0.0

    # --- behaviour --------------------------------------------------------------------
    @property
    def powered(self) -> bool:
        return self.main_switch and not self.short_trip and not self.rcd_trip

    def tick(self, dt_s: float) -> None:
        if self.check_active:
            self._check_left_s -= dt_s
            if self._check_left_s <= 0:
                self.check_active = False
                self.check_result = 1 if self.wiring == Wiring.CORRECT else 2
                self.check_fault = FAULT_CODE[self.wiring]
                self.check_count += 1
        if self.main_switch and self.wiring == Wiring.SHORT_CIRCUIT:
            self._trip_short()
        if self.main_switch and self.leakage_ma > RCD_TRIP_MA:
            self.rcd_trip = True
            self.main_switch = False
        if not self.powered:
            self.km1 = self.km2 = False
        elif self.wiring != Wiring.OPEN_CIRCUIT:
            self._control_circuit()
        self._motor(dt_s)
        if self.powered and self.lamp_switch and self.task in (23, 24):
            self.energy_kwh += LAMP_POWER_W * dt_s / 3_600_000.0

    def _trip_short(self) -> None:
        self.short_trip = True
        self.main_switch = False
        self.km1 = self.km2 = False

    def _control_circuit(self) -> None:
        b = self.buttons
        stop = b["sb1_stop"] or self.fr_trip
        hold = self.wiring != Wiring.NO_SELF_HOLD
        if self.task == 22:
            want1 = not stop and (b["sb2_start"] or (self.km1 and hold))
            want2 = not stop and (b["sb4_reverse"] or (self.km2 and hold))
            if self.wiring == Wiring.NO_INTERLOCK:
                self.km1, self.km2 = want1, want2
                if self.km1 and self.km2:  # both contactors close: phases swapped into each other
                    self._trip_short()
            else:  # KM1's NC contact is in KM2's coil circuit and vice versa
                self.km1 = want1 and not self.km2
                self.km2 = want2 and not self.km1
        elif self.task in (21, 24):
            # SB3 is a compound button: its NO contact feeds KM1's coil, its NC contact is in the
            # self-hold path. On release the NO opens before the NC closes, so KM1 drops out.
            jog = b["sb3_jog"]
            released_jog = self._jog_was_down and not jog
            self.km1 = not stop and (b["sb2_start"] or jog or (self.km1 and hold and not jog and not released_jog))
            self.km2 = False
            self._jog_was_down = jog

    def _motor(self, dt_s: float) -> None:
        target = MOTOR_RATED_RPM if (self.km1 or self.km2) else 0.0
        step = MOTOR_RATED_RPM * dt_s / 0.5  # 0.5 s run-up and coast-down
        self.motor_rpm = min(target, self.motor_rpm + step) if target else max(0.0, self.motor_rpm - step)
        running = self.km1 or self.km2
        if running and self.overload:
            self._overload_s += dt_s
            if self._overload_s >= FR_TRIP_AFTER_S:
                self.fr_trip = True
        else:
            self._overload_s = 0.0

    def values(self) -> dict[str, Value]:
        on = self.powered
        motor_a = MOTOR_CURRENT_A if (self.km1 or self.km2) and self.task in (21, 22, 24) else 0.0
        lamp_a = LAMP_POWER_W / PHASE_VOLTAGE_V if on and self.lamp_switch and self.task in (23, 24) else 0.0
        return {
            "bench.main_switch": self.main_switch,
            "bench.sb1_stop": self.buttons["sb1_stop"],
            "bench.sb2_start": self.buttons["sb2_start"],
            "bench.sb3_jog": self.buttons["sb3_jog"],
            "bench.sb4_reverse": self.buttons["sb4_reverse"],
            "bench.km1": self.km1,
            "bench.km2": self.km2,
            "bench.fr_trip": self.fr_trip,
            "bench.lamp": on and self.lamp_switch and self.task in (23, 24),
            "bench.short_trip": self.short_trip,
            "bench.rcd_trip": self.rcd_trip,
            "bench.meter_probe": self.meter_probe,
            "bench.lamp_switch": self.lamp_switch,
            "bench.motor_dir": 1 if self.km1 and self.motor_rpm > 0 else (2 if self.km2 and self.motor_rpm > 0 else 0),
            "bench.motor_speed_rpm": round(self.motor_rpm),
            "bench.meter_pulses": int(self.energy_kwh * METER_CONSTANT_IMP_PER_KWH),
            "bench.voltage_l1_v": PHASE_VOLTAGE_V if on else 0.0,
            "bench.voltage_l2_v": PHASE_VOLTAGE_V if on else 0.0,
            "bench.voltage_l3_v": PHASE_VOLTAGE_V if on else 0.0,
            "bench.current_l1_a": round(motor_a + lamp_a, 2),
            "bench.current_l2_a": motor_a,
            "bench.current_l3_a": motor_a,
            "bench.leakage_ma": self.leakage_ma if on else 0.0,
            "bench.task": self.task,
            "bench.check_active": self.check_active,
            "bench.check_result": self.check_result,
            "bench.check_fault": self.check_fault,
            "bench.check_count": self.check_count,
        }
