"""Canonical JSON and the SHA-256 digests the audit chain, timeline chain and results are built on.

Every digest is over the one canonical JSON, `scoring.canonical.canonical_json` (RFC 8785, with
UTC nanoseconds written in full): equal values give equal bytes, so a digest over the text is a
digest over the value. NaN and infinities are refused (they are not JSON, and another tool could
not re-check the digest).
"""

from __future__ import annotations

import hashlib
from typing import Any

from scoring.canonical import canonical_json

GENESIS_HASH = "0" * 64
"""prev_hash of the first audit entry."""


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def timeline_row_hash(attempt_id: str, prev_row_hash: str | None, record_json: str) -> str:
    """Hash of one timeline row: sha256(previous row's hash, or the attempt_id for seq 0, + record JSON)."""
    return sha256_hex((attempt_id if prev_row_hash is None else prev_row_hash) + record_json)


def audit_entry_hash(
    prev_hash: str, seq: int, utc_ns: int, actor: str, action: str, subject: str, payload: Any
) -> str:
    """sha256(prev_hash + canonical JSON of {seq, utc_ns, actor, action, subject, payload})."""
    body = {"seq": seq, "utc_ns": utc_ns, "actor": actor, "action": action, "subject": subject, "payload": payload}
    return sha256_hex(prev_hash + canonical_json(body))
