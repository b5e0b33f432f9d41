"""Importing the batch list of candidates (考生) the exam centre sends, as a CSV file.

The file is checked whole before anything is registered: its header, then every line (empty
fields, the operation, attempt_number, the ID number's check digit and birth date, the same
candidate twice), and every problem is listed with file:line and column, so the administrator
fixes them all in one go. Then the batch is registered in one transaction (all of it or, on any
error, nothing): new candidates are added, identical ones left alone, changed ones updated unless
they already have an attempt, which no import ever changes (station.registration.register_batch).
docs/candidates.md is the administrator's side of this.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from scoring.text_file import TextFileError, read_text_file
from station.config import OPERATIONS
from station.id_number import InvalidIdNumber, china_date, citizen_id_number
from station.registration import CandidateData, Registered
from station.services import ServiceError, StationServices

REQUIRED = ("id_number", "name", "operation", "batch")
OPTIONAL = ("photo_ref", "attempt_number")
MAX_LISTED = 50
"""Problems (and candidates kept or updated) listed one per line; the rest are counted."""
_SCIENTIFIC = re.compile(r"[0-9](\.[0-9]+)?E\+?[0-9]+", re.IGNORECASE)
"""An ID number Excel showed as a number (1.10101E+17) and saved that way: its digits are lost."""


class CandidateFileError(ServiceError):
    """The candidate list cannot be imported; nothing of it was registered. The message lists the problems."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)
        """Each problem, "FILE:LINE: COLUMN: what is wrong"."""


@dataclass(frozen=True, slots=True)
class CandidateLine:
    """One candidate of the file and the line it is on."""

    line: int
    candidate: CandidateData


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did (or, in a dry run, would do) to each candidate of the file."""

    path: Path
    encoding: str
    dry_run: bool
    outcomes: tuple[tuple[int, Registered], ...]
    """(line, outcome) in the file's order."""

    def lines_of(self, outcome: str) -> list[tuple[int, Registered]]:
        return [(line, r) for line, r in self.outcomes if r.outcome == outcome]

    def __str__(self) -> str:
        counts = {o: len(self.lines_of(o)) for o in ("new", "updated", "unchanged", "kept")}
        verb = "would register" if self.dry_run else "registered"
        out = [f"{self.path} ({self.encoding}): {verb} {counts['new']} new, {counts['updated']} updated; "
               f"{counts['unchanged']} unchanged, {counts['kept']} kept because they have an attempt"]
        changes = [f"  line {line}: {r.candidate.id_number} {'would be ' if self.dry_run else ''}updated: "
                   f"{_changes(r)}" for line, r in self.lines_of("updated")]
        kept = [f"  line {line}: {r.candidate.id_number} has attempt {', '.join(r.attempts)}, not changed "
                f"(the file would change {_changes(r)})" for line, r in self.lines_of("kept")]
        out += _capped(changes) + _capped(kept)
        unchanged = self.lines_of("unchanged")
        if unchanged:
            out.append(f"  unchanged (registered as in the file): {_spans([line for line, _ in unchanged])}")
        if self.dry_run:
            out.append("dry run: nothing was written; run the import again without --dry-run to register")
        return "\n".join(out)


def import_candidates_csv(services: StationServices, path: Path, *, encoding: str | None = None,
                          dry_run: bool = False) -> ImportReport:
    """Check the whole file, then register it in one transaction (`dry_run`: check and compare only).

    The file has a header line id_number,name,operation,batch[,photo_ref,attempt_number]; it may be
    UTF-8 (with or without BOM) or GBK/GB18030, or what `encoding` names. Raises
    CandidateFileError listing every problem when any line is wrong; nothing is registered then.
    """
    try:
        text = read_text_file(path, encoding, what="the candidate list", table=True)
    except TextFileError as err:
        raise CandidateFileError(str(err)) from err
    except OSError as err:
        raise CandidateFileError(f"{path}: cannot read the candidate list ({err.strerror}); check the path") from err
    lines = read_candidates(path, text.text, china_date(services.clock.utc_ns()))
    outcomes = services.registration.register_batch([c.candidate for c in lines], path.name, dry_run=dry_run)
    return ImportReport(path, text.encoding, dry_run, tuple((c.line, r) for c, r in zip(lines, outcomes, strict=True)))


