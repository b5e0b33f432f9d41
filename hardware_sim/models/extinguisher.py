"""The extinguisher trainer (灭火实训装置): a sensor fire panel that an extinguisher can put out.

The fire only goes out for the right agent aimed at the flame root from a sensible distance,
which is exactly what the K43/K42 sheets score: choose the type for the fire class, pull the pin,
aim at the root (对准火焰根部), sweep until it is out.
"""

from __future__ import annotations

from devices.modbus.register_codec import Value

TYPES = {"none": 0, "dry_powder_abc": 1, "co2": 2, "foam": 3, "water": 4}
AIM = {"none": 0, "flame_root": 1, "flame_middle": 2, "flame_top": 3, "off_target": 4}
FIRE_CLASS = {"A_solid": 1, "B_liquid": 2, "C_gas": 3, "E_electrical": 4}

SUITABLE: dict[str, frozenset[str]] = {
    "A_solid": frozenset({"dry_powder_abc", "foam", "water"}),
    "B_liquid": frozenset({"dry_powder_abc", "co2", "foam"}),
    "C_gas": frozenset({"dry_powder_abc"}),
    "E_electrical": frozenset({"dry_powder_abc", "co2"}),
}
"""GB 50140 selection rules, simplified to the four agents a trainer offers."""

KNOCKDOWN_PCT_PER_S = {"flame_root": 25.0, "flame_middle": 6.0, "flame_top": 1.0, "off_target": 0.0, "none": 0.0}
EFFECTIVE_DISTANCE_CM = (100, 300)
DISCHARGE_PCT_PER_S = 8.0
"""A 4 kg dry-powder extinguisher empties in about 12-14 s."""
REGROWTH_PCT_PER_S = 2.0


class ExtinguisherModel:
    def __init__(self, fire_class: str = "B_liquid") -> None:
        if fire_class not in FIRE_CLASS:
            raise ValueError(f"unknown fire class {fire_class!r}; one of {', '.join(FIRE_CLASS)}")
        self.fire_class = fire_class
        self.type_chosen = "none"
        self.pin_pulled = False
        self.hose_held = False
        self.squeezing = False
        self.aim = "none"
        self.distance_cm = 500
        self.intensity_pct = 100.0
        self.agent_pct = 100.0

    def choose(self, kind: str) -> None:
        if kind not in TYPES:
            raise ValueError(f"unknown extinguisher type {kind!r}; one of {', '.join(TYPES)}")
        self.type_chosen = kind
        self.pin_pulled = self.squeezing = False
        self.agent_pct = 100.0

    def restore(self) -> None:
        """The examiner readies the trainer for the next candidate: a charged extinguisher back on its
        stand with its pin in, nobody holding the hose, the fire lit again."""
        self.type_chosen = "none"
        self.pin_pulled = self.hose_held = self.squeezing = False
        self.aim = "none"
        self.distance_cm = 500
        self.intensity_pct = self.agent_pct = 100.0

    def aim_at(self, zone: str, distance_cm: int) -> None:
        if zone not in AIM:
            raise ValueError(f"unknown aim zone {zone!r}; one of {', '.join(AIM)}")
        self.aim = zone
        self.distance_cm = distance_cm

    @property
    def discharging(self) -> bool:
        return self.squeezing and self.pin_pulled and self.type_chosen != "none" and self.agent_pct > 0

    @property
    def fire_out(self) -> bool:
        return self.intensity_pct <= 0.0

    def tick(self, dt_s: float) -> None:
        if self.discharging:
            self.agent_pct = max(0.0, self.agent_pct - DISCHARGE_PCT_PER_S * dt_s)
            if self.type_chosen in SUITABLE[self.fire_class] and not self.fire_out:
                rate = KNOCKDOWN_PCT_PER_S[self.aim]
                low, high = EFFECTIVE_DISTANCE_CM
                if not low <= self.distance_cm <= high:
                    rate /= 3
                self.intensity_pct = max(0.0, self.intensity_pct - rate * dt_s)
        elif not self.fire_out:
            self.intensity_pct = min(100.0, self.intensity_pct + REGROWTH_PCT_PER_S * dt_s)

    def values(self) -> dict[str, Value]:
        return {
            "extinguisher.pin_pulled": self.pin_pulled,
            "extinguisher.discharging": self.discharging,
            "extinguisher.fire_out": self.fire_out,
            "extinguisher.hose_held": self.hose_held,
            "extinguisher.type_chosen": TYPES[self.type_chosen],
            "extinguisher.aim_zone": AIM[self.aim] if self.discharging else 0,
            "extinguisher.distance_cm": self.distance_cm,
            "extinguisher.fire_class": FIRE_CLASS[self.fire_class],
            "extinguisher.fire_intensity_pct": round(self.intensity_pct),
            "extinguisher.agent_pct": round(self.agent_pct),
        }
