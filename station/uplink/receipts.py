"""Receipts from the province: parsed, checked against the schema, and trusted only when signed.

A receipt settles a result: the station stops sending it. Whoever can publish on the receipt topic
could otherwise make a result vanish (`status: stored` for a result the province never had), and
the audit log would name the province as the one who stored it. So every receipt message must
carry the province's Ed25519 signature over its RFC 8785 canonical JSON, made with the key whose
public half the site is configured with (`uplink.province_key`); anything else is dropped,
counted, and raised as an alarm once. Receipts naming a result this station never sent change
nothing (station.uplink.outbox matches result_id and seq).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from station.signing import key_id, verify
from station.uplink import contract, outbox

log = logging.getLogger(__name__)


class ReceiptKeyError(Exception):
    """The province's public key cannot be read; the message says which file and what to do."""


@dataclass(slots=True)
class ReceiptCounts:
    malformed: int = 0
    """Not JSON, or against the receipt schema."""
    untrusted: int = 0
    """Unsigned, or not signed by the province's key."""


def load_province_key(path: str | None) -> str | None:
    """The PEM text of the province's public key (None when none is configured)."""
    if path is None:
        return None
    try:
        pem = Path(path).read_text(encoding="utf-8")
        public = serialization.load_pem_public_key(pem.encode())
    except (OSError, ValueError) as err:
        raise ReceiptKeyError(f"uplink.province_key {path}: cannot read an Ed25519 public key from it ({err}); "
                              "put the PEM file the provincial exam centre issued there") from err
    if not isinstance(public, Ed25519PublicKey):
        raise ReceiptKeyError(f"uplink.province_key {path}: not an Ed25519 public key; ask the provincial exam "
                              "centre for the key its receipts are signed with")
    return pem


class ReceiptReader:
    """Turns receipt messages into `outbox.Receipt`s, keeping only those the province signed."""

    def __init__(self, province_pem: str | None, on_alarm: Callable[[str, str], None] | None = None) -> None:
        """`on_alarm(what, todo)`: told the first time a receipt is dropped as untrusted."""
        self._pem = province_pem
        self._on_alarm = on_alarm
        self.province_key_id = None if province_pem is None else key_id(_public(province_pem))
        self.counts = ReceiptCounts()
        self._alarmed = False

    def read(self, topic: str, payload: object) -> list[outbox.Receipt]:
        """The receipts of one message (an MQTT payload: bytes, or text), those the province signed."""
        try:
            doc = json.loads(bytes(payload) if isinstance(payload, bytes | bytearray) else str(payload))
        except (ValueError, TypeError, RecursionError) as err:
            self.counts.malformed += 1
            log.warning("uplink: a receipt on %s is not JSON (%s); ignored, the result will be sent again", topic, err)
            return []
        if isinstance(doc, dict) and doc.get("schema") == contract.ACCEPTANCE_RECEIPT_SCHEMA:
            return []  # site-check's receipt on the same topic: it settles no result (station.site_check)
        if isinstance(doc, dict) and "signature" not in doc:
            self.counts.untrusted += 1
            self._alarm(topic, doc)
            return []
        found = contract.problems("receipt", doc)
        if found:
            self.counts.malformed += 1
            log.warning("uplink: a receipt on %s breaks the receipt schema (%s); ignored, the result will be "
                        "sent again", topic, "; ".join(found[:3]))
            return []
        if self._pem is None or not verify(doc, self._pem):
            self.counts.untrusted += 1
            self._alarm(topic, doc)
            return []
        return [outbox.Receipt(r["result_id"], int(r["seq"]), r["status"], r.get("stored_at"), r.get("reason"))
                for r in doc.get("receipts", [doc])]

    def _alarm(self, topic: str, doc: dict[str, object]) -> None:
        if self._pem is None:
            why = "no province key is configured (uplink.province_key), so no receipt can be trusted"
        else:
            signer = doc.get("signature")
            named = signer.get("key_id") if isinstance(signer, dict) else None
            why = (f"it is signed by {named}, not by the province's key {self.province_key_id}" if named
                   else "it carries no signature")
        what = f"uplink: a receipt on {topic} was dropped: {why}; its results stay queued and are sent again"
        todo = ("someone other than the province may be publishing receipts (check the broker's ACL), or the "
                "province changed its key (update uplink.province_key)")
        level = logging.DEBUG if self._alarmed else logging.ERROR
        log.log(level, "ALARM %s. %s. %d dropped so far", what, todo, self.counts.untrusted)
        if not self._alarmed and self._on_alarm is not None:
            self._on_alarm(what, todo)
        self._alarmed = True


def _public(pem: str) -> Ed25519PublicKey:
    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, Ed25519PublicKey)
    return public
