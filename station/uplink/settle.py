"""Receipts into the outbox: the relay's reader queues them, this settles them in batches.

Why a queue and batches: a province answering a backlog sends thousands of receipts in a few
seconds; settling each in its own transaction would cost an fsync per result. Whatever arrived
while the last batch was written goes into the next one (up to `BATCH`). A batch the database
cannot take (locked, disk full) is kept and tried again, never dropped: a lost receipt only costs
a resend, but a dropped one found later would look like the province never answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from station.attempt_book import AttemptBook
from station.uplink import backoff, outbox
from station.uplink.broker_link import RelayStats

log = logging.getLogger(__name__)
SETTLE_RETRY_S = 1.0
REJECTED_ALARM = "uplink.rejected"
"""Raised for each result the province rejects; the hall ends it when none is left in the outbox
(proctor_ui.uplink_alarm)."""
BATCH = 2000
Alarm = Callable[[str, str, str], None]


class ReceiptSettler:
    """Receipts queued by the reader (`put`), settled by `run()` through the station's one writer."""

    def __init__(self, book: Callable[[], AttemptBook], stats: RelayStats, sends: backoff.SendCounts,
                 alarm: Alarm, sleep: Callable[[float], Awaitable[None]]) -> None:
        self._book = book
        self._stats = stats
        self._sends = sends
        self._alarm = alarm
        self._sleep = sleep
        self._queue: asyncio.Queue[outbox.Receipt] = asyncio.Queue()

    def put(self, receipt: outbox.Receipt) -> None:
        self._queue.put_nowait(receipt)

    async def run(self) -> None:
        """Settle receipts as they come, until cancelled."""
        while True:
            batch = [await self._queue.get()]
            await self._settle(batch)

    async def settle_pending(self) -> None:
        """At shutdown: receipts that arrived but were not settled yet cost a resend otherwise."""
        if not self._queue.empty():
            with contextlib.suppress(Exception):
                await self._settle([])

    async def _settle(self, batch: list[outbox.Receipt]) -> None:
        while len(batch) < BATCH and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if not batch:
            return
        try:
            applied = await asyncio.to_thread(self._book().settle_receipts, batch)
        except Exception as err:  # e.g. the database locked or the disk full: keep the receipts, try again
            log.error("uplink: cannot record %d receipts (%s: %s); trying again in %g s", len(batch),
                      type(err).__name__, err, SETTLE_RETRY_S)
            for rc in batch:
                self._queue.put_nowait(rc)
            await self._sleep(SETTLE_RETRY_S)
            return
        for a in applied:
            if a.state != outbox.UNCHANGED:
                self._sends.settled(a.result_id)
            if a.state == outbox.OutboxState.DELIVERED:
                self._stats.delivered += 1
            elif a.state == outbox.OutboxState.FAILED:
                self._stats.rejected += 1
                what = f"uplink: the province REJECTED result {a.result_id} (attempt {a.attempt_id}): {a.reason}"
                todo = f"it stays in the outbox as failed; fix the cause, then `examstation outbox retry {a.result_id}`"
                log.error("ALARM %s. %s", what, todo)
                self._alarm(what, todo, REJECTED_ALARM)
            else:
                self._stats.ignored_receipts += 1
