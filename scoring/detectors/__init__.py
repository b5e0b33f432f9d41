"""The detector library; importing the package registers every detector by name."""

from scoring.detectors import bands, cpr, equipment, events

__all__ = ["bands", "cpr", "equipment", "events"]
