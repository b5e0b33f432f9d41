"""The running score of an attempt while its items run: what the hall and the station page show.

Why a separate, read-only path: `SignOff.score` scores an ended attempt and keeps the sheet (a new
version, an audit entry, the timeline sealed); a score shown while the candidate is still working
must change nothing. So this scores the stored timeline as it stands (the rubric over what the
writer has committed so far; the writer commits every few hundred milliseconds, so the running
score is at most that far behind) and stores nothing. The writer is not flushed: a flush forces a
commit (an fsync) and the hall asks for this several times a second.

Also here: the candidate's registered name for a tile (one small read, for the same views).
"""

from __future__ import annotations

from sqlalchemy import select

from scoring.checks import ScoringError
from scoring.engine import score
from scoring.sheet import DeductionLine, ItemScore, RowScore, ScoreSheet
from scoring.timeline import EndReason, LifecycleRecord, Record
from station.db.errors import DatabaseError
from station.db.models import Candidate
from station.errors import ServiceError
from station.services import StationServices
from station.stored import stored_timeline


def provisional_sheet(services: StationServices, attempt_id: str) -> ScoreSheet:
    """The rubric scored over the stored timeline now (see `provisional`); nothing is stored."""
    return provisional(services, attempt_id)[0]


def provisional(services: StationServices, attempt_id: str) -> tuple[ScoreSheet, dict[str, int]]:
    """The rubric scored over the attempt's stored timeline now (a running item is scored up to its
    last stored record), and, per item not ended, that provisional end (monotonic ns). Nothing is
    stored and the attempt's state does not change.

    Raises ServiceError for an unknown attempt, or a timeline that cannot be scored (the message says
    why; the sheet at sign-off would refuse it the same way)."""
    a = services.attempt(attempt_id)
    try:
        timeline = stored_timeline(services.db, attempt_id)
        ends = _ended_now(timeline)
        return (score(services.rubric(a.operation), timeline + ends),
                {r.item: r.t_mono_ns for r in ends if isinstance(r, LifecycleRecord)})
    except (ScoringError, DatabaseError) as err:
        raise ServiceError(f"attempt {attempt_id}: the running score cannot be computed: {err}") from err


def _ended_now(timeline: tuple[Record, ...]) -> tuple[Record, ...]:
    """An `item_end` ("done", in memory only) at the last stored instant for each item started and
    not ended: without it the engine scores a running item as interrupted (0 points). Deductions
    for steps not done yet then show at that instant (`provisional_charged` leaves them out)."""
    life = [r for r in timeline if isinstance(r, LifecycleRecord)]
    ended = {r.item for r in life if r.kind == "item_end"}
    last = max(timeline, key=lambda r: r.t_mono_ns, default=None)
    if last is None:
        return ()
    return tuple(LifecycleRecord("item_end", last.t_mono_ns, last.t_utc_ns, r.item, EndReason.DONE.value)
                 for r in life if r.kind == "item_start" and r.item not in ended)


Charged = list[tuple[RowScore, DeductionLine]]


def running_score(item: ItemScore, provisional_end_ns: int | None) -> tuple[float, Charged]:
    """An item's score so far out of its 100 points, and the deductions charged so far. An item still
    running was ended at `provisional_end_ns` for scoring, so lines charged at or after that instant
    (steps not done yet: a "missing" line's evidence reaches the item's end, even where it starts at
    the item's start) are left out; an item that ended counts every line; a veto scores 0."""
    charged = [(row, d) for row in item.rows for d in row.deductions
               if d.by != "unverified" and (provisional_end_ns is None or d.by == "manual"
                                            or d.t_to_ns < provisional_end_ns)]
    if item.outcome == "veto":
        return 0.0, charged
    lost = 0.0
    for row in item.rows:
        lost += min(row.max_points, sum(d.points for r, d in charged if r is row))
    return round(max(0.0, 100.0 - lost), 2), charged


def candidate_name(services: StationServices, id_number: str) -> str | None:
    """The registered name of the candidate with this ID number, None if not registered."""
    with services.db.read() as s:
        name: str | None = s.execute(select(Candidate.name).where(Candidate.id_number == id_number)).scalar()
    return name
