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
    try:
        raw = load_strict(read_text_file(path, encoding, what="a rubric file").text)
    except TextFileError as err:
        raise RubricError(str(err)) from err
    except DuplicateKeyError as err:
        raise RubricError(f"{path}: {err}") from err
    except (OSError, yaml.YAMLError) as err:
        raise RubricError(f"{path}: cannot read the rubric ({err}); fix the file or restore it") from err
    return validate(raw, content_hash(raw), path)


def available_rubrics(directory: Path = RUBRIC_DIR) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def rubric_for(operation: str, directory: Path = RUBRIC_DIR) -> Rubric:
    """The rubric for an operation type (低压电工作业 ...), from the rubric directory."""
    found = [r for r in (load_rubric_file(p) for p in available_rubrics(directory)) if r.operation == operation]
    if len(found) != 1:
        raise RubricError(f"{len(found)} rubric files for {operation} in {directory}; keep exactly one")
    return found[0]

