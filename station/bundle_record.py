"""The second half of `examstation verify`: each file of a bundle is the one the audit chain recorded,
and the timeline scored again gives the sheet and the signed result.

station.bundle_verify has already shown that the files are what was exported and that the manifest's
audit entries are one piece of chain tied to the result's signature (its checkpoint). Here every file
is matched with the entry that recorded it when it was made: the result with `result.stored`, the
timeline's rows with their chain and `timeline.sealed`, the sheet with `sheet.scored`, each segment
with `evidence.segment` and the result's `evidence` list, each still with `evidence.still` and
`checkin_stills`. Then the bundled rubric re-scores the timeline (station.result_check, the checks
`audit verify` runs on a database). Each check raises Mismatch naming the file at the first difference.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from scoring.rubric import Rubric
from scoring.rubric_loader import RubricError, load_rubric_file
from scoring.timeline import Record, Timeline, ordered, record_from_dict
from station.audit import RESULT_STORED, TIMELINE_SEALED
from station.bundle_format import (
    EVIDENCE_LINKED,
    MANIFEST,
    RESULT,
    RUBRIC_DIR,
    SEGMENT_STORED,
    SEGMENTS_DIR,
    SHEET,
    STILL_STORED,
    STILLS_DIR,
    TIMELINE,
    Bundle,
    Entry,
    Mismatch,
)
from station.db.digest import timeline_row_hash
from station.record_proof import SHEET_SCORED
from station.result_check import SheetText, rescore, result_against_sheet
from station.result_document import pointer_problems

_PART_FILE = {"sheet": SHEET, "timeline": TIMELINE, "result": RESULT}


def check_record(b: Bundle) -> list[str]:
    """Every check of the module docstring; returns what was shown, one line each, for the report."""
    stored = _result_entry(b)
    timeline, rows, seals = _timeline(b)
    sheet, scored = _sheet(b)
    segments = _media(b, SEGMENTS_DIR, "evidence", "segment_id", SEGMENT_STORED,
                      lambda key: [e for e in b.entries if (e.action, e.subject) == (SEGMENT_STORED, f"segment:{key}")])
    stills = _media(b, STILLS_DIR, "checkin_stills", "camera", STILL_STORED,
                    lambda key: [e for e in b.of_attempt(STILL_STORED) if e.payload.get("camera") == key])
    _linked(b)
    name, rubric = _rubric(b, sheet)
    for message in result_against_sheet(b.doc, sheet):
        raise Mismatch(RESULT, message)
    try:
        pointers = pointer_problems(b.doc)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise Mismatch(RESULT, f"its evidence list cannot be read ({err!r})") from err
    for message in pointers:
        raise Mismatch(RESULT, message)
    wrong = rescore(b.doc, b.attempt_id, sheet, rubric, timeline)
    if wrong is not None:
        raise Mismatch(_PART_FILE[wrong.part], wrong.message)
    return [f"{RESULT} is the document recorded at audit seq={stored.seq}",
            f"{TIMELINE}: {rows} rows, every row hash recomputed; sealed at audit seq="
            f"{', '.join(str(e.seq) for e in seals)}",
            f"{SHEET} is version {sheet.version}, recorded at audit seq={scored.seq}",
            f"{segments} segments and {stills} stills are the files their audit entries recorded and the result lists",
            f"re-scored with {name} ({rubric.id}, {rubric.hash}): total {sheet.data.get('total')}, passed "
            f"{sheet.data.get('passed')}, identical to {SHEET} and to the signed result"]


def _result_entry(b: Bundle) -> Entry:
    rid = b.doc.get("result_id")
    entries = [e for e in b.entries if e.action == RESULT_STORED and e.subject == f"result:{rid}"]
    if not entries:
        raise Mismatch(MANIFEST, f"holds no {RESULT_STORED} entry for result {rid}")
    for e in entries:
        if e.payload.get("document_sha256") != b.files[RESULT]:
            raise Mismatch(RESULT, f"sha256 {b.files[RESULT]}, its {RESULT_STORED} entry (audit seq={e.seq}) recorded "
                                   f"{e.payload.get('document_sha256')}: the document was changed after it was stored")
    return entries[-1]


def _timeline(b: Bundle) -> tuple[Timeline, int, list[Entry]]:
    """The rows' own chain recomputed from the attempt id on, then each seal against it."""
    records: list[Record] = []
    hashes: list[str] = []
    for n, line in enumerate(b.text(TIMELINE).splitlines()):
        try:
            row = json.loads(line)
            seq, record, row_hash = row["seq"], row["record"], row["row_hash"]
            if not (isinstance(seq, int) and isinstance(record, str) and isinstance(row_hash, str)):
                raise TypeError("seq, record and row_hash must be a number and two strings")
        except (ValueError, KeyError, TypeError) as err:
            raise Mismatch(TIMELINE, f"line {n + 1} is not a timeline row ({err!r})") from err
        if seq != n:
            raise Mismatch(TIMELINE, f"line {n + 1} holds row {seq}, expected row {n}: rows are missing or moved")
        recomputed = timeline_row_hash(b.attempt_id, hashes[-1] if hashes else None, record)
        if recomputed != row_hash:
            raise Mismatch(TIMELINE, f"row {seq}: row_hash {row_hash}, recomputed {recomputed} from its record and the "
                                     "row before: the row was changed")
        try:
            records.append(record_from_dict(json.loads(record)))
        except (ValueError, TypeError, AttributeError) as err:
            raise Mismatch(TIMELINE, f"row {seq} is not a valid timeline record: {err}") from err
        hashes.append(row_hash)
    seals = b.of_attempt(TIMELINE_SEALED)
    if not seals:
        raise Mismatch(MANIFEST, f"holds no {TIMELINE_SEALED} entry for attempt {b.attempt_id}")
    for e in seals:
        count, head = e.payload.get("rows"), e.payload.get("head_hash")
        if not isinstance(count, int) or count > len(hashes):
            raise Mismatch(TIMELINE, f"has {len(hashes)} rows, audit seq={e.seq} sealed {count}: rows were removed")
        if count and hashes[count - 1] != head:
            raise Mismatch(TIMELINE, f"row {count - 1} hashes to {hashes[count - 1]}, audit seq={e.seq} sealed it as "
                                     f"{head}: the timeline was rewritten")
    return ordered(records), len(hashes), seals


