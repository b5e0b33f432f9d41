"""Signatures that wait for the post-roll run on threads of their own (proctor_ui.sign_off_pool):
while more of them wait than the event loop's default pool has threads, `asyncio.to_thread` (the
item clock's tick, the outbox, every other page) still answers at once; errors come back."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

from proctor_ui.sign_off_pool import run_sign_off
from station.errors import ServiceError


async def test_waiting_signatures_leave_the_default_pool_free() -> None:
    release = threading.Event()
    default_threads = min(32, (os.cpu_count() or 1) + 4)

    def waiting_signature() -> str:
        release.wait(10)
        return threading.current_thread().name

    signatures = [asyncio.create_task(run_sign_off(waiting_signature)) for _ in range(default_threads + 2)]
    try:
        await asyncio.sleep(0.1)  # every signature is waiting now
        t0 = time.monotonic()
        assert await asyncio.wait_for(asyncio.to_thread(lambda: "tick"), 2) == "tick"
        assert time.monotonic() - t0 < 1.0
    finally:
        release.set()
    names = await asyncio.gather(*signatures)
    assert all(name.startswith("sign-off") for name in names)
    for t in [t for t in threading.enumerate() if t.name.startswith("sign-off")]:
        t.join(5)


async def test_a_refused_signature_raises_its_error() -> None:
    def refused() -> None:
        raise ServiceError("attempt x: not reviewed yet")

    with pytest.raises(ServiceError, match="not reviewed"):
        await run_sign_off(refused)
    for t in [t for t in threading.enumerate() if t.name.startswith("sign-off")]:
        t.join(5)
