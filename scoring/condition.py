"""Conditions on signals, and what kind of value a rubric expects a signal to carry.

A `Condition` is how a rubric names a state of the rig (`bench.main_switch eq true`): detectors
take them as parameters, and an item's rest state is a list of them. A `SignalUse` says what a
detector or rest condition reads and of which kind (bool, number, string, or a record with typed
fields), so the engine can refuse a timeline whose values could not have come from a device
(a string "true" where the rubric compares with true, a NaN depth) instead of silently scoring
it, and can tell which device's gap a finding depends on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from scoring.timeline import Scalar, Value

Op = Literal["eq", "ne", "gt", "ge", "lt", "le", "in"]
Kind = Literal["bool", "number", "string"]


def kind_of(value: Scalar) -> Kind:
    """The kind of a plain value; bool is not a number here (Python's True == 1 is not the rig's)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string"


def is_kind(value: object, kind: Kind) -> bool:
    """`value` is of `kind`, and a number is finite."""
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, str)


@dataclass(frozen=True, slots=True)
class Condition:
    """`signal[.field] op value`: e.g. bench.motor_dir eq 1, manikin.state field pulse_check eq true."""

    signal: str
    value: Scalar | tuple[Scalar, ...]
    op: Op = "eq"
    field: str | None = None

    def holds(self, v: Value | None) -> bool:
        if self.field is not None:
            if not isinstance(v, Mapping):
                return False
            v = v.get(self.field)
        if v is None or isinstance(v, Mapping):
            return False
        want = self.value
        if self.op == "in":
            return isinstance(want, tuple) and v in want
        if isinstance(want, tuple):
            return False
        if self.op == "eq":
            return v == want
        if self.op == "ne":
            return v != want
        if isinstance(v, str) or isinstance(want, str):
            return False
        fv, fw = float(v), float(want)
        return {"gt": fv > fw, "ge": fv >= fw, "lt": fv < fw, "le": fv <= fw}[self.op]

    def describe(self) -> str:
        target = f"{self.signal}.{self.field}" if self.field else self.signal
        return f"{target} {self.op} {self.value}"

    def expectation(self) -> str:
        """What the condition asks for, as a person reads it: `0`, `not 0`, `> 5`, `one of (1, 2)`."""
        words = {"eq": "", "ne": "not ", "gt": "> ", "ge": ">= ", "lt": "< ", "le": "<= ", "in": "one of "}
        return f"{words[self.op]}{self.value}"

    @property
    def kind(self) -> Kind:
        """The kind of value the condition compares with (numbers for the ordering operators)."""
        if self.op in ("gt", "ge", "lt", "le"):
            return "number"
        first = self.value[0] if isinstance(self.value, tuple) and self.value else self.value
        return "number" if isinstance(first, tuple) else kind_of(first)

    def use(self) -> SignalUse:
        if self.field is not None:
            return SignalUse(self.signal, None, ((self.field, self.kind),))
        return SignalUse(self.signal, self.kind)


@dataclass(frozen=True, slots=True)
class SignalUse:
    """A signal read by a rubric row, and what its values must be: a plain value of `kind`, or a
    record (`kind` None) whose listed fields have their kinds."""

    signal: str
    kind: Kind | None
    fields: tuple[tuple[str, Kind], ...] = ()

    def problem(self, value: object) -> str | None:
        """Why `value` cannot be this signal's value, or None when it can."""
        if self.kind is not None:
            if is_kind(value, self.kind):
                return None
            return f"{value!r} ({type(value).__name__}) is not a {_name(self.kind)}"
        if not isinstance(value, Mapping):
            return f"{value!r} is not a record with fields {', '.join(f for f, _ in self.fields)}"
        for name, kind in self.fields:
            if name not in value:
                return f"its field {name} is missing"
            if not is_kind(value[name], kind):
                return f"{name} is {value[name]!r}, not a {_name(kind)}"
        return None


def _name(kind: Kind) -> str:
    return {"bool": "bool", "number": "finite number", "string": "string"}[kind]
