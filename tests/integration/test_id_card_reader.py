"""IdCardReader against the simulated ID-card reader over a real pty: cards, bad lines, unplug.

Nothing of ours is mocked: the simulator writes idcard-line-v1 lines into a pty, the production
reader opens the pty's path with pyserial and reads it from the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from devices.clock import SystemClock
from devices.errors import DeviceConfigError
from devices.profile import SerialProfile, load_profile
from devices.sample import Sample
from devices.serial.id_card_reader import IdCardHealth, IdCardReader
from devices.settings import SerialDevice
from hardware_sim.id_card_reader import IdCardReaderSim

LOGGER = "devices.serial.id_card_reader"
REAL = "11010519491231002X"


def profile(name: str = "id-card-reader") -> SerialProfile:
    loaded = load_profile(name)
    assert isinstance(loaded, SerialProfile)
    return loaded


async def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    async with asyncio.timeout(timeout_s):
        # polling a predicate over plain state (sample list, health snapshot) that has no event
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    assert condition(), what


@asynccontextmanager
async def running(sim: IdCardReaderSim, samples: list[Sample],
                  health: list[IdCardHealth] | None = None) -> AsyncIterator[IdCardReader]:
    settings = SerialDevice(kind="serial", name="idreader", profile="id-card-reader", port=sim.path, baudrate=9600)
    reader = IdCardReader("A01", settings, profile(), samples.append, SystemClock(),
                          on_health=None if health is None else health.append, reopen_min_s=0.05, reopen_max_s=0.2)
    async with reader:
        await wait_until(lambda: reader.health.port_open, 2.0, "reader never opened the pty")
        yield reader


async def test_a_valid_card_arrives_as_a_sample_and_the_reader_is_online() -> None:
    samples: list[Sample] = []
    health: list[IdCardHealth] = []
    async with IdCardReaderSim() as sim, running(sim, samples, health) as reader:
        assert reader.health.online and [h.online for h in health] == [True]
        await sim.present(REAL, "张三")
        await wait_until(lambda: len(samples) == 1, 2.0, "the card")
        status = reader.health
    (card,) = samples
    assert (card.signal, str(card.device)) == ("idcard.read", "A01/idreader")
    assert card.value == {"id_number": REAL, "name": "张三"}
    assert (status.cards_ok, status.bad_lines, status.overlong_lines) == (1, 0, 0)
    assert status.last_card_age_s is not None and status.last_card_age_s < 2


async def test_a_wrong_check_digit_and_garbage_are_counted_not_delivered(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    samples: list[Sample] = []
    async with IdCardReaderSim() as sim, running(sim, samples) as reader:
        await sim.present("110105194912310021", "李四")  # check digit should be X
        await wait_until(lambda: reader.health.bad_lines == 1, 2.0, "the bad card rejected")
        await sim.send_garbage(b"\x00\xff\xfeCARD,,\r\n")
        await sim.send_garbage(b"9" * 300)
        await sim.send_garbage(b"\r\nCARD,1101051949")  # the rest of the overlong line, then half a card
        await sim.send_garbage(f"12310{REAL[-3:]},王五\r\n".encode())
        await wait_until(lambda: len(samples) == 1, 2.0, "the card behind the garbage")
        status = reader.health
        assert status.online
    assert samples[0].value == {"id_number": REAL, "name": "王五"}
    assert (status.cards_ok, status.bad_lines, status.overlong_lines) == (1, 2, 1)
    messages = [r.getMessage() for r in caplog.records]
    assert any("check digit is 1, expected X" in m for m in messages), messages
    assert not any("110105194912310021" in m or "李四" in m for m in messages), "personal data in the log"


async def test_unplug_and_replug_recovers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    samples: list[Sample] = []
    health: list[IdCardHealth] = []
    async with IdCardReaderSim() as sim, running(sim, samples, health) as reader:
        await sim.unplug()
        await wait_until(lambda: not reader.health.online, 2.0, "offline once unplugged")
        await asyncio.sleep(0.3)  # several failed reopens: they must not log again
        await sim.plug()
        await wait_until(lambda: reader.health.online, 2.0, "online after replug")
        await sim.present(REAL, "张三")
        await wait_until(lambda: len(samples) == 1, 2.0, "a card after the replug")
    assert [h.online for h in health] == [True, False, True]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(f"station A01 idreader@{sim.path}: serial port lost")


def test_a_manikin_profile_is_refused() -> None:
    settings = SerialDevice(kind="serial", name="idreader", profile="cpr-manikin", port="/dev/null")
    with pytest.raises(DeviceConfigError, match=r"speaks manikin-frame-v1, not idcard-line-v1"):
        IdCardReader("A01", settings, profile("cpr-manikin"), lambda s: None, SystemClock())
