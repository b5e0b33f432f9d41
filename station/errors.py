"""The application layer's error: an exam action that cannot be done, and what to do instead."""

from __future__ import annotations


class ServiceError(Exception):
    """An exam action cannot be done; the message says why and what to do."""


class UsageError(Exception):
    """A command-line argument that cannot work; the message names it and what to give instead.

    Here, not in station.cli: `python -m station.cli` runs that module as `__main__`, and a command
    module importing `station.cli` would get a second class the error boundary does not know."""
