"""Candidate scenarios; importing the package registers every scenario by name."""

from hardware_sim.scenarios.base import SCENARIOS, Context, Scenario, scenario

__all__ = ["SCENARIOS", "Context", "Scenario", "scenario"]

from hardware_sim.scenarios import cpr, electrician, exam, extinguisher, welding  # noqa: F401  - registers them
