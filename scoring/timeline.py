"""The timeline of one attempt: everything that happened, in order, as plain immutable records.

Scoring reads nothing else. The station appends records as they happen (samples from devices,
lifecycle events, device faults, examiner marks and overrides) and persists them; replaying the
stored records through `score()` must give the same sheet, so records carry their own times and
serialise to JSON and back without loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

Scalar = bool | int | float | str
Value = Scalar | Mapping[str, Scalar]

LifecycleKind = Literal[
    "attempt_start", "item_start", "item_end", "pause", "resume", "signature_refused", "attempt_end"
]


class EndReason(StrEnum):
    """Why an item's clock stopped; an `item_end` record's detail is one of these, nothing else."""

    DONE = "done"
    """The examiner ended it: the candidate finished."""
    TIMEOUT = "timeout"
    """Its time limit was reached (the controller ended it)."""
    VETO_STOP = "veto_stop"
    """A veto (否决项) stopped it."""
    ABANDONED = "abandoned"
    """The candidate gave up."""
    INTERRUPTED = "interrupted"
    """It could not go on (equipment down, a crash): no score, a re-sit."""


END_REASONS = ", ".join(r.value for r in EndReason)

DecisionKind = Literal["start_anyway", "score_with_gap", "resit"]
DECISION_KINDS: tuple[DecisionKind, ...] = ("start_anyway", "score_with_gap", "resit")


@dataclass(frozen=True, slots=True)
class SampleRecord:
    """A device reported `signal` = `value` (canonical signal names, see DESIGN.md)."""

    signal: str
    value: Value
    t_mono_ns: int
    t_utc_ns: int
    device: str = ""


@dataclass(frozen=True, slots=True)
class LifecycleRecord:
    """The attempt or one item started, ended, paused or resumed; `detail` is the end reason."""

    kind: LifecycleKind
    t_mono_ns: int
    t_utc_ns: int
    item: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """A device went offline (`online` false) or came back (true) during the attempt; or, with
    `signal` set, it is online but sent a value its profile cannot represent (NaN, out of range),
    kept here with its `raw` form instead of as a sample."""

    device: str
    online: bool
    reason: str
    t_mono_ns: int
    t_utc_ns: int
    signal: str = ""
    raw: str = ""


@dataclass(frozen=True, slots=True)
class MarkRecord:
    """An examiner's manual deduction (or veto): `code` names a deduction or veto row of the rubric."""

    item: str
    code: str
    count: int
    examiner: str
    note: str
    t_mono_ns: int
    t_utc_ns: int


@dataclass(frozen=True, slots=True)
class OverrideRecord:
    """An examiner sets a row's points by hand; the automatic value is kept beside it."""

    item: str
    row: str
    points: float
    reason: str
    examiner: str
    t_mono_ns: int
    t_utc_ns: int


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """An examiner's decision about an item that scoring must honour and the sheet must show:
    `start_anyway` (started on a rig not at rest), `score_with_gap` (score it although a device it
    reads was down for part of it) or `resit` (no score for it: a re-sit). `reason` is required."""

    item: str
    kind: DecisionKind
    reason: str
    examiner: str
    t_mono_ns: int
    t_utc_ns: int


Record = SampleRecord | LifecycleRecord | FaultRecord | MarkRecord | OverrideRecord | DecisionRecord
Timeline = tuple[Record, ...]

_KINDS: dict[str, type[Record]] = {
    "sample": SampleRecord, "lifecycle": LifecycleRecord, "fault": FaultRecord,
    "mark": MarkRecord, "override": OverrideRecord, "decision": DecisionRecord,
}
_NAMES = {cls: name for name, cls in _KINDS.items()}


def record_to_dict(record: Record) -> dict[str, Any]:
    """JSON-ready form: `{"type": "sample", ...fields}`; mappings become plain dicts."""
    out: dict[str, Any] = {"type": _NAMES[type(record)]}
    for name in record.__slots__:
        value = getattr(record, name)
        out[name] = dict(value) if isinstance(value, Mapping) else value
    return out


def record_from_dict(data: Mapping[str, Any]) -> Record:
    """Inverse of `record_to_dict`; raises ValueError naming the bad record."""
    kind = data.get("type")
    cls = _KINDS.get(str(kind))
    if cls is None:
        raise ValueError(f"timeline record of unknown type {kind!r}; expected one of {', '.join(_KINDS)}")
    fields = {k: v for k, v in data.items() if k != "type"}
    try:
        return cls(**fields)
    except TypeError as err:
        raise ValueError(f"timeline record {dict(data)!r} does not fit {cls.__name__}: {err}") from err


def ordered(records: list[Record] | Timeline) -> Timeline:
    """Records in time order; records at the same instant keep the order they were appended in."""
    return tuple(sorted(records, key=lambda r: r.t_mono_ns))
