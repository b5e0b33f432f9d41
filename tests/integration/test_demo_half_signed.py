"""A demo stopped between the two examiners' signatures: the next demo finishes the signing.

With the post-roll wait, a stop often falls while the second examiner's signature waits for the
video, after the first one committed. The next demo's close of left-open attempts must not ask the
first examiner to sign again (that raised and stopped the demo at start).
"""

from __future__ import annotations

from scoring.timeline import EndReason
from station import session as sm
from station.demo_hall import close_left_open
from station.scenario_runner import DEMO_EXAMINERS
from station.services import StationServices
from tests.integration.conftest import ManualClock, ready_station


def test_an_attempt_one_examiner_signed_is_closed_by_the_next_demo(svc: tuple[StationServices, ManualClock]) -> None:
    services, clock = svc
    aid = ready_station(services, clock, {"K3": "K31"})
    services.start_item(aid, "K31", DEMO_EXAMINERS[0])
    services.end_item(aid, "done", DEMO_EXAMINERS[0])
    services.score(aid)
    services.review(aid, DEMO_EXAMINERS[0])
    services.candidate_decision(aid, "K31", signed=True)
    assert services.examiner_sign(aid, DEMO_EXAMINERS[0]) is None  # then the demo stopped

    lines = close_left_open(services)

    assert services.attempt(aid).state == sm.State.QUEUED
    assert len(lines) == 1 and aid in lines[0]


def test_an_attempt_ended_for_an_incident_is_closed_by_the_next_demo(
        svc: tuple[StationServices, ManualClock]) -> None:
    """Items never taken (the attempt ended for a discipline incident) have no sheet to sign: the
    next demo signs the items taken and does not stop at start on the others."""
    services, clock = svc
    aid = ready_station(services, clock, {"K1": "K11", "K3": "K31"})
    services.start_item(aid, "K11", DEMO_EXAMINERS[0])
    services.book.step(aid, DEMO_EXAMINERS[0], sm.end_attempt, EndReason.ABANDONED)
    services.score(aid)  # then the demo stopped

    lines = close_left_open(services)

    assert services.attempt(aid).state == sm.State.QUEUED
    assert len(lines) == 1 and aid in lines[0]