def read_candidates(path: Path, text: str, today: date) -> list[CandidateLine]:
    """Every candidate of the file's `text`, checked; CandidateFileError lists every problem found."""
    rows = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lstrip("\ufeff").strip() for h in next(rows, [])]
    problems = _header_problems(path, header)
    if problems:
        raise _file_error(path, problems)
    found: list[CandidateLine] = []
    seen: dict[str, int] = {}
    line = rows.line_num + 1
    for fields in rows:
        start, line = line, rows.line_num + 1  # a quoted field may span lines: name the first
        if not any(f.strip() for f in fields):
            continue  # blank lines, and the ",,,," rows spreadsheets leave at the end
        where = f"{path}:{start}"
        if len(fields) != len(header):
            problems.append(f"{where}: {len(fields)} fields, the header has {len(header)}; check for a comma "
                            "inside a value (put the value in double quotes)")
            continue
        row = {name: value.strip() for name, value in zip(header, fields, strict=True)}
        id_number, candidate, row_problems = _candidate(row, today)
        problems += [f"{where}: {p}" for p in row_problems]
        if id_number in seen:
            problems.append(f"{where}: id_number: {id_number} is also on line {seen[id_number]}; "
                            "keep one line per candidate")
        elif id_number:
            seen[id_number] = start
            if candidate is not None:
                found.append(CandidateLine(start, candidate))
    if not problems and not found:
        problems.append(f"{path}: no candidates after the header line")
    if problems:
        raise _file_error(path, problems)
    return found


def _header_problems(path: Path, header: list[str]) -> list[str]:
    expected = f"expected {','.join(REQUIRED)}[,{','.join(OPTIONAL)}]"
    if not any(header):
        return [f"{path}:1: no header line; the first line names the columns: {expected}"]
    problems = []
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        problems.append(f"{path}:1: the header lacks {', '.join(missing)}; {expected}")
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if unknown:
        problems.append(f"{path}:1: unknown column {', '.join(repr(c) for c in unknown)}; {expected} "
                        "(a misspelt attempt_number would register a re-sit as a first sitting)")
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        problems.append(f"{path}:1: column {', '.join(twice)} twice in the header")
    return problems


def _candidate(row: dict[str, str], today: date) -> tuple[str, CandidateData | None, list[str]]:
    """One line's ID number ("" when not valid) and candidate, or the problems of each of its columns
    ("COLUMN: what is wrong"): the ID number is returned even with problems elsewhere on the line, so
    a candidate who is twice in the file is named as such whatever else is wrong."""
    problems = [f"{column}: empty" for column in REQUIRED if not row[column]]
    id_number = ""
    if row["id_number"]:
        try:
            id_number = citizen_id_number(row["id_number"], today)
        except InvalidIdNumber as err:
            hint = ("; Excel saved it as a number and lost digits: format the column as text (文本) and type "
                    "the numbers again") if _SCIENTIFIC.fullmatch(row["id_number"]) else ""
            problems.append(f"id_number: {row['id_number']}: {err}{hint}")
    if row["name"] and not row["name"].isprintable():
        problems.append(f"name: {row['name']!r} holds control characters")
    if row["operation"] and row["operation"] not in OPERATIONS:
        problems.append(f"operation: {row['operation']!r} is not one of {', '.join(OPERATIONS)}")
    number = row.get("attempt_number") or "1"
    if number not in ("1", "2"):
        problems.append(f"attempt_number: {number!r}; 1, or 2 for the one re-sit (补考)")
    if problems:
        return id_number, None, problems
    return id_number, CandidateData(id_number, row["name"], row["operation"], row["batch"],
                                    row.get("photo_ref") or None, int(number)), []


def _file_error(path: Path, problems: list[str]) -> CandidateFileError:
    head = f"{path}: {len(problems)} problem{'s' if len(problems) > 1 else ''}; nothing was imported, fix the file " \
           "and import it again:"
    return CandidateFileError("\n".join([head, *_capped([f"  {p}" for p in problems])]), tuple(problems))


def _capped(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_LISTED:
        return lines
    return [*lines[:MAX_LISTED], f"  ... and {len(lines) - MAX_LISTED} more"]


def _changes(r: Registered) -> str:
    """"name '张三' -> '张山', batch 'B1' -> 'B2'"."""
    changes = r.candidate.changes_from(r.before) if r.before is not None else {}
    return ", ".join(f"{field} {old!r} -> {new!r}" for field, (old, new) in changes.items())


def _spans(lines: list[int]) -> str:
    """[2, 3, 4, 7] -> "lines 2-4, 7"."""
    spans: list[list[int]] = []
    for n in lines:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    text = ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in spans)
    return f"line{'s' if len(lines) > 1 else ''} {text}"