def _sheet(b: Bundle) -> tuple[SheetText, Entry]:
    """The sheet against the `sheet.scored` entry of the latest version: the one the result was signed over."""
    text = b.text(SHEET)
    try:
        data = json.loads(text)
    except ValueError as err:
        raise Mismatch(SHEET, f"is not JSON ({err})") from err
    scored = [e for e in b.of_attempt(SHEET_SCORED) if isinstance(e.payload.get("version"), int)]
    if not isinstance(data, dict) or not scored:
        raise Mismatch(SHEET if not isinstance(data, dict) else MANIFEST,
                       "is not a JSON object" if not isinstance(data, dict) else
                       f"holds no {SHEET_SCORED} entry for attempt {b.attempt_id}")
    latest = max(scored, key=lambda e: int(e.payload["version"]))
    if latest.payload.get("sheet_sha256") != b.files[SHEET]:
        raise Mismatch(SHEET, f"sha256 {b.files[SHEET]}, the {SHEET_SCORED} entry of version "
                              f"{latest.payload['version']} (audit seq={latest.seq}) recorded "
                              f"{latest.payload.get('sheet_sha256')}: it is not the sheet the result was signed over")
    if latest.payload.get("total") != data.get("total"):
        raise Mismatch(SHEET, f"total {data.get('total')}, audit seq={latest.seq} recorded "
                              f"{latest.payload.get('total')}")
    return SheetText(int(latest.payload["version"]), text, data), latest


def _media(b: Bundle, folder: str, member: str, key: str, action: str,
           entries_of: Callable[[str], list[Entry]]) -> int:
    """Segments (or stills): each file is listed by the result and recorded by its audit entry, with one SHA-256."""
    listed: dict[str, dict[str, Any]] = {}
    for item in b.doc.get(member) or []:
        if not isinstance(item, dict) or not isinstance(item.get(key), str):
            raise Mismatch(RESULT, f"{member} holds {item!r}, which names no {key}")
        listed[item[key]] = item
    files = {PurePosixPath(name).stem: name for name in b.files if name.startswith(folder + "/")}
    for stem, name in sorted(files.items()):
        if stem not in listed:
            raise Mismatch(name, f"is not in the {member} list of {RESULT}: it is not this attempt's record")
    for ident, item in listed.items():
        if ident not in files:
            raise Mismatch(RESULT, f"lists {key} {ident} in {member}; the bundle has no file for it under {folder}/")
        name = files[ident]
        if item.get("sha256") != b.files[name]:
            raise Mismatch(name, f"sha256 {b.files[name]}, {RESULT} lists {item.get('sha256')} for it")
        size = (b.root / name).stat().st_size
        if "size_bytes" in item and item["size_bytes"] != size:
            raise Mismatch(RESULT, f"lists {name} with size_bytes {item['size_bytes']}, the file has {size}")
        recorded = entries_of(ident)
        if not recorded:
            raise Mismatch(MANIFEST, f"holds no {action} entry for {name}: nothing in the chain recorded it")
        for e in recorded:
            if e.payload.get("sha256") != b.files[name]:
                raise Mismatch(name, f"sha256 {b.files[name]}, its {action} entry (audit seq={e.seq}) recorded "
                                     f"{e.payload.get('sha256')} when it was recorded: the file was changed since")
    return len(listed)


def _linked(b: Bundle) -> None:
    """The segments the result lists are the ones the signing linked (`evidence.linked`)."""
    listed = {(e.get("segment_id"), e.get("sha256")) for e in b.doc.get("evidence") or [] if isinstance(e, dict)}
    links = b.of_attempt(EVIDENCE_LINKED)
    if not links:
        if listed:
            raise Mismatch(MANIFEST, f"holds no {EVIDENCE_LINKED} entry for attempt {b.attempt_id}, whose result lists "
                                     f"{len(listed)} segments")
        return
    raw = links[-1].payload.get("segments")
    linked = {(s.get("segment_id"), s.get("sha256")) for s in raw or [] if isinstance(s, dict)}
    if linked != listed:
        odd = sorted(str(s) for s, _ in linked ^ listed)
        raise Mismatch(RESULT, f"its evidence list differs from the {EVIDENCE_LINKED} entry (audit seq="
                               f"{links[-1].seq}) in segment(s) {', '.join(odd)}")


def _rubric(b: Bundle, sheet: SheetText) -> tuple[str, Rubric]:
    names = sorted(n for n in b.files if n.startswith(RUBRIC_DIR + "/"))
    if len(names) != 1:
        raise Mismatch(MANIFEST, f"lists {len(names)} rubric files ({', '.join(names) or 'none'}); a bundle carries "
                                 "the one edition its sheet names")
    try:
        rubric = load_rubric_file(b.root / names[0])
    except RubricError as err:
        raise Mismatch(names[0], f"cannot be used: {err}") from err
    if rubric.hash != sheet.data.get("rubric_hash"):
        raise Mismatch(names[0], f"has content hash {rubric.hash}; {SHEET} was scored with "
                                 f"{sheet.data.get('rubric_hash')}: another edition")
    return names[0], rubric
