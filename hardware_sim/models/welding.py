"""The welding simulator (虚拟焊接模拟器) and the welding power source, as behaving devices.

The simulator reports the torch as the candidate holds it; the power source reports what the
arc draws, and only strikes an arc when it is switched on and the earth clamp is on the work:
the state bits the K2 safety rows check.
"""

from __future__ import annotations

from dataclasses import dataclass

from devices.modbus.register_codec import Value

PROCESS = {"none": 0, "mma": 1, "co2": 2, "tig": 3}


@dataclass
class Torch:
    """How the candidate holds the torch right now."""

    position_offset_mm: float = 0.0
    travel_speed_mm_s: float = 0.0
    work_angle_deg: float = 90.0
    travel_angle_deg: float = 15.0
    ctwd_mm: float = 12.0
    filler_angle_deg: float = 0.0


class WeldSimModel:
    def __init__(self, process: str = "mma") -> None:
        if process not in PROCESS:
            raise ValueError(f"unknown welding process {process!r}; one of {', '.join(PROCESS)}")
        self.process = process
        self.torch = Torch()
        self.trigger = False
        self.arc_possible = True
        """Set by the power source: no arc without power and earth clamp."""
        self.pass_number = 1
        self.bead_length_mm = 0.0

    @property
    def arc_on(self) -> bool:
        return self.trigger and self.arc_possible

    def tick(self, dt_s: float) -> None:
        if self.arc_on:
            self.bead_length_mm += self.torch.travel_speed_mm_s * dt_s

    def values(self) -> dict[str, Value]:
        t = self.torch
        return {
            "weldsim.arc_on": self.arc_on,
            "weldsim.torch_trigger": self.trigger,
            "weldsim.process": PROCESS[self.process],
            "weldsim.position_offset_mm": round(t.position_offset_mm, 1),
            "weldsim.travel_speed_mm_s": round(t.travel_speed_mm_s, 1),
            "weldsim.work_angle_deg": round(t.work_angle_deg, 1),
            "weldsim.travel_angle_deg": round(t.travel_angle_deg, 1),
            "weldsim.ctwd_mm": round(t.ctwd_mm, 1),
            "weldsim.filler_angle_deg": round(t.filler_angle_deg, 1),
            "weldsim.pass_number": self.pass_number,
            "weldsim.bead_length_mm": round(self.bead_length_mm, 1),
        }


class WeldPowerModel:
    """An inverter set wired to the simulator's torch."""

    def __init__(self, torch: WeldSimModel, current_setpoint_a: float = 110.0) -> None:
        self.sim = torch
        self.power_on = False
        self.gas_valve_open = False
        self.earth_clamp_on = False
        self.current_setpoint_a = current_setpoint_a

    def restore(self) -> None:
        """The examiner readies the booth for the next candidate: torch released, power source off,
        gas closed, earth clamp off the work."""
        self.sim.trigger = False
        self.power_on = self.gas_valve_open = self.earth_clamp_on = False

    def tick(self, dt_s: float) -> None:
        self.sim.arc_possible = self.power_on and self.earth_clamp_on

    def values(self) -> dict[str, Value]:
        arc = self.sim.arc_on
        process = self.sim.process
        current = self.current_setpoint_a if arc else 0.0
        # Arc voltage follows the process's conventional load line (GB/T 15579.1): MMA 20 + 0.04 I,
        # MIG/MAG 14 + 0.05 I, TIG 10 + 0.04 I; longer arcs (CTWD) add about 0.5 V per mm over 12 mm.
        base, slope = {"mma": (20.0, 0.04), "co2": (14.0, 0.05), "tig": (10.0, 0.04)}.get(process, (0.0, 0.0))
        voltage = base + slope * current + 0.5 * max(0.0, self.sim.torch.ctwd_mm - 12.0) if arc else 0.0
        gas = 15.0 if self.gas_valve_open and process in ("co2", "tig") else 0.0
        wire = 6.0 if arc and process == "co2" else 0.0
        return {
            "weld.power_on": self.power_on,
            "weld.gas_valve_open": self.gas_valve_open,
            "weld.earth_clamp_on": self.earth_clamp_on,
            "weld.arc_on": arc,
            "weld.current_a": round(current, 1),
            "weld.voltage_v": round(voltage, 1),
            "weld.wire_feed_m_min": wire,
            "weld.gas_flow_l_min": gas,
            "weld.current_setpoint_a": self.current_setpoint_a,
        }
