"""What the simulated province can be told to do wrong, and what it counts (hardware_sim.province)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(slots=True)
class ProvinceFaults:
    """What the province does wrong right now; tests flip these while results flow."""

    drop_receipts: int = 0
    """Send no receipt for the next N results (they are stored all the same)."""
    duplicate_receipts: bool = False
    """Send every receipt twice."""
    delay_receipts_s: float = 0.0
    """Hold each batch of receipts this long."""
    reject: dict[str, str] = field(default_factory=dict)
    """result_id -> reason: refuse these results with that reason."""
    reject_when: Callable[[Mapping[str, Any]], str | None] | None = None
    """Refuse any result for which this returns a reason."""
    unsigned_receipts: bool = False
    """Send receipts without a signature, even when the province signs them."""
    sign_with: Ed25519PrivateKey | None = None
    """Sign receipts with this key instead of the province's (even when the province does not sign),
    still naming the province's key_id: a forged receipt, as whoever may publish on a receipt topic
    could make. `unsigned_receipts` wins over this."""


@dataclass(slots=True)
class ProvinceStats:
    messages: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    malformed: int = 0
    receipts_sent: int = 0
    receipts_dropped: int = 0
    gaps_seen: int = 0
    """How often a seq arrived beyond the next expected one (a gap, maybe filled later)."""
    rollbacks_seen: int = 0
    """Results whose audit checkpoint is behind one a lower seq of the same site carried: the
    station's database was rolled back (restored from an old backup, or entries deleted)."""
