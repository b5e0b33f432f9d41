"""The simulated province's receipts: one per judged result, sent alone or batched per site.

The receipt contract is docs/uplink.md ("Receipts"): `stored` and `duplicate` carry when the
province stored the result, `rejected` carries the reason; a batch is `{"schema", "receipts":
[...]}` without each entry's schema; every message is signed as a whole by the province's key.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

RECEIPT_SCHEMA = "examstation/receipt/v1"
RECEIPT_BATCH = 200
"""Receipts in one batch message at most."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the province decided about one result, and the site whose receipt topic hears it."""

    site: str
    receipt: dict[str, Any]
    alone: bool = False
    """Sent as a message of its own, never in a batch: an acceptance receipt (it has its own schema)."""


def receipt(result_id: str, seq: int, status: Literal["stored", "duplicate", "rejected"], *,
            stored_utc_ns: int | None = None, reason: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"schema": RECEIPT_SCHEMA, "result_id": result_id, "seq": seq, "status": status}
    if stored_utc_ns is not None:
        doc["stored_at"] = iso_utc(stored_utc_ns)
    if reason is not None:
        doc["reason"] = reason
    return doc


def receipt_messages(verdicts: list[Verdict], batch: bool,
                     sign: Callable[[dict[str, Any]], dict[str, Any]]) -> list[tuple[str, bytes]]:
    """(site, message) pairs: one message per receipt, or with `batch` one per up to RECEIPT_BATCH
    receipts of a site (the contract allows both; a batch costs the station one message instead of
    hundreds). `sign` makes each message as it goes out."""
    by_site: dict[str, list[dict[str, Any]]] = {}
    out = []
    for v in verdicts:
        if v.alone:
            out.append((v.site, json.dumps(sign(v.receipt), ensure_ascii=False).encode()))
        else:
            by_site.setdefault(v.site, []).append(v.receipt)
    for site, receipts in by_site.items():
        size = RECEIPT_BATCH if batch else 1
        for i in range(0, len(receipts), size):
            chunk = receipts[i:i + size]
            entries = [{k: v for k, v in r.items() if k != "schema"} for r in chunk]
            doc = chunk[0] if len(chunk) == 1 else {"schema": RECEIPT_SCHEMA, "receipts": entries}
            out.append((site, json.dumps(sign(doc), ensure_ascii=False).encode()))
    return out


def iso_utc(utc_ns: int) -> str:
    return dt.datetime.fromtimestamp(utc_ns / 1e9, tz=dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
