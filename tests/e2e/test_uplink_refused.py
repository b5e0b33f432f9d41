"""A broker that refuses the site's receipt subscription: what the relay says. RabbitMQ closes the
connection at the SUBSCRIBE (a broker answering SUBACK 0x80, as EMQX does, gets the same words;
mosquitto 2.0 grants it and filters on delivery instead, which the health line shows as "no receipt
yet").

Without the receipt subscription no result can ever be settled, so the relay does not go on
sending; it must say what happened and what to do (the province's ACL must let this site read its
receipts, docs/uplink.md), not "Disconnected during message iteration".
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hardware_sim.rabbitmq import RabbitMQ
from station.uplink import contract
from tests.e2e.test_uplink_rabbitmq import documented_definitions, relay_for
from tests.uplink_kit import site_config, station_database, wait_until

SITE = "GD-SZ-0101"
OTHER = "GD-SZ-0202"


def _said(error: str | None) -> None:
    """The relay's reason names the refusal, the topic, the user and the fix."""
    assert error is not None
    topic = contract.receipt_topic(SITE)
    assert f"the broker refused the subscription to {topic}" in error, error
    assert f"the province's broker ACL must let user {OTHER} read this site's receipts" in error, error
    assert "docs/uplink.md" in error and "Disconnected during message iteration" not in error, error


@pytest.mark.xdist_group("rabbitmq")
@pytest.mark.timeout(120)
async def test_rabbitmq_closing_the_connection_at_the_receipt_subscription_is_named(tmp_path: Path) -> None:
    passwords = {SITE: "site-0101-secret", OTHER: "site-0202-secret", "province": "province-secret"}
    async with RabbitMQ(definitions=documented_definitions(passwords, OTHER)) as broker:
        # the controller of GD-SZ-0101 given the credentials (and client id) of another site: the ACL the
        # province configured for that user does not let it read GD-SZ-0101's receipts
        password_file = tmp_path / "mqtt-password"
        password_file.write_text(passwords[OTHER] + "\n", encoding="utf-8")
        plain = site_config(broker.url)
        config = plain.model_copy(update={"uplink": plain.uplink.model_copy(
            update={"username": OTHER, "password_file": str(password_file)})})
        with station_database(tmp_path / "station", config) as (db, key):
            relay = relay_for(config, db, key)
            relay.client_id = f"examstation-{OTHER}"
            async with relay:
                await wait_until(lambda: relay.stats.connects >= 2, 20)  # refused, and refused again
                assert not relay.connected
                _said(relay.last_error)
                assert "NOT CONNECTED (the broker refused" in (await asyncio.to_thread(relay.health)).line()
