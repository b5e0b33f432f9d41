"""What `audit verify` proves about each result beyond the hash chains: that it is the one signed.

`station.audit.verify` checks that the chains and digests inside the database agree with
themselves. A person who edits a result and recomputes its hash, its audit entry and every entry
after it passes that check. This module checks what such a person cannot recompute:

- every result's Ed25519 signature against the site's public key (the key the province holds);
- the result document against its score sheet, and the sheet against the `sheet.scored` audit
  entry that recorded its hash and total;
- the stored timeline, scored again with the rubric edition named in the sheet, against the sheet
  and against the signed document rebuilt from that score;
- the audit checkpoint signed into each result: the chain must still hold that entry;
- with a copy of a result the province holds (`--province-copy`): the database still has that
  result, unchanged, and every result before it.

What it cannot prove: that the site key was not stolen (a thief can sign anything), or that
entries after the last checkpoint the province holds were not deleted when no copy is given.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from scoring.rubric import Rubric
from scoring.rubric_loader import RubricError
from station.audit import Problem
from station.db.digest import GENESIS_HASH, sha256_hex
from station.db.errors import DatabaseError
from station.db.models import AuditRow, ResultRow, ScoreSheetRow
from station.result_check import SheetText, rescore, result_against_sheet
from station.result_document import pointer_problems
from station.signing import SigningError, key_id, verify
from station.stored import load_timeline_in

SHEET_SCORED = "sheet.scored"
"""Action of the audit entry recording a stored score sheet: version, sheet_sha256, total."""


@dataclass(frozen=True, slots=True)
class SiteKeyRef:
    """The public key results must verify against, and where it came from (for the report)."""

    public_pem: str
    source: str


@dataclass(slots=True)
class Findings:
    problems: list[Problem] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, key: str, message: str) -> None:
        self.problems.append(Problem(table, key, message))


def prove_records(session: Session, key: SiteKeyRef | None, rubric_of: Callable[[str], Rubric],
                  province_copy: Mapping[str, Any] | None = None, attempt_id: str | None = None) -> Findings:
    """Every check of the module docstring, in the read transaction `session`; with `attempt_id`,
    only that attempt's sheets and result (what `replay` shows)."""
    found = Findings()
    sheets = _sheets_against_audit(session, found, attempt_id)
    chain: dict[int, str] = {seq: h for seq, h in session.execute(select(AuditRow.seq, AuditRow.entry_hash))}
    chain[0] = GENESIS_HASH
    seqs: list[int] = []
    signed = 0
    results = select(ResultRow).order_by(ResultRow.site_seq)
    if attempt_id is not None:
        results = results.where(ResultRow.attempt_id == attempt_id)
    for row in session.execute(results).scalars():
        seqs.append(row.site_seq)
        where = f"result_id={row.result_id}"
        try:
            doc = json.loads(row.document)
        except ValueError:
            continue  # audit.verify names a document that is not JSON
        if not isinstance(doc, dict):
            continue
        if key is None:
            found.add("results", where, "signature not checked: no site public key (pass --public-key FILE, the "
                                        "key the province registered, or verify in the data directory)")
        elif _signature(doc, key, where, found):
            signed += 1
        _checkpoint(doc, chain, where, found)
        latest = sheets.get(row.attempt_id)
        if latest is None:
            found.add("results", where, f"attempt {row.attempt_id} has no score sheet; a result is signed over one")
            continue
        _result_against_sheet(doc, latest, where, found)
        _rescore(session, doc, row.attempt_id, latest, rubric_of, where, found)
    for expected, actual in zip(range(1, len(seqs) + 1), seqs, strict=True):
        if attempt_id is None and actual != expected:
            found.add("results", f"site_seq={actual}", f"results seq {expected}..{actual - 1} are missing: signed "
                                                       "results were deleted; the province holds copies")
            break
    if province_copy is not None:
        _against_province(session, province_copy, key, chain, found)
    found.checked["signatures"] = signed
    return found


def _sheets_against_audit(session: Session, found: Findings, attempt_id: str | None) -> dict[str, SheetText]:
    """Each sheet against the audit entry that recorded it; the latest sheet of each attempt."""
    recorded: dict[tuple[str, int], tuple[int, Mapping[str, Any]]] = {}
    entries = select(AuditRow.seq, AuditRow.subject, AuditRow.payload).where(AuditRow.action == SHEET_SCORED)
    sheet_rows = select(ScoreSheetRow).order_by(ScoreSheetRow.attempt_id, ScoreSheetRow.version)
    if attempt_id is not None:
        entries = entries.where(AuditRow.subject == f"attempt:{attempt_id}")
        sheet_rows = sheet_rows.where(ScoreSheetRow.attempt_id == attempt_id)
    for seq, subject, payload in session.execute(entries):
        try:
            data = json.loads(payload)
            recorded[(subject.removeprefix("attempt:"), int(data["version"]))] = (seq, data)
        except (ValueError, KeyError, TypeError):
            found.add("audit", f"seq={seq}", f"{SHEET_SCORED} entry without a version: {payload[:200]!r}")
    latest: dict[str, SheetText] = {}
    for row in session.execute(sheet_rows).scalars():
        where = f"attempt_id={row.attempt_id},version={row.version}"
        actual = sha256_hex(row.sheet)
        entry = recorded.get((row.attempt_id, row.version))
        try:
            data = json.loads(row.sheet)
        except ValueError:
            continue  # audit.verify names it
        if entry is None:
            found.add("score_sheets", where, f"no {SHEET_SCORED} audit entry records this sheet")
        else:
            seq, kept = entry
            if kept.get("sheet_sha256") != actual:
                found.add("score_sheets", where, f"audit seq={seq} recorded sheet_sha256 {kept.get('sheet_sha256')}"
                                                 f", the sheet text hashes to {actual}: the sheet was changed")
            if isinstance(data, dict) and kept.get("total") != data.get("total"):
                found.add("score_sheets", where, f"audit seq={seq} recorded total {kept.get('total')}, the sheet "
                                                 f"says {data.get('total')}")
        if isinstance(data, dict):
            latest[row.attempt_id] = SheetText(row.version, row.sheet, data)
    return latest


