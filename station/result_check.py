"""The checks of a signed result against its score sheet and its timeline, with no database at hand.

Two verifiers prove the same facts about a result: `audit verify` reads them from the station
database (station.record_proof) and `examstation verify` from an exported bundle
(station.bundle_verify). Both call these functions, so a check tightened here is tightened for
both, and a bundle never proves less than the database it came from.

Each function returns what does not hold as messages (empty: all holds); the caller says where
(a table and row, or a file of the bundle).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from scoring.canonical import canonical_json
from scoring.engine import score
from scoring.rubric import Rubric
from scoring.timeline import LifecycleRecord, Timeline
from station.db.digest import GENESIS_HASH
from station.result_document import AuditCheckpoint, CandidateRef, VideoEvidence, build_result, without_pointers


@dataclass(frozen=True, slots=True)
class SheetText:
    """A stored score sheet: its version, its exact text (what hashes and re-scores compare) and its value."""

    version: int
    text: str
    data: dict[str, Any]


COMPARED = ("total", "pass_total", "passed", "veto_failed", "complete", "operation")
"""Top-level fields a result copies from its sheet."""


def result_against_sheet(doc: dict[str, Any], sheet: SheetText) -> list[str]:
    """Where the result document and the sheet it was signed over disagree."""
    out: list[str] = []
    for name in COMPARED:
        if doc.get(name) != sheet.data.get(name):
            out.append(f"the result says {name} {doc.get(name)!r}, its score sheet (version {sheet.version}) says "
                       f"{sheet.data.get(name)!r}")
    rubric = doc.get("rubric") or {}
    for name in ("id", "hash"):
        if rubric.get(name) != sheet.data.get(f"rubric_{name}"):
            out.append(f"the result names rubric {name} {rubric.get(name)!r}, its score sheet "
                       f"{sheet.data.get(f'rubric_{name}')!r}")
    by_code = {i.get("code"): i for i in sheet.data.get("items", []) if isinstance(i, dict)}
    for item in doc.get("items", []):
        other = by_code.get(item.get("code"), {})
        for name in ("score", "outcome"):
            if item.get(name) != other.get(name):
                out.append(f"item {item.get('code')}: the result says {name} {item.get(name)!r}, its score sheet "
                           f"says {other.get(name)!r}")
    return out


Part = Literal["sheet", "timeline", "result"]

_LATER_MEMBERS = ("audit_checkpoint", "video_gaps", "checkin_stills")
"""Members added to the result document after the first results were signed: a rebuilt document
leaves out those an older signed one does not have."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The first thing a re-score does not reproduce, and which part of the record it is in."""

    part: Part
    message: str


def rescore(doc: dict[str, Any], attempt_id: str, sheet: SheetText, rubric: Rubric,
            timeline: Timeline) -> Mismatch | None:
    """Score `timeline` (in time order) again with `rubric` (the edition the sheet names): the sheet
    must be exactly what it gives, and the signed document exactly what is built from that score and
    its own evidence lists. The per-camera video pointers are left out of that comparison: they come
    from the recorder's clock, not the timeline, and `result_document.pointer_problems` checks them."""
    fresh = score(rubric, timeline)
    if canonical_json(fresh.to_dict()) != sheet.text:
        return Mismatch("sheet", f"the stored timeline re-scores to total {fresh.total:g} (passed {fresh.passed}), "
                                 f"the sheet says {sheet.data.get('total')}"
                        + first_difference(fresh.to_dict(), sheet.data))
    origin = next((r for r in timeline if isinstance(r, LifecycleRecord) and r.kind == "attempt_start"), None)
    if origin is None:
        return Mismatch("timeline", "no attempt_start record: the result cannot be rebuilt")
    try:
        cand, point = doc["candidate"], doc.get("audit_checkpoint") or {"seq": 0, "entry_hash": GENESIS_HASH}
        rebuilt = build_result(
            result_id=doc["result_id"], attempt_id=attempt_id, seq=doc["seq"], site=doc["site"],
            station=doc["station"], candidate=CandidateRef(cand["id_number"], cand["name"], cand["batch"]),
            sheet=fresh, origin_mono_ns=origin.t_mono_ns, origin_utc_ns=origin.t_utc_ns,
            signed_by=doc["signed_by"], signed_at_utc_ns=0, software=doc["software"],
            video=VideoEvidence(doc["evidence"], doc.get("video_gaps", ()), doc.get("checkin_stills", ())),
            audit_checkpoint=AuditCheckpoint(point["seq"], point["entry_hash"]))
    except (KeyError, TypeError) as err:
        return Mismatch("result", f"the document lacks {err}: it cannot be rebuilt from the timeline")
    rebuilt["signed_at"] = doc.get("signed_at")
    for name in _LATER_MEMBERS:  # documents signed before these existed
        if name not in doc:
            del rebuilt[name]
    rebuilt = without_pointers(rebuilt)
    unsigned = without_pointers({k: v for k, v in doc.items() if k != "signature"})
    if canonical_json(rebuilt) != canonical_json(unsigned):
        return Mismatch("result", "the document differs from the one its re-scored timeline gives"
                        + first_difference(rebuilt, unsigned))
    return None


def first_difference(expected: Any, actual: Any, path: str = "") -> str:
    """"; at items[0].score: 95 here, 65 there": where a person should look first."""
    for p, a, b in _differences(expected, actual, path):
        return f"; first difference at {p or 'the top'}: {a!r} from the timeline, {b!r} stored"
    return ""


def _differences(a: Any, b: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            yield from _differences(a.get(k), b.get(k), f"{path}.{k}" if path else k)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _differences(x, y, f"{path}[{i}]")
    elif a != b:
        yield path, a, b
