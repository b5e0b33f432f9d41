"""What a station must hold per operation type, as data: the national file and a province's override.

Why data and not code: the standard fixes the equipment only in fragments, and provinces add their
own demands (two cameras, a second manikin). `requirements.yaml` beside this module is the national
default; a province's file in the same form (site config `acceptance.requirements`) replaces rows
with the same `id` and adds new ones, per operation. Read like the rubrics: UTF-8 or GBK
(`scoring.text_file`), strict YAML (a key written twice is an error), pydantic with
`extra="forbid"`; every problem names the file, the line and what to write instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from devices.profile import available_profiles
from scoring.text_file import TextFileError, read_text_file
from scoring.yaml_strict import DuplicateKeyError, load_strict
from station.config import OPERATIONS
from station.config_file import line_of

NATIONAL_FILE = Path(__file__).with_name("requirements.yaml")


class RequirementsError(Exception):
    """A requirements file is unreadable or wrong; the message lists every problem with its line and fix."""


class Requirement(BaseModel):
    """One thing a station of an operation type must hold: devices of some profiles, or cameras."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9-]{0,39}$", description="row id, lower-case with dashes, e.g. wiring-bench")
    title_zh: str = Field(min_length=1, description="what the station must have, as the site calls it, e.g. 模拟人")
    profiles: tuple[str, ...] | None = Field(
        None, min_length=1, description="device profiles that meet the row (any of them), e.g. [weld-sim, weld-power]")
    cameras: int | None = Field(None, ge=1, le=16, description="cameras the station needs at least (camera rows)")
    count: int = Field(
        1, ge=0, le=16, description="devices of those profiles the station needs at least; 0 waives the row")
    source: str = Field(min_length=1, description="where the row comes from: STANDARD.md section, rubric items")

    @model_validator(mode="after")
    def _one_kind(self) -> Requirement:
        if (self.profiles is None) == (self.cameras is None):
            raise ValueError(f"row {self.id}: give exactly one of profiles: [...] (a device row) or cameras: N")
        if self.cameras is not None and "count" in self.model_fields_set:
            raise ValueError(f"row {self.id}: a camera row says how many in cameras:, not count:; remove count")
        known = set(available_profiles())
        unknown = [p for p in self.profiles or () if p not in known]
        if unknown:
            raise ValueError(f"row {self.id}: no device profile named {', '.join(unknown)}; "
                             f"known profiles: {', '.join(sorted(known))}")
        return self

    @property
    def needed(self) -> int:
        """How many devices (or cameras) meet the row."""
        return self.cameras if self.cameras is not None else self.count


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    operations: dict[str, tuple[Requirement, ...]] = Field(
        description=f"per operation type ({', '.join(OPERATIONS)}): the rows a station of that type must meet")

    @model_validator(mode="after")
    def _known_unique(self) -> _File:
        for op, rows in self.operations.items():
            if op not in OPERATIONS:
                raise ValueError(f"operation {op!r} is not one this controller scores; use {' or '.join(OPERATIONS)}")
            ids = [r.id for r in rows]
            dup = sorted({i for i in ids if ids.count(i) > 1})
            if dup:
                raise ValueError(f"{op}: row id {dup[0]} is used twice; give each row its own id")
        return self


Requirements = dict[str, tuple[Requirement, ...]]
"""Per operation type, the rows in file order (the national ones first, then a province's new ones)."""


def load_requirements_file(path: Path, encoding: str | None = None) -> Requirements:
    """Read and validate one requirements file (national or a province's), without merging."""
    try:
        text = read_text_file(path, encoding, what="a station requirements file").text
    except TextFileError as err:
        raise RequirementsError(str(err)) from err
    except OSError as err:
        raise RequirementsError(f"{path}: cannot read the requirements file ({err.strerror}); check the path in "
                                "acceptance.requirements of the site config") from err
    try:
        raw = load_strict(text)
        root = yaml.compose(text)
    except DuplicateKeyError as err:
        raise RequirementsError(f"{path}: {err}") from err
    except yaml.YAMLError as err:
        raise RequirementsError(f"{path}: not valid YAML: {err}; fix the syntax at the line shown") from err
    if not isinstance(raw, dict):
        raise RequirementsError(f"{path}: expected a mapping `operations:` of rows per operation type; see "
                                f"{NATIONAL_FILE}")
    try:
        return dict(_File.model_validate(raw).operations)
    except ValidationError as err:
        problems = [_problem(path, root, e) for e in err.errors()]
        raise RequirementsError(f"{path}: station requirements are invalid:\n  " + "\n  ".join(problems)) from err


def _problem(path: Path, root: yaml.Node | None, e: Any) -> str:
    loc = tuple(e["loc"])
    msg = str(e["msg"]).removeprefix("Value error, ")
    hint = ""
    if e["type"] == "extra_forbidden":
        hint = "; remove it or fix its spelling (keys: id, title_zh, profiles or cameras, count, source)"
    elif e["type"] == "missing":
        field = loc[-1] if loc else ""
        hint = f"; add {field}: ({_describe(str(field))})"
    elif e["type"] != "value_error":
        if "input" in e and not isinstance(e["input"], dict | list):
            msg += f" (got {e['input']!r})"
        desc = _describe(str(loc[-1])) if loc else ""
        hint = f"; expected: {desc}" if desc else ""
    return f"{path}:{line_of(root, loc) or '?'}: {_path(loc) or '(top level)'}: {msg}{hint}"


def _describe(field: str) -> str:
    info = Requirement.model_fields.get(field) or _File.model_fields.get(field)
    return info.description or "" if info else ""


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def merge(national: Requirements, override: Requirements) -> Requirements:
    """The national rows with a province's: same id replaces (in place), a new id is added at the end."""
    out: Requirements = {}
    for op in OPERATIONS:
        rows = list(national.get(op, ()))
        for row in override.get(op, ()):
            at = next((i for i, r in enumerate(rows) if r.id == row.id), None)
            if at is None:
                rows.append(row)
            else:
                rows[at] = row
        out[op] = tuple(rows)
    return out


def load_requirements(override: Path | None = None, *, base_dir: Path | None = None) -> Requirements:
    """The rows every station is checked against: the national file, merged with the province's
    `override` when one is configured (a relative path is taken from `base_dir`, the site config's
    folder, so a config and its override travel together)."""
    national = load_requirements_file(NATIONAL_FILE)
    missing = [op for op in OPERATIONS if op not in national]
    if missing:
        raise RequirementsError(f"{NATIONAL_FILE}: no rows for {', '.join(missing)}; restore the file")
    if override is None:
        return national
    if not override.is_absolute() and base_dir is not None:
        override = base_dir / override
    return merge(national, load_requirements_file(override))
