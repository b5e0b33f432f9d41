"""The mosquitto ACL that docs/uplink.md ("What the province configures") gives the province, read from
that page and loaded into a real mosquitto 2.0 with a password file.

Why: a site that may publish on another site's topics can forge its results' topic or its receipts,
and mosquitto 2.0 never says no (a forbidden subscription is granted and then gets nothing, a
forbidden publish is acknowledged and dropped), so a wrong ACL would go unnoticed until results stop
being receipted. The test checks what each party hears: the province gets a site's result through
its shared subscription and its status, a site gets the province's receipt, and nothing another
site sends in its name reaches anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt

from hardware_sim.mosquitto import Mosquitto
from station.uplink import contract
from tests.uplink_kit import wait_until

UPLINK_DOC = Path(__file__).resolve().parents[2] / "docs" / "uplink.md"
SITE, OTHER = "GD-SZ-0101", "GD-SZ-0202"
PASSWORDS = {SITE: "site-0101-secret", OTHER: "site-0202-secret", "province": "province-secret"}


def documented_acl() -> str:
    """The ACL file under "### mosquitto" in docs/uplink.md (the fenced block that names examstation.acl)."""
    section = UPLINK_DOC.read_text(encoding="utf-8").split("\n### mosquitto\n", 1)[1].split("\n### ", 1)[0]
    blocks = section.split("```\n")[1::2]
    [acl] = [b for b in blocks if "examstation.acl" in b.splitlines()[0]]
    return acl


def password_file(path: Path) -> Path:
    for i, (user, password) in enumerate(PASSWORDS.items()):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(path), user, password],
                       check=True, capture_output=True)
    return path


@contextlib.asynccontextmanager
async def listening(broker: Mosquitto, user: str, filters: list[str]) -> AsyncIterator[list[tuple[str, bytes]]]:
    """A client of `user` subscribed to `filters`; yields the (topic, payload) it hears, as they come."""
    heard: list[tuple[str, bytes]] = []
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"acl-test-{user}", username=user,
                              password=PASSWORDS[user]) as client:
        for topic_filter in filters:
            await client.subscribe(topic_filter, qos=1)

        async def collect() -> None:
            async for m in client.messages:
                assert isinstance(m.payload, bytes)
                heard.append((m.topic.value, m.payload))

        task = asyncio.create_task(collect())
        try:
            yield heard
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def publish(broker: Mosquitto, user: str, topic: str, payload: bytes, retain: bool = False) -> None:
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"acl-test-{user}-pub", username=user,
                              password=PASSWORDS[user]) as client:
        await client.publish(topic, payload, qos=1, retain=retain)


async def test_the_documented_mosquitto_acl_keeps_each_site_to_its_own_topics(tmp_path: Path) -> None:
    acl = tmp_path / "examstation.acl"
    acl.write_text(documented_acl(), encoding="utf-8")
    config = [f"password_file {password_file(tmp_path / 'passwd')}", f"acl_file {acl}"]
    province_filters = [f"$share/province/{contract.RESULT_FILTER}", f"{contract.PREFIX}/+/status",
                        f"$share/province/{contract.PREFIX}/+/acceptance"]
    async with Mosquitto(allow_anonymous=False, extra_config=config) as broker, \
            listening(broker, "province", province_filters) as province, \
            listening(broker, SITE, [contract.receipt_topic(SITE)]) as site, \
            listening(broker, OTHER, [contract.receipt_topic(SITE), contract.RESULT_FILTER]) as other:
        await publish(broker, OTHER, contract.result_topic(SITE, "A01"), b"forged result")
        await publish(broker, OTHER, contract.receipt_topic(SITE), b"forged receipt")
        await publish(broker, OTHER, contract.status_topic(SITE), b"forged status", retain=True)
        await publish(broker, SITE, contract.result_topic(SITE, "A01"), b"result")
        await publish(broker, SITE, contract.status_topic(SITE), b"status", retain=True)
        await publish(broker, SITE, contract.acceptance_topic(SITE), b"probe")
        await publish(broker, SITE, contract.receipt_topic(SITE), b"receipt from the site itself")
        await publish(broker, "province", contract.receipt_topic(SITE), b"receipt")
        await publish(broker, OTHER, contract.status_topic(OTHER), b"other's own status")
        await wait_until(lambda: len(province) >= 4 and len(site) >= 1, timeout_s=5)
        await asyncio.sleep(0.3)  # anything forbidden that was going to arrive would have by now

    assert sorted(province) == sorted([(contract.result_topic(SITE, "A01"), b"result"),
                                       (contract.status_topic(SITE), b"status"),
                                       (contract.acceptance_topic(SITE), b"probe"),
                                       (contract.status_topic(OTHER), b"other's own status")])
    assert site == [(contract.receipt_topic(SITE), b"receipt")]
    assert other == [], "a site read another site's receipts or results"
