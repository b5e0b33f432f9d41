"""Detectors for the choices a candidate makes with equipment: PPE taken from the cabinet, the
extinguisher picked for the fire."""

from __future__ import annotations

from dataclasses import dataclass

from scoring.detectors.base import Condition, Finding, ItemView, SignalUse, detector


@dataclass(frozen=True, slots=True)
class PpeParams:
    required: tuple[str, ...]
    """Cabinet slots the candidate must take an item from (welding_mask, gloves...)."""
    wrong: tuple[str, ...] = ()
    """Slots whose item is not protective equipment for this job (sunglasses...)."""
    prefix: str = "cabinet.slot."


@detector("ppe_missing", PpeParams,
          lambda p: tuple(SignalUse(p.prefix + slot, "bool") for slot in (*p.required, *p.wrong)))
def ppe_missing(p: PpeParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding per required item the candidate did not take out of its slot during the item, and
    per wrong item taken. A slot already empty at the start (not restocked after the previous
    candidate) is not this candidate's taking."""
    out = []
    for item in p.required:
        if not view.transitions(Condition(p.prefix + item, False)):
            out.append(Finding(view.t_start_ns, view.t_end_ns, f"{item} not taken"))
    for item in p.wrong:
        taken = view.transitions(Condition(p.prefix + item, False))
        if taken:
            t = taken[0][0]
            out.append(Finding(t, t, f"{item} taken, which does not protect this job"))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class AgentParams:
    suitable: tuple[tuple[int, tuple[int, ...]], ...]
    """(fire class code, extinguisher type codes suitable for it), codes as in the trainer's profile."""
    type_signal: str = "extinguisher.type_chosen"
    class_signal: str = "extinguisher.fire_class"
    discharge_signal: str = "extinguisher.discharging"


@detector("wrong_agent", AgentParams, lambda p: (
    SignalUse(p.type_signal, "number"), SignalUse(p.class_signal, "number"), SignalUse(p.discharge_signal, "bool")))
def wrong_agent(p: AgentParams, view: ItemView) -> tuple[Finding, ...]:
    """One finding if the extinguisher discharged was not suitable for the fire's class (or none).
    Judged when the candidate first started discharging during the item."""
    t = view.first(Condition(p.discharge_signal, True))
    if t is None:
        return ()
    kind = view.signal(p.type_signal).value_at(t)
    fire = view.signal(p.class_signal).value_at(t)
    allowed = dict(p.suitable).get(fire if isinstance(fire, int) else -1, ())
    if kind in allowed:
        return ()
    return (Finding(t, t, f"extinguisher type {kind} used on fire class {fire}; suitable: {list(allowed)}"),)
