"""The application layer's error: an exam action that cannot be done, and what to do instead."""

from __future__ import annotations


class ServiceError(Exception):
    """An exam action cannot be done; the message says why and what to do."""
