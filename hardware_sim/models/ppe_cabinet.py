"""The PPE cabinet (劳动防护用品智能柜): each slot senses whether its item is still in it."""

from __future__ import annotations

from devices.modbus.register_codec import Value

ITEMS = (
    "welding_mask", "goggles", "respirator", "ear_plugs", "welding_clothing", "welding_gloves",
    "safety_boots", "spats", "safety_helmet", "insulating_gloves", "insulating_boots", "sunglasses",
)
"""Slot order of devices/profiles/ppe-cabinet.yaml (sunglasses are the distractor item)."""


class PpeCabinetModel:
    def __init__(self) -> None:
        self.present = dict.fromkeys(ITEMS, True)
        self.door_open = False

    def take(self, item: str) -> None:
        self._slot(item)
        self.door_open = True
        self.present[item] = False

    def put_back(self, item: str) -> None:
        self._slot(item)
        self.present[item] = True

    def restock(self) -> None:
        """The examiner puts every item back and closes the door for the next candidate."""
        self.present = dict.fromkeys(ITEMS, True)
        self.door_open = False

    def _slot(self, item: str) -> None:
        if item not in self.present:
            raise ValueError(f"cabinet has no slot {item!r}; slots: {', '.join(ITEMS)}")

    def tick(self, dt_s: float) -> None:
        """Nothing moves by itself in a cabinet."""

    def values(self) -> dict[str, Value]:
        out: dict[str, Value] = {f"cabinet.slot.{k}": v for k, v in self.present.items()}
        out["cabinet.door_open"] = self.door_open
        return out
