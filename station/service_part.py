"""What each part of the application layer (registration, the exam run, device events, sign-off) works with.

The one writer of attempts (`AttemptBook`), the site config, the rubric of each operation, what
the rigs show now, and the clock: `StationServices` builds them once and hands the same ones to
every part, so two parts can never disagree about an attempt or the time.
"""

from __future__ import annotations

from collections.abc import Callable

from devices.clock import Clock
from scoring.rubric import Rubric
from station.attempt_book import AttemptBook
from station.config import SiteConfig
from station.rig_check import RigState


class ServicePart:
    def __init__(self, book: AttemptBook, config: SiteConfig, rubric_of: Callable[[str], Rubric], rig: RigState,
                 clock: Clock) -> None:
        self.book = book
        self.config = config
        self.rubric_of = rubric_of
        self.rig = rig
        self.clock = clock
