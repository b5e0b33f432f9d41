"""The simulated province's acceptance desk: site-check probes and published reports.

A site proves two things with `examstation site-check`: that results can reach the province (a
round trip with a receipt) and that the key it signs with is the key the province registered for
it. Both are answered here. A message on `examstation/v1/{site}/acceptance` is checked against the
acceptance schema of docs/asyncapi.yaml, its `site` against the topic, and its signature against
the key the province holds for that site; it is stored whatever the verdict, and answered on the
site's receipt topic with an acceptance receipt signed by the province: `stored`, `duplicate`, or
`rejected` with the reason, and `signature_ok: false` when the site's signature did not verify
(a site with a new or restored-wrong key learns it here, before its first result is refused).

Like the rest of the province it imports nothing from `station`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import hardware_sim.province_key as ed25519
from hardware_sim.province_contract import Contract, ContractError
from hardware_sim.province_receipts import Verdict, iso_utc
from hardware_sim.province_store import StoredAcceptance

log = logging.getLogger(__name__)
ACCEPTANCE_RECEIPT_SCHEMA = "examstation/acceptance-receipt/v1"


@dataclass(frozen=True, slots=True)
class Acceptance:
    """What the province decided about one acceptance message, as tests and the CLI read it."""

    acceptance_id: str
    site: str
    kind: str
    status: Literal["stored", "rejected"]
    reason: str | None
    signature_ok: bool | None
    document: dict[str, Any]


def acceptance_receipt(acceptance_id: str, kind: str, status: Literal["stored", "duplicate", "rejected"], *,
                       stored_utc_ns: int | None = None, reason: str | None = None,
                       signature_ok: bool | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"schema": ACCEPTANCE_RECEIPT_SCHEMA, "acceptance_id": acceptance_id, "kind": kind,
                           "status": status}
    if stored_utc_ns is not None:
        doc["stored_at"] = iso_utc(stored_utc_ns)
    if reason is not None:
        doc["reason"] = reason
    if signature_ok is not None:
        doc["signature_ok"] = signature_ok
    return doc


class AcceptanceDesk:
    """Judges acceptance messages; the province stores the rows it returns in its own transaction."""

    def __init__(self, contract: Contract, keys: Mapping[str, Ed25519PublicKey], engine: Engine) -> None:
        """`keys`: the province's registered site keys (read at each message, so keys registered
        later count)."""
        self.contract = contract
        self.topic = contract.channel("acceptance").topic
        self._keys = keys
        self._engine = engine
        self._known: dict[str, Acceptance] = {}
        self._stored_at: dict[str, int] = {}
        with Session(engine) as s:
            for row in s.execute(select(StoredAcceptance)).scalars():
                self._remember(row.acceptance_id, row.site, row.kind, row.status, row.reason, row.signature_ok,
                               row.document, row.utc_ns)

    def hears(self, topic: str) -> bool:
        try:
            self.topic.parse(topic)
        except ContractError:
            return False
        return True

    def judge(self, topic: str, payload: bytes, now: int, rows: list[dict[str, Any]]) -> Verdict | None:
        """The receipt for one message (None when it names no acceptance_id to answer); a new
        message's row is appended to `rows`."""
        try:
            site = self.topic.parse(topic)["site"]
            doc = json.loads(payload)
        except (ValueError, RecursionError) as err:
            log.warning("province: acceptance message on %s ignored: %s", topic, err)
            return None
        aid = doc.get("acceptance_id") if isinstance(doc, dict) else None
        kind = doc.get("kind") if isinstance(doc, dict) else None
        if not isinstance(aid, str) or kind not in ("probe", "report"):
            log.warning("province: acceptance message on %s has no acceptance_id/kind; no receipt can name it", topic)
            return None
        known = self._known.get(aid) or next((r for r in _pending(rows, aid)), None)
        if known is not None:
            if known.status == "stored":
                return Verdict(site, acceptance_receipt(aid, kind, "duplicate", stored_utc_ns=self._stored_at.get(
                    aid, now)), alone=True)
            return Verdict(site, acceptance_receipt(aid, kind, "rejected", reason=known.reason or "rejected",
                                                    signature_ok=known.signature_ok), alone=True)
        reason, signature_ok = self._reason_to_reject(doc, site)
        status: Literal["stored", "rejected"] = "stored" if reason is None else "rejected"
        rows.append({"acceptance_id": aid, "site": site, "kind": kind, "status": status, "reason": reason,
                     "signature_ok": signature_ok, "document": payload.decode(), "utc_ns": now})
        if reason is not None:
            log.warning("province: acceptance %s %s of %s rejected: %s", kind, aid, site, reason)
            return Verdict(site, acceptance_receipt(aid, kind, "rejected", reason=reason, signature_ok=signature_ok),
                           alone=True)
        return Verdict(site, acceptance_receipt(aid, kind, "stored", stored_utc_ns=now), alone=True)

    def committed(self, rows: list[dict[str, Any]]) -> None:
        """`rows` are stored: they count from now on (for duplicates and for whoever asks)."""
        for r in rows:
            self._remember(r["acceptance_id"], r["site"], r["kind"], r["status"], r["reason"], r["signature_ok"],
                           r["document"], r["utc_ns"])

    def acceptances(self, site: str) -> list[Acceptance]:
        """Every acceptance message of `site` the province kept, oldest first."""
        return [a for a in self._known.values() if a.site == site]

    def _remember(self, aid: str, site: str, kind: str, status: str, reason: str | None, signature_ok: bool | None,
                  document: str, utc_ns: int) -> None:
        self._known[aid] = Acceptance(aid, site, kind, "stored" if status == "stored" else "rejected", reason,
                                      signature_ok, json.loads(document))
        self._stored_at[aid] = utc_ns

    def _reason_to_reject(self, doc: dict[str, Any], site: str) -> tuple[str | None, bool | None]:
        """(why not, whether the site's signature verified; None when not looked at)."""
        found = self.contract.problems("acceptance", doc)
        if found:
            return "schema: " + "; ".join(found[:3]), None
        if doc["site"] != site:
            return f"published on the acceptance topic of {site} but names site {doc['site']}", None
        key = self._keys.get(site)
        if key is None:
            return (f"no public key is registered for site {site}: give the province the output of "
                    "`examstation keys export`", False)
        held = ed25519.key_id(key)
        signature = doc.get("signature")
        if not isinstance(signature, dict):
            return f"the message is not signed; the province holds key {held} for site {site}", False
        if not ed25519.signature_ok(doc, key):
            return (f"the site signature (key {signature.get('key_id')}) does not verify against the key the "
                    f"province holds for site {site} ({held})", False)
        return None, True


def _pending(rows: list[dict[str, Any]], aid: str) -> list[Acceptance]:
    """A repeat inside the batch being judged (not yet committed)."""
    return [Acceptance(r["acceptance_id"], r["site"], r["kind"], r["status"], r["reason"], r["signature_ok"], {})
            for r in rows if r["acceptance_id"] == aid]
