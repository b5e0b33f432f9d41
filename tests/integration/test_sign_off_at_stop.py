"""A signature waiting for the post-roll when the controller stops: once the recorder has stopped
and the index has stored its last segments, the recording is as final as it will ever be, so the
wait ends there, naming the cameras still behind (their missing time becomes a video gap). It used
to wait its whole timeout (35 s with the default settings) on a thread the stop then waited for:
Ctrl-C on a busy demo took longer than the test's 30 s and the process was killed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from station.db import database_path, open_database
from station.evidence_index import EvidenceIndex
from station.stored import ensure_database

NOW = 1_760_000_000 * 10**9


def test_a_wait_for_the_post_roll_ends_when_the_index_stops(tmp_path: Path) -> None:
    ensure_database(tmp_path)
    with open_database(database_path(tmp_path)) as db:
        index = EvidenceIndex(db, tmp_path, utc_ns=lambda: NOW)
        index.start()
        late: list[list[str]] = []
        waiter = threading.Thread(target=lambda: late.append(
            index.wait_covered("A01", ["overview"], NOW + 10 * 10**9, timeout_s=30)))
        waiter.start()
        time.sleep(0.3)
        assert waiter.is_alive(), "nothing is recorded yet: the signature waits"
        stopped = time.monotonic()
        index.stop()
        waiter.join(5)
        assert not waiter.is_alive(), "the wait went on after the index stopped"
        assert time.monotonic() - stopped < 2
        assert late == [["overview"]]


def test_after_the_stop_a_new_wait_does_not_wait(tmp_path: Path) -> None:
    ensure_database(tmp_path)
    with open_database(database_path(tmp_path)) as db:
        index = EvidenceIndex(db, tmp_path, utc_ns=lambda: NOW)
        index.start()
        index.stop()
        started = time.monotonic()
        assert index.wait_covered("A01", ["overview"], NOW + 10 * 10**9, timeout_s=30) == ["overview"]
        assert time.monotonic() - started < 1
