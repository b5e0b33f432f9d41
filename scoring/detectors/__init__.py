"""The detector library; importing the package registers every detector by name."""

from scoring.detectors import bands, equipment, events

__all__ = ["bands", "equipment", "events"]
