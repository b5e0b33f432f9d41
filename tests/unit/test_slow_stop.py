"""A stop that hangs says what it waits on (station.slow_stop); one that ends in time says nothing."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from station.slow_stop import watch_stop


async def _stuck_in_close(release: asyncio.Event) -> None:
    await release.wait()  # the line the report must name


def test_a_slow_stop_names_each_pending_task_and_the_line_it_waits_on(tmp_path: Path) -> None:
    async def main() -> str:
        out = io.StringIO()
        release = asyncio.Event()
        with watch_stop("demo", after_s=0.2, out=out) as slow:
            stuck = asyncio.create_task(_stuck_in_close(release), name="uplink close")
            slow.arm()
            await asyncio.sleep(0.6)
            release.set()
            await stuck
        return out.getvalue()

    report = asyncio.run(main())
    assert report.startswith("examstation demo: the stop is still waiting after 0.2 s on "), report
    assert "kill it" in report and "report this output" in report, report
    assert "task 'uplink close'" in report, report
    assert "test_slow_stop.py" in report and "in _stuck_in_close" in report, report


def test_thread_stacks_come_too_when_the_stream_is_a_file(tmp_path: Path) -> None:
    log = tmp_path / "stderr"

    async def main() -> None:
        with log.open("w") as out, watch_stop("run", after_s=0.1, out=out) as slow:
            slow.arm()
            await asyncio.sleep(0.5)

    asyncio.run(main())
    text = log.read_text()
    assert "examstation run: the stop is still waiting" in text, text
    assert "Thread 0x" in text or "Current thread 0x" in text, text  # faulthandler's dump of every thread


def test_a_stop_that_ends_in_time_prints_nothing(tmp_path: Path) -> None:
    log = tmp_path / "stderr"

    async def main() -> None:
        with log.open("w") as out:
            with watch_stop("run", after_s=0.3, out=out) as slow:
                slow.arm()
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.6)  # past the deadline: disarmed, nothing comes

    asyncio.run(main())
    assert log.read_text() == ""


def test_never_armed_prints_nothing() -> None:
    async def main() -> str:
        out = io.StringIO()
        with watch_stop("run", after_s=0.05, out=out):
            await asyncio.sleep(0.2)
        return out.getvalue()

    assert asyncio.run(main()) == ""
