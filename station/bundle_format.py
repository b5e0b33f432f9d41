"""The evidence bundle's layout: what `examstation export` writes and `examstation verify` reads.

One attempt's record, as plain files anyone can check without the station (docs/verify.md,
"Evidence bundles"):

    result.json            the signed result document, the exact text the station stored
    site_public_key.pem    the public half of the site key that signed it
    timeline.jsonl         one line per timeline row: {"seq", "record" (the stored text), "row_hash"}
    sheet.json             the score sheet the result was signed over, the exact stored text
    rubric/<file>.yaml     the rubric edition that sheet names (its hash is the sheet's rubric_hash)
    segments/<id>.mkv      every video segment linked to the attempt, byte for byte
    stills/<camera>.jpg    the check-in stills
    manifest.json          canonical JSON: format, site, station, attempt_id, result_id, the SHA-256
                           of every other file, and the audit-chain entries that cover them

Export and verify share these names and the manifest's reading here, so they cannot drift apart.
This module holds no database code: the verifier runs where there is no station.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from station.errors import ServiceError

FORMAT: Final = "examstation/bundle/v1"
MANIFEST: Final = "manifest.json"
RESULT: Final = "result.json"
PUBLIC_KEY: Final = "site_public_key.pem"
TIMELINE: Final = "timeline.jsonl"
SHEET: Final = "sheet.json"
RUBRIC_DIR: Final = "rubric"
SEGMENTS_DIR: Final = "segments"
STILLS_DIR: Final = "stills"

SEGMENT_STORED: Final = "evidence.segment"
"""Audit action of a finished segment; payload has segment_id and sha256. The same name as
station.evidence_index.SEGMENT_STORED (not imported: the verifier needs none of the recorder's code)."""
STILL_STORED: Final = "evidence.still"
"""Audit action of a check-in still; payload has attempt_id, camera and sha256."""
EVIDENCE_LINKED: Final = "evidence.linked"
"""Audit action linking an attempt to its segments: payload attempt_id, segments [{segment_id, sha256}], gaps."""

CHUNK_BYTES: Final = 1 << 20


class BundleError(ServiceError):
    """An export that cannot be made, or a path that is not a bundle; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One audit-chain entry as the manifest carries it (the columns of `station.db.models.AuditRow`,
    with the payload as a JSON value): enough to recompute `entry_hash` without the database."""

    seq: int
    utc_ns: int
    actor: str
    action: str
    subject: str
    payload: dict[str, Any]
    prev_hash: str
    entry_hash: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "utc_ns": self.utc_ns, "actor": self.actor, "action": self.action,
                "subject": self.subject, "payload": self.payload, "prev_hash": self.prev_hash,
                "entry_hash": self.entry_hash}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entry:
        """Raises ValueError naming the member that is missing or of the wrong type."""
        types: dict[str, type] = {"seq": int, "utc_ns": int, "actor": str, "action": str, "subject": str,
                                  "payload": dict, "prev_hash": str, "entry_hash": str}
        for name, kind in types.items():
            value = data.get(name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ValueError(f"{name} is {value!r}, expected {kind.__name__}")
        if set(data) != set(types):
            raise ValueError(f"unexpected members {sorted(set(data) - set(types))}")
        return cls(**{name: data[name] for name in types})


def segment_file(segment_id: str, suffix: str = ".mkv") -> str:
    """The bundle path of a segment (segment ids name files already: `{station}-{camera}-{start}`)."""
    return f"{SEGMENTS_DIR}/{safe_name(segment_id, 'segment id')}{suffix}"


def still_file(camera: str) -> str:
    return f"{STILLS_DIR}/{safe_name(camera, 'camera')}.jpg"


def safe_name(name: str, what: str) -> str:
    """A name used as a file name in the bundle: no separators or dot-names that would leave its folder."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
        raise BundleError(f"{what} {name!r} cannot name a file in a bundle")
    return name


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


class Mismatch(Exception):
    """The first thing in the bundle that does not hold: the file it is in, and what differs."""

    def __init__(self, file: str, message: str) -> None:
        super().__init__(f"{file}: {message}")
        self.file = file
        self.message = message


@dataclass(frozen=True, slots=True)
class Bundle:
    """A bundle whose files match its manifest and whose audit entries form one chain."""

    root: Path
    manifest: dict[str, Any]
    files: dict[str, str]
    """Bundle path -> SHA-256, every file but the manifest."""
    entries: list[Entry]
    doc: dict[str, Any]
    """result.json's value."""

    @property
    def attempt_id(self) -> str:
        return str(self.manifest["attempt_id"])

    def text(self, name: str) -> str:
        try:
            return (self.root / name).read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise Mismatch(name, f"is not UTF-8 text ({err})") from err

    def of_attempt(self, action: str) -> list[Entry]:
        return [e for e in self.entries if e.action == action and e.subject == f"attempt:{self.attempt_id}"]
