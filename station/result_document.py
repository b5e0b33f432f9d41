"""The result document: what the province receives, exports contain, and `demo --once --json` prints.

Built from the score sheet and the attempt's facts; the same shape everywhere (DESIGN.md "The
result document"). Times are ISO 8601 UTC for people; every deduction also keeps its offset into
the attempt's video. Signing happens after building (station.signing), over the canonical JSON.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from scoring.sheet import DeductionLine, ItemScore, ScoreSheet

SCHEMA = "examstation/result/v1"


@dataclass(frozen=True, slots=True)
class CandidateRef:
    id_number: str
    name: str
    batch: str


@dataclass(frozen=True, slots=True)
class AuditCheckpoint:
    """The audit chain's head (seq 0 and 64 zeros before the first entry) when a result is signed.
    Signed inside the result, it reaches the province, which can then tell a rolled-back station
    database: one that no longer holds this entry."""

    seq: int
    entry_hash: str


Pointer = Callable[[int], list[dict[str, Any]]]
"""UTC ns on the attempt's clock -> where that moment is in each camera's evidence
(`[{camera, segment_id, offset_s}]`; a camera in a gap then has none)."""


def _nowhere(_utc_ns: int) -> list[dict[str, Any]]:
    return []


@dataclass(frozen=True, slots=True)
class DisciplineNote:
    """A discipline incident (考场违纪) recorded during the attempt (station.discipline)."""

    category: str
    label_zh: str
    note: str
    recorded_by: str
    utc_ns: int


@dataclass(frozen=True, slots=True)
class VideoEvidence:
    """The attempt's video, as the result lists it (station.evidence_link builds it when signing),
    and the discipline incidents to place on it. The incidents travel here because this is what
    the signing hands to `build_result` besides the sheet: like the pointers, they are not in the
    timeline, and a re-score does not rebuild them (`without_pointers`)."""

    segments: Sequence[dict[str, Any]] = ()
    gaps: Sequence[dict[str, Any]] = ()
    stills: Sequence[dict[str, Any]] = ()
    pointer: Pointer = field(default=_nowhere)
    discipline: Sequence[DisciplineNote] = ()


def iso_utc(utc_ns: int) -> str:
    return dt.datetime.fromtimestamp(utc_ns / 1e9, tz=dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _line(d: DeductionLine, origin_mono_ns: int, origin_utc_ns: int, pointer: Pointer) -> dict[str, Any]:
    t_from_utc_ns = origin_utc_ns + d.t_from_ns - origin_mono_ns
    return {
        "row": d.row, "code": d.code, "points": d.points, "count": d.count, "reason": d.reason_zh,
        "detail": d.detail,
        "t_from": iso_utc(t_from_utc_ns),
        "t_to": iso_utc(origin_utc_ns + d.t_to_ns - origin_mono_ns),
        "video_offset_s": d.video_offset_s,
        "video": pointer(t_from_utc_ns),
    }


def _item(it: ItemScore, origin_mono_ns: int, origin_utc_ns: int, pointer: Pointer) -> dict[str, Any]:
    lines = [d for r in it.rows for d in r.deductions]
    return {
        "code": it.code, "subject": it.subject, "title_zh": it.title_zh, "weight": it.weight,
        "score": it.score, "auto_score": it.auto_score, "outcome": it.outcome, "end_reason": it.end_reason,
        "refused_to_sign": it.refused_to_sign, "active_s": it.active_s, "time_limit_s": it.time_limit_s,
        "started_at": iso_utc(it.started_utc_ns), "ended_at": iso_utc(it.ended_utc_ns),
        "deductions": [_line(d, origin_mono_ns, origin_utc_ns, pointer) for d in lines if d.by == "auto"],
        "manual_marks": [_line(d, origin_mono_ns, origin_utc_ns, pointer) for d in lines if d.by == "manual"],
        "overrides": [{"row": r.code, "auto_points": r.auto_points, "points": r.points, "reason": r.override_reason,
                       "by": r.override_by} for r in it.rows if r.override_reason],
        "vetoes": [{"code": v.code, "reason": v.reason_zh, "by": v.by, "detail": v.detail,
                    "video_offset_s": v.video_offset_s,
                    "video": pointer(origin_utc_ns + round(v.video_offset_s * 1e9))} for v in it.vetoes],
        "unverified": [_line(d, origin_mono_ns, origin_utc_ns, pointer) for d in lines if d.by == "unverified"],
        "device_gaps": [{"device": g.device, "signal": g.signal, "reason": g.reason, "raw": g.raw,
                         "t_from": iso_utc(origin_utc_ns + g.t_from_ns - origin_mono_ns),
                         "t_to": iso_utc(origin_utc_ns + g.t_to_ns - origin_mono_ns),
                         "from_offset_s": g.from_offset_s, "to_offset_s": g.to_offset_s} for g in it.gaps],
        "decisions": [{"kind": d.kind, "reason": d.reason, "by": d.examiner, "video_offset_s": d.video_offset_s}
                      for d in it.decisions],
        "rig_at_start": [{"signal": r.signal, "value": r.value, "expected": r.expected, "label": r.label_zh}
                         for r in it.rig_at_start],
        "pauses": [{"reason": p.reason, "from_offset_s": p.from_offset_s, "to_offset_s": p.to_offset_s}
                   for p in it.pauses],
    }


def build_result(*, result_id: str, attempt_id: str, seq: int, site: str, station: str, candidate: CandidateRef,
                 sheet: ScoreSheet, origin_mono_ns: int, origin_utc_ns: int, signed_by: Sequence[str],
                 signed_at_utc_ns: int, audit_checkpoint: AuditCheckpoint, video: VideoEvidence = VideoEvidence(),
                 software: str = "", box: str | None = None) -> dict[str, Any]:
    """The unsigned result document (sign it with SiteKey.sign). `discipline` is there only when
    incidents were recorded (documents from before it existed, and most attempts, have none); `box`
    only from a box of a split hall, whose seq and audit checkpoint count per box (docs/boxes.md)."""
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "result_id": result_id,
        "attempt_id": attempt_id,
        "seq": seq,
        "site": site,
        "station": station,
        "operation": sheet.operation,
        "candidate": {"id_number": candidate.id_number, "name": candidate.name, "batch": candidate.batch},
        "rubric": {"id": sheet.rubric_id, "hash": sheet.rubric_hash},
        "items": [_item(it, origin_mono_ns, origin_utc_ns, video.pointer) for it in sheet.items],
        "total": sheet.total,
        "pass_total": sheet.pass_total,
        "passed": sheet.passed,
        "veto_failed": sheet.veto_failed,
        "complete": sheet.complete,
        "signed_by": list(signed_by),
        "signed_at": iso_utc(signed_at_utc_ns),
        "evidence": list(video.segments),
        "video_gaps": list(video.gaps),
        "checkin_stills": list(video.stills),
        "software": software,
        "audit_checkpoint": {"seq": audit_checkpoint.seq, "entry_hash": audit_checkpoint.entry_hash},
    }
    if box is not None:
        doc["box"] = box
    if video.discipline:
        doc["discipline"] = [{"category": d.category, "label_zh": d.label_zh, "note": d.note,
                              "recorded_by": d.recorded_by, "at": iso_utc(d.utc_ns),
                              "offset_s": round((d.utc_ns - origin_utc_ns) / 1e9, 1), "video": video.pointer(d.utc_ns)}
                             for d in video.discipline]
    return doc


_POINTED = ("deductions", "manual_marks", "unverified", "vetoes")


def without_pointers(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` with the per-camera video pointers and the discipline incidents removed: what a
    re-score of the timeline rebuilds.

    The pointers place moments of the attempt's clock on the recorder's clock; they are signed
    with the result and checked on their own (`pointer_problems`), not rebuilt from the timeline.
    The incidents are recorded beside the timeline (table discipline_incidents, each with its audit
    entry) and are covered by the result's signature, not by a re-score.
    """
    out = {k: v for k, v in doc.items() if k != "discipline"}
    out["items"] = [{k: ([{f: v for f, v in line.items() if f != "video"} for line in val] if k in _POINTED else val)
                     for k, val in item.items()} for item in doc.get("items", [])]
    return out


