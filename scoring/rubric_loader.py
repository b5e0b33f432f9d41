"""Load a rubric file (YAML) into the frozen `scoring.rubric` model, or say exactly what is wrong.

This module reads and parses the file (UTF-8 or GBK, strict YAML), hashes its content and finds
the file of an operation; what the content must hold is `scoring.rubric_rules`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from scoring.canonical import canonical_bytes
from scoring.rubric import Rubric, RubricError
from scoring.rubric_rules import validate
from scoring.text_file import TextFileError, read_text_file
from scoring.yaml_strict import DuplicateKeyError, load_strict

__all__ = ["RUBRIC_DIR", "RubricError", "available_rubrics", "content_hash", "load_rubric_file", "rubric_for"]

RUBRIC_DIR = Path(__file__).parent / "rubrics"


def content_hash(data: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a rubric's content (formatting and comments do not count)."""
    return "sha256:" + hashlib.sha256(canonical_bytes(data)).hexdigest()


def load_rubric_file(path: Path | str, encoding: str | None = None) -> Rubric:
    """Load, validate and hash one rubric file: UTF-8 (with or without BOM) or GBK/GB18030, or the
    `encoding` named. The hash is over the parsed content, so it does not depend on the encoding."""
    path = Path(path)
    raw = _parse(path, encoding)
    return validate(raw, content_hash(raw), path)


def _parse(path: Path, encoding: str | None) -> Any:
    try:
        return load_strict(read_text_file(path, encoding, what="a rubric file").text)
    except TextFileError as err:
        raise RubricError(str(err)) from err
    except DuplicateKeyError as err:
        raise RubricError(f"{path}: {err}") from err
    except (OSError, yaml.YAMLError) as err:
        raise RubricError(f"{path}: cannot read the rubric ({err}); fix the file or restore it") from err


def available_rubrics(directory: Path = RUBRIC_DIR) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def rubric_for(operation: str, directory: Path = RUBRIC_DIR) -> Rubric:
    """The rubric for an operation type (低压电工作业 ...): the one file in `directory` whose
    `operation:` names it.

    Only that file is validated, so a broken welding file fails welding and nothing else: a file
    that names the operation but breaks a rule fails with its own error; a file that cannot be
    read or parsed at all (so names no operation) is listed when no valid file names the operation.
    """
    found: list[tuple[Path, Any]] = []
    unreadable: list[str] = []
    others: list[str] = []
    for path in available_rubrics(directory):
        try:
            raw = _parse(path, None)
        except RubricError as err:
            unreadable.append(str(err))
            continue
        named = raw.get("operation") if isinstance(raw, dict) else None
        if not isinstance(named, str):
            unreadable.append(f"{path}: names no `operation:`; give the operation it scores (see docs/rubrics.md)")
        elif named == operation:
            found.append((path, raw))
        else:
            others.append(f"{path.name} for {named}")
    if len(found) > 1:
        names = ", ".join(p.name for p, _ in found)
        raise RubricError(f"{len(found)} rubric files for {operation} in {directory} ({names}); keep exactly one")
    if found:
        path, raw = found[0]
        return validate(raw, content_hash(raw), path)
    if unreadable:
        raise RubricError(f"no valid rubric for {operation} in {directory}; these files could not be read:\n  "
                          + "\n  ".join(unreadable))
    has = f" (it has: {', '.join(others)})" if others else ""
    raise RubricError(f"no rubric file for {operation} in {directory}{has}; add one, see docs/rubrics.md")
