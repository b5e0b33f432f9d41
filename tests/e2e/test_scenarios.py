"""Every candidate scenario end to end through the whole controller: the simulator played like a
candidate, the production device layer over real sockets and ptys, the session and services
persisting the timeline, the scoring engine, the examiners' signatures and the signed result.
The item score and outcome must be what the scenario worked out by hand from the rubric; the
stored timeline must re-score to the same bytes (what `replay` relies on); the signed document
must verify with the site's public key."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hardware_sim.scenarios import SCENARIOS
from scoring.canonical import canonical_json
from scoring.engine import score
from scoring.rubric_loader import rubric_for
from scoring.timeline import ordered, record_from_dict, record_to_dict
from station.config import load_site_config
from station.scenario_runner import play
from station.signing import verify

CONFIG = load_site_config("examples/site.yaml")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_scenario_scores_as_declared(name: str) -> None:
    scenario = SCENARIOS[name]
    run = await play(scenario, CONFIG)
    item = run.item
    lost = [(d.code, d.points, d.detail) for r in item.rows for d in r.deductions]
    assert (item.score, item.outcome) == (scenario.expected_item_score, scenario.expected_outcome), (
        f"{name}: got {item.score} {item.outcome}, deductions {lost}, vetoes {[v.code for v in item.vetoes]}; "
        f"expected because: {scenario.arithmetic}"
    )
    stored = json.dumps([record_to_dict(r) for r in run.timeline], ensure_ascii=False)
    replayed = ordered([record_from_dict(d) for d in json.loads(stored)])
    again = score(rubric_for(scenario.operation), replayed)
    assert canonical_json(again.to_dict()) == canonical_json(run.sheet.to_dict())
    doc = run.document
    assert [(i["code"], i["score"], i["outcome"]) for i in doc["items"]] == [
        (scenario.item, scenario.expected_item_score, scenario.expected_outcome)]
    assert verify(doc, run.public_pem)
    tampered = {**doc, "total": 100.0 if doc["total"] != 100.0 else 0.0}
    assert not verify(tampered, run.public_pem)


def test_scenarios_cli_lists_them_with_expectations() -> None:
    out = subprocess.run([sys.executable, "-m", "station.cli", "scenarios", "--json"], capture_output=True,
                         text=True, check=True).stdout
    listed = json.loads(out)
    assert {e["name"] for e in listed} == set(SCENARIOS)
    assert len(listed) >= 20
    for entry in listed:
        assert set(entry) == {"name", "operation", "item", "expected_item_score", "expected_outcome"}
        assert entry["expected_outcome"] in ("scored", "veto", "timeout", "interrupted")
