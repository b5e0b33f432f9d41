"""The Modbus pollers on an event loop of their own thread, so nothing else the controller does can
make a poll late.

Why: a bench is polled every 100 ms, and a poll that ends after the next one was due is late
(docs/PERFORMANCE.md, "Site"). On the controller's main loop every poll waits behind whatever else
that loop runs at that moment: the UI's pages and live streams, the hall feed, the uplink, the
status lines. Measured at 24 stations, a loop ticking every 20 ms on a thread of its own lagged at
most 12 ms while the main loop lagged 45 ms in the same run, and the main loop's rare stalls of
100 ms made every bench's poll late at once. Polling needs little: a socket or pty request and
the decoding, so one thread holds every device of the site.

What crosses between the threads, in the order it happened: each Sample, each online/offline
transition and each unrepresentable value are queued on the poller's thread and handed to the
owner's sinks on the owner's loop (the loop that entered this context), in batches, so the
station's state is only ever touched from that loop. A sink that refuses a sample (the station's
store is full) cannot answer the poller in time any more; the refusal goes back to the poller,
which offers that signal again at its next poll (`DevicePoller.reoffer`), as it did when the
answer was immediate. A sink that raises (a bug) is logged and its sample offered again; the rest
of the batch still goes through.

What the station sees differently: a sample reaches it a little after it was read (well under a
millisecond normally; at most as long as the main loop is busy), as if the poll had come that much
later, which is within the poll interval's own uncertainty (a change is seen up to 100 ms late
anyway); the sample keeps the time it was read. A value offered again after a refusal may repeat
one accepted meanwhile: the timeline then holds that reading twice, with two read times.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence

from devices.clock import Clock
from devices.health import DeviceHealth
from devices.modbus.poller import DevicePoller, FaultSink, ModbusPoller, PolledDevice, StatusSink
from devices.ref import DeviceRef
from devices.sample import Sample, SampleSink, ValueFault

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0
"""A poller thread still running this long after it was told to stop is reported and left (daemon)."""

_Item = Sample | Callable[[], None]
"""A sample (its refusal goes back to the poller), or a status or fault call bound to its sink."""


class PollerThread:
    """`async with PollerThread(devices, on_sample, ...)`: the same job as `ModbusPoller`, with the
    sinks called on the entering loop and the polling done on a thread of its own."""

    def __init__(self, devices: Sequence[PolledDevice], on_sample: SampleSink, on_status: StatusSink | None = None,
                 clock: Clock | None = None, on_fault: FaultSink | None = None) -> None:
        self._on_sample = on_sample
        self._on_status = on_status
        self._on_fault = on_fault
        self.poller = ModbusPoller(devices, self._sample, self._status if on_status else None, clock,
                                   on_fault=self._fault if on_fault else None)
        self._by_device: dict[DeviceRef, DevicePoller] = {p.device.ref: p for p in self.poller.pollers}
        self._queue: deque[_Item] = deque()
        self._handover_lock = threading.Lock()
        self._handover_due = False
        self._owner: asyncio.AbstractEventLoop | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        """Set when the owner stops the thread (or gave up starting it): polling ends."""
        self._closed = False
        """Set once the owner has had the last items: later ones (a thread that would not stop) are dropped."""

    def health(self) -> dict[DeviceRef, DeviceHealth]:
        """Read from any thread: each device's counters (plain numbers the poller thread updates)."""
        return self.poller.health()

    async def __aenter__(self) -> PollerThread:
        self._owner = asyncio.get_running_loop()
        started: asyncio.Future[None] = self._owner.create_future()
        self._thread = threading.Thread(target=self._thread_main, args=(started,), name="modbus-pollers",
                                        daemon=True)
        self._thread.start()
        try:
            await started
        except BaseException:  # cancelled while starting, or polling failed to start: nothing may stay behind,
            self._closed = True  # and nothing it read reaches the station (while we wait for it to stop, too)
            await self._stop_thread()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._thread is None:
            return
        await self._stop_thread()
        self._hand_over()  # what the last polls found, before the context ends
        self._closed = True

    async def _stop_thread(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._closing.set()  # seen by a thread still starting its loop ...
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:  # ... and this by one already polling
            with contextlib.suppress(RuntimeError):  # its loop already ended (it failed): nothing to tell
                loop.call_soon_threadsafe(stop.set)
        await asyncio.to_thread(thread.join, STOP_TIMEOUT_S)
        if thread.is_alive():
            log.error("modbus pollers: the polling thread did not stop within %.0f s; leaving it, and nothing it "
                      "reads is used any more (a device request that never returns?)", STOP_TIMEOUT_S)
        self._thread = None

    # -- the poller's thread ----------------------------------------------------------------------

    def _thread_main(self, started: asyncio.Future[None]) -> None:
        owner = self._owner
        assert owner is not None

        def tell(error: BaseException | None) -> None:
            if started.done():  # started (or given up) already: an error can only be logged now
                if error is not None:
                    log.error("modbus pollers: the polling thread failed: %s: %s", type(error).__name__, error)
                return
            if error is None:
                started.set_result(None)
            else:
                started.set_exception(error)

        def ready() -> None:
            owner.call_soon_threadsafe(tell, None)

        try:
            asyncio.run(self._run(ready))
        except BaseException as err:  # the owner raises it from __aenter__, or logs it (tell)
            with contextlib.suppress(RuntimeError):  # the owner's loop has closed: nobody is left to tell
                owner.call_soon_threadsafe(tell, err)

    async def _run(self, ready: Callable[[], None]) -> None:
        self._stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self._closing.is_set():  # the owner gave up before this loop existed
            return
        async with self.poller:
            ready()
            await self._stop.wait()

    def _sample(self, sample: Sample) -> bool:
        self._put(sample)
        return True  # a refusal comes back later (reoffer)

    def _status(self, device: DeviceRef, online: bool, reason: str) -> None:
        assert self._on_status is not None
        self._put(functools.partial(self._on_status, device, online, reason))

    def _fault(self, fault: ValueFault) -> None:
        assert self._on_fault is not None
        self._put(functools.partial(self._on_fault, fault))

    def _put(self, item: _Item) -> None:
        if self._closed:
            return
        self._queue.append(item)
        with self._handover_lock:
            if self._handover_due:
                return
            self._handover_due = True
        assert self._owner is not None
        with contextlib.suppress(RuntimeError):  # the owner's loop is closing: __aexit__ hands the rest over
            self._owner.call_soon_threadsafe(self._hand_over)

    # -- the owner's loop -------------------------------------------------------------------------

    def _hand_over(self) -> None:
        with self._handover_lock:
            self._handover_due = False
        queue = self._queue
        while queue and not self._closed:
            item = queue.popleft()
            try:
                if not isinstance(item, Sample):
                    item()
                elif self._on_sample(item) is False:
                    self._reoffer(item)
            except Exception:  # a bug in one sink must not lose the rest; a sample is offered again
                log.exception("modbus pollers: handing over a %s failed; report this as a bug",
                              "sample" if isinstance(item, Sample) else "device status or fault")
                if isinstance(item, Sample):
                    self._reoffer(item)

    def _reoffer(self, sample: Sample) -> None:
        poller, loop = self._by_device.get(sample.device), self._loop
        if poller is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # polling has stopped: nothing will be offered again
            loop.call_soon_threadsafe(poller.reoffer, sample.signal)