def pointer_problems(doc: dict[str, Any]) -> list[str]:
    """Every video pointer must name a segment the result lists, of its camera, and fall within it."""
    segments = {e.get("segment_id"): e for e in doc.get("evidence", [])}
    problems = []
    pointed = [(f"item {item.get('code')} {kind} {line.get('code')}", line)
               for item in doc.get("items", []) for kind in _POINTED for line in item.get(kind, [])]
    pointed += [(f"discipline incident {k + 1} ({d.get('category')})", d)
                for k, d in enumerate(doc.get("discipline", []))]
    for where, line in pointed:
        for p in line.get("video", []):
            seg = segments.get(p.get("segment_id"))
            if seg is None or seg.get("camera") != p.get("camera"):
                problems.append(f"{where}: its video points to segment {p.get('segment_id')} of camera "
                                f"{p.get('camera')}, which the result's evidence does not list")
            elif not 0 <= float(p.get("offset_s", -1)) <= _length_s(seg) + 0.001:
                problems.append(f"{where}: its video offset {p.get('offset_s')} s is outside segment "
                                f"{p.get('segment_id')} ({_length_s(seg):.1f} s long)")
    return problems


def _length_s(evidence: dict[str, Any]) -> float:
    start = dt.datetime.fromisoformat(str(evidence["from"]).replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(str(evidence["to"]).replace("Z", "+00:00"))
    return (end - start).total_seconds()
