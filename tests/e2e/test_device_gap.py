"""A dead device is not a careless candidate (issue 10, finding 6), end to end: the manikin's cable
comes out after two cycles and never comes back. The examiner scores the item with the gap; what
the manikin could not show is listed as unverified in the signed result, not charged."""

from __future__ import annotations

import pytest

from hardware_sim.scenarios import SCENARIOS
from station.config import load_site_config
from station.scenario_runner import play
from station.signing import verify

CONFIG = load_site_config("examples/site.yaml")


@pytest.mark.timeout(90)
async def test_a_dead_manikin_leaves_what_it_could_not_see_to_the_examiner() -> None:
    run = await play(SCENARIOS["cpr-manikin-dies"], CONFIG)
    item = run.document["items"][0]
    assert (item["score"], item["outcome"], item["deductions"]) == (100, "scored", [])
    unverified = sorted(u["code"] for u in item["unverified"])
    assert unverified == ["K42-10b"] * 3 + ["K42-8a"] * 6
    assert all(u["detail"].startswith("unverified: A01/manikin offline") for u in item["unverified"])
    assert [g["device"] for g in item["device_gaps"]] == ["A01/manikin"]
    assert [d["kind"] for d in item["decisions"]] == ["score_with_gap"]
    assert verify(run.document, run.public_pem)