def _signature(doc: dict[str, Any], key: SiteKeyRef, where: str, found: Findings) -> bool:
    try:
        ok = verify(doc, key.public_pem)
    except (SigningError, ValueError) as err:
        found.add("results", where, f"signature not checked: {err}")
        return False
    if not ok:
        sig = doc.get("signature")
        named = sig.get("key_id") if isinstance(sig, dict) else None
        found.add("results", where, f"the Ed25519 signature does not verify against the site key ({key.source}"
                                    f"{'' if named is None else f'; the document names key {named}'}): the "
                                    "document was changed after signing, or signed by another key")
    return ok


def _checkpoint(doc: dict[str, Any], chain: Mapping[int, str], where: str, found: Findings) -> None:
    point = doc.get("audit_checkpoint")
    if not isinstance(point, dict):
        return  # documents signed before checkpoints existed
    seq, head = point.get("seq"), point.get("entry_hash")
    if not isinstance(seq, int) or chain.get(seq) != head:
        now = chain.get(seq) if isinstance(seq, int) else None
        found.add("audit", f"seq={seq}", f"result {doc.get('result_id')} was signed over audit entry {seq} with "
                                         f"hash {head}; the chain " + ("no longer holds it: entries were deleted"
                                                                       if now is None else f"has {now} there now"))


def _result_against_sheet(doc: dict[str, Any], sheet: SheetText, where: str, found: Findings) -> None:
    for message in (*result_against_sheet(doc, sheet), *pointer_problems(doc)):
        found.add("results", where, message)


def _rescore(session: Session, doc: dict[str, Any], attempt_id: str, sheet: SheetText,
             rubric_of: Callable[[str], Rubric], where: str, found: Findings) -> None:
    """Score the stored timeline again; the sheet and the signed document must be what it gives."""
    try:
        rubric = rubric_of(str(sheet.data.get("operation")))
    except (RubricError, LookupError) as err:
        found.add("results", where, f"not re-scored: {err}")
        return
    if rubric.hash != sheet.data.get("rubric_hash"):
        found.add("results", where, f"not re-scored: it was scored with rubric {sheet.data.get('rubric_hash')}, the "
                                    f"rubric file now is {rubric.hash}; restore that rubric edition and verify again")
        return
    try:
        timeline = load_timeline_in(session, attempt_id)
    except DatabaseError as err:
        found.add("timeline", f"attempt_id={attempt_id}", f"not re-scored: {err}")
        return
    wrong = rescore(doc, attempt_id, sheet, rubric, timeline)
    if wrong is None:
        return
    if wrong.part == "sheet":
        found.add("score_sheets", f"attempt_id={attempt_id},version={sheet.version}", wrong.message)
    elif wrong.part == "timeline":
        found.add("timeline", f"attempt_id={attempt_id}", wrong.message)
    else:
        found.add("results", where, wrong.message)


def _against_province(session: Session, copy: Mapping[str, Any], key: SiteKeyRef | None,
                      chain: Mapping[int, str], found: Findings) -> None:
    """A result document the province holds: proof of what this database held when it was sent."""
    where = f"result_id={copy.get('result_id')}"
    if key is None or not verify(copy, key.public_pem):
        found.add("province copy", where, "does not verify against the site key: it proves nothing about this "
                                          "database (is it this site's result?)")
        return
    _checkpoint(dict(copy), chain, where, found)
    row = session.get(ResultRow, copy.get("result_id"))
    if row is None:
        found.add("results", where, f"the province holds result seq {copy.get('seq')}, signed "
                                    f"{copy.get('signed_at')}; this database has no such row: it was rolled back "
                                    "or the result deleted")
    elif json.loads(row.document) != dict(copy):
        found.add("results", where, "differs from the copy the province holds")
    seq = copy.get("seq")
    if isinstance(seq, int):
        have = set(session.execute(select(ResultRow.site_seq).where(ResultRow.site_seq <= seq)).scalars())
        missing = sorted(set(range(1, seq + 1)) - have)
        if missing:
            found.add("results", f"site_seq={missing[0]}", f"{len(missing)} results up to the province's seq {seq} "
                                                          f"are missing (seq {missing[0]} first)")


def key_ref(public_pem: str, source: str) -> SiteKeyRef:
    """A SiteKeyRef whose source names the key's id too (`ed25519:...`)."""
    try:
        public = serialization.load_pem_public_key(public_pem.encode())
    except (ValueError, UnsupportedAlgorithm) as err:  # cryptography's words for a damaged PEM
        raise SigningError(f"{source} is not a PEM public key ({err}); `examstation keys export` prints one") from err
    if not isinstance(public, Ed25519PublicKey):
        raise SigningError(f"{source} is not an Ed25519 public key")
    return SiteKeyRef(public_pem, f"{key_id(public)} from {source}")
