"""Registering candidates (考生) from the batch list the exam centre sends (CSV)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from station.config import OPERATIONS
from station.services import ServiceError, StationServices


def import_candidates_csv(services: StationServices, path: Path) -> int:
    """Register a batch from a CSV with columns id_number,name,operation,batch[,photo_ref,attempt_number].

    The whole file is checked first; a bad row stops the import with its line number and
    nothing is registered (a half-imported batch is worse than none)."""
    required = ("id_number", "name", "operation", "batch")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise ServiceError(f"{path}: cannot read the candidate list ({err.strerror})") from err
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise ServiceError(f"{path}: the header lacks {missing}; expected {','.join(required)}"
                           "[,photo_ref,attempt_number]")
    rows = []
    for line, row in enumerate(reader, start=2):
        if any(not (row.get(c) or "").strip() for c in required):
            raise ServiceError(f"{path}:{line}: {', '.join(c for c in required if not row.get(c))} empty")
        if row["operation"] not in OPERATIONS:
            raise ServiceError(f"{path}:{line}: operation {row['operation']!r} is not one of {OPERATIONS}")
        number = (row.get("attempt_number") or "1").strip()
        if number not in ("1", "2"):
            raise ServiceError(f"{path}:{line}: attempt_number {number!r}; 1, or 2 for the one re-sit (补考)")
        rows.append((row["id_number"].strip(), row["name"].strip(), row["operation"], row["batch"].strip(),
                     (row.get("photo_ref") or "").strip() or None, int(number)))
    for id_number, name, operation, batch, photo, number in rows:
        services.register_candidate(id_number, name, operation, batch, photo, number)
    return len(rows)
