"""The controller's receipt reader shares its topic with site-check's acceptance receipts
(examstation/v1/{site}/receipt); those settle no result and are not a fault of the result uplink,
so the reader ignores them without a warning, an alarm or a count (a site-check beside a running
controller made it log "breaks the receipt schema ... the result will be sent again")."""

from __future__ import annotations

import json
import logging

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from station.signing import SiteKey
from station.uplink.contract import ACCEPTANCE_RECEIPT_SCHEMA
from station.uplink.receipts import ReceiptReader


def test_an_acceptance_receipt_is_not_a_result_receipt(caplog: pytest.LogCaptureFixture) -> None:
    province = SiteKey(Ed25519PrivateKey.generate())
    alarms: list[str] = []
    reader = ReceiptReader(province.public_pem(), on_alarm=lambda what, todo: alarms.append(what))
    receipt = province.sign({"schema": ACCEPTANCE_RECEIPT_SCHEMA, "acceptance_id": "probe-1", "kind": "probe",
                             "status": "stored", "stored_at": "2026-12-05T08:00:00Z"})
    with caplog.at_level(logging.DEBUG, logger="station.uplink"):
        assert reader.read("examstation/v1/GD-SZ-0101/receipt", json.dumps(receipt).encode()) == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert (reader.counts.malformed, reader.counts.untrusted, alarms) == (0, 0, [])
