"""Candidates one after another on one bench, through the whole controller (issue 10, finding 1):
the previous candidate's 合格 still latched on the bench must not pass the next one's failing first
self-check. k21-correct then k21-short-circuit score 100 and 65 as they declare, whether the
examiner restores the bench between them (its rest state) or starts the second anyway, with a
reason that the sheet and the signed result then show."""

from __future__ import annotations

import pytest

from hardware_sim.scenarios import SCENARIOS
from station.config import load_site_config
from station.scenario_runner import play_candidates

CONFIG = load_site_config("examples/site.yaml")
PAIR = [[SCENARIOS["k21-correct"]], [SCENARIOS["k21-short-circuit"]]]


@pytest.mark.timeout(120)
async def test_the_next_candidate_on_a_restored_bench_scores_as_declared() -> None:
    first, second = await play_candidates(PAIR, CONFIG)
    assert (first.item.score, second.item.score) == (100, 65)
    assert second.item.rig_at_start == () and second.item.decisions == ()


@pytest.mark.timeout(120)
async def test_a_bench_not_restored_is_started_anyway_and_scored_only_on_this_candidate() -> None:
    reason = "考台复位键故障，考评员确认接线已拆除重接"
    first, second = await play_candidates(PAIR, CONFIG, restore=False, start_anyway=reason)
    assert first.item.score == 100 and first.item.decisions == ()  # the first start found the bench at rest
    lost = sorted((d.code, d.points) for r in second.item.rows for d in r.deductions)
    assert (second.item.score, lost) == (65, [("K21-3a", 20), ("K21-3g", 15)])
    assert [(d.signal, d.value) for d in second.item.rig_at_start] == [("bench.check_result", 1)]
    doc_item = second.document["items"][0]
    assert doc_item["rig_at_start"] == [{"signal": "bench.check_result", "value": 1, "expected": "0",
                                         "label": "线路检测结果已清除"}]
    assert [(d["kind"], d["reason"]) for d in doc_item["decisions"]] == [("start_anyway", reason)]
