"""An attempt as the plain JSON data stored with every step (`attempts.snapshot`), and back.

Apart from the state machine (station.session) because it is about storage, not the exam's rules:
the attempt book writes a snapshot in each step's transaction and reads them back at start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from station.session import Attempt, ItemClock, State


def to_dict(a: Attempt) -> dict[str, Any]:
    """The attempt as plain JSON data (stored with every step).

    Written out rather than `dataclasses.asdict`, which deep-copies every value recursively and
    was the largest single cost of settling a backlog of receipts (a test keeps the two equal)."""
    data = {f: getattr(a, f) for f in _ATTEMPT_FIELDS}
    data["state"] = a.state.value
    data["items"] = [{**{f: getattr(i, f) for f in _ITEM_FIELDS}, "pause_reasons": list(i.pause_reasons)}
                     for i in a.items]
    data["examiner_signatures"] = list(a.examiner_signatures)
    return data


_ATTEMPT_FIELDS = tuple(f.name for f in fields(Attempt))
_ITEM_FIELDS = tuple(f.name for f in fields(ItemClock))


def from_dict(data: Mapping[str, Any]) -> Attempt:
    """Inverse of `to_dict`."""
    values = dict(data)
    values["state"] = State(values["state"])
    values["items"] = tuple(ItemClock(**{**i, "pause_reasons": tuple(i["pause_reasons"])}) for i in values["items"])
    values["examiner_signatures"] = tuple(values["examiner_signatures"])
    return Attempt(**values)
