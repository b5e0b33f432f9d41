"""What the simulated province checks in each result before it stores it, and the audit-checkpoint
watch that spots a station whose database was rolled back (hardware_sim.province)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import hardware_sim.province_key as ed25519
from hardware_sim.province_contract import Contract
from hardware_sim.province_faults import ProvinceFaults, ProvinceStats

log = logging.getLogger(__name__)


def stream_of(site: str, box: str | None) -> str:
    """Whose seq and audit checkpoints a result continues: its site's, or with a box (a hall split over
    several boxes, each with its own database) that box's, written `SITE/BOX`."""
    return site if box is None else f"{site}/{box}"


def reason_to_reject(doc: dict[str, Any], *, site: str, station: str, seq: int, stream: str, contract: Contract,
                     keys: Mapping[str, Ed25519PublicKey], seqs_stored: set[int], faults: ProvinceFaults) -> str | None:
    """Why a result published on `site`/`station`'s topic is refused, or None to store it: the schema,
    the topic against the document, the site's registered key and signature, a seq already used
    in its stream; then whatever the test's faults refuse."""
    found = contract.problems("result", doc)
    if found:
        return "schema: " + "; ".join(found[:3])
    if doc["site"] != site or doc["station"] != station:
        return f"published on the topic of {site}/{station} but names {doc['site']}/{doc['station']}"
    key = keys.get(site)
    if key is None:
        return f"no public key is registered for site {site}; register the output of `examstation keys export`"
    if not ed25519.signature_ok(doc, key):
        return "signature does not verify against the key registered for this site"
    if seq in seqs_stored:
        return f"seq {seq} of {stream} was already used by another result"
    reason = faults.reject.get(doc["result_id"])
    if reason is None and faults.reject_when is not None:
        reason = faults.reject_when(doc)
    return reason


class CheckpointWatch:
    """A later result must carry a later audit checkpoint: a lower one means the station's audit
    chain was cut back (the result is still stored; the rollback is for people to chase). Kept per
    stream: each box of a split hall has its own chain."""

    def __init__(self, stats: ProvinceStats) -> None:
        self._stats = stats
        self._latest: dict[str, tuple[int, int]] = {}
        """stream -> (result seq, audit checkpoint seq) of its result with the latest checkpoint
        stored since this start."""

    def see(self, stream: str, seq: int, audit_seq: int) -> None:
        top = self._latest.get(stream)
        if top is not None and seq > top[0] and audit_seq < top[1]:
            self._stats.rollbacks_seen += 1
            log.warning("province: result seq %d of %s was signed at audit entry %d, but seq %d was signed at entry "
                        "%d: the station's database was rolled back; ask the site for `examstation audit verify "
                        "--province-copy` with that result", seq, stream, audit_seq, *top)
        if top is None or audit_seq > top[1]:
            self._latest[stream] = (seq, audit_seq)
