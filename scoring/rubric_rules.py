"""What a rubric file must hold, and the frozen `scoring.rubric.Rubric` built from it.

Validation happens here and only here, at load time; the engine trusts what it gets. Two layers:
the keys and their shapes (pydantic models, `extra="forbid"`), then the rules across them that
docs/rubrics.md states (weights add up to 1, rows to 100, codes unique in the item and under it,
a deduction within its row, detectors and their parameters, `same_fault_as`). Errors name the file, the item,
the row and the fix, because the person reading them is a province's exam official dropping in
their own 评分细则, not a programmer.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

import scoring.detectors  # noqa: F401  - registers every detector
from scoring.condition import Condition
from scoring.detectors.base import REGISTRY
from scoring.points import exact, to_hundredths
from scoring.rubric import Deduction, DetectorRef, Item, RestState, Row, Rubric, RubricError, Source, Subject, Veto


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Detector(_M):
    name: str = Field(description="a registered detector name (docs/rubrics.md lists them)")
    params: dict[str, Any] = Field(default_factory=dict, description="the detector's parameters")
    source: Source = Field(description="where the parameters' numbers come from")


class _Deduction(_M):
    code: str
    reason_zh: str
    points: float = Field(gt=0, le=100)
    max_count: int | None = Field(None, ge=1)
    source: Source
    detector: _Detector | None = None
    manual: bool = False
    same_fault_as: list[str] = Field(default_factory=list, description="deductions of the item that charge the "
                                     "same fault first; see docs/rubrics.md, one fault, one charge")


class _Row(_M):
    code: str
    title_zh: str
    points: float = Field(gt=0, le=100)
    source: Source
    deductions: list[_Deduction] = Field(default_factory=list)


class _Veto(_M):
    code: str
    reason_zh: str
    source: Source
    detector: _Detector | None = None
    manual: bool = False


class _Rest(_M):
    signal: str = Field(description="a canonical signal, e.g. bench.main_switch")
    value: bool | int | float | str | list[bool | int | float | str]
    op: Literal["eq", "ne", "gt", "ge", "lt", "le", "in"] = "eq"
    field: str | None = None
    label_zh: str = Field(min_length=1, description="what the rest state means on the hall floor")
    source: Source


class _Limit(_M):
    seconds: int = Field(gt=0, le=7200)
    source: Source


class _Item(_M):
    code: str = Field(pattern=r"^K[1-4][0-9]$")
    subject: str = Field(pattern=r"^K[1-4]$")
    title_zh: str
    time_limit: _Limit
    candidate_may_choose: bool = False
    report: Literal["cpr", "weld"] | None = None
    rows: list[_Row] = Field(min_length=1)
    vetoes: list[_Veto] = Field(default_factory=list)
    rest: list[_Rest] = Field(default_factory=list, description="the rig's state before the item starts")


class _Subject(_M):
    code: str = Field(pattern=r"^K[1-4]$")
    title_zh: str
    weight: float = Field(gt=0, le=1)
    source: Source


class _Pass(_M):
    total: float = Field(gt=0, le=100)
    source: Source


class _File(_M):
    rubric: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    edition: str
    operation: str
    title_zh: str
    pass_rule: _Pass
    subjects: list[_Subject] = Field(min_length=1)
    items: list[_Item] = Field(min_length=1)


def validate(raw: Any, digest: str, path: Path) -> Rubric:
    """The rubric in `raw` (a parsed file), checked against every rule; `digest` is its content hash."""
    try:
        parsed = _File.model_validate(raw)
    except ValidationError as err:
        lines = [f"  {_where(raw, tuple(e['loc']))}: {e['msg']}" for e in err.errors()]
        raise RubricError(f"{path} is not a valid rubric:\n" + "\n".join(lines)) from err
    return _build(parsed, digest, path)


_LIST_NAMES = {"items": "item", "rows": "row", "deductions": "deduction", "vetoes": "veto", "subjects": "subject"}


def _where(raw: Any, loc: tuple[int | str, ...]) -> str:
    """`item K21 row K21-2 deduction K21-2b points` instead of `items.3.rows.1.deductions.1.points`."""
    parts: list[str] = []
    node, prev = raw, ""
    for key in loc:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            node = None
        if isinstance(key, int):
            code = node.get("code") if isinstance(node, dict) else None
            kind = _LIST_NAMES.get(prev, prev)
            parts.append(f"{kind} {code}" if code else f"{kind}[{key}]")
        elif key not in _LIST_NAMES:
            parts.append(key)
        prev = str(key)
    return " ".join(parts) or "top level"



def _detector(raw: _Detector, where: str) -> DetectorRef:
    spec = REGISTRY.get(raw.name)
    if spec is None:
        raise RubricError(f"{where}: unknown detector {raw.name!r}; use one of: {', '.join(sorted(REGISTRY))}")
    try:
        params = TypeAdapter(spec.params_type).validate_python(raw.params)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'params'}: {e['msg']}" for e in err.errors())
        raise RubricError(f"{where}: detector {raw.name} parameters are wrong: {problems}; "
                          f"see docs/rubrics.md for {raw.name}") from err
    return DetectorRef(raw.name, params, raw.source)


def _build(f: _File, digest: str, path: Path) -> Rubric:
    subjects = tuple(Subject(s.code, s.title_zh, s.weight, s.source) for s in f.subjects)
    listed = [s.code for s in subjects]
    for i, code in enumerate(listed):
        if code in listed[:i]:
            raise RubricError(f"{path}: subject {code} is listed twice; list each subject once with its weight")
    _points(path, "pass_rule total", f.pass_rule.total)
    if sum(exact(s.weight) for s in subjects) != 1:
        raise RubricError(f"{path}: subject weights add up to {sum(s.weight for s in subjects):g}, not 1; "
                          "fix the weights (K1 0.2, K2 0.4, K3 0.2, K4 0.2 in the national standard)")
    codes = {s.code for s in subjects}
    items = []
    seen_items: set[str] = set()
    for it in f.items:
        where = f"{path}: item {it.code}"
        if it.code in seen_items:
            raise RubricError(f"{where}: item code used twice; each item appears once")
        seen_items.add(it.code)
        if it.subject not in codes:
            raise RubricError(f"{where}: subject {it.subject} is not among the subjects {sorted(codes)}")
        if not it.code.startswith(it.subject):
            raise RubricError(f"{where}: an item's code starts with its subject's ({it.code} is a {it.code[:2]} item), "
                              f"but it names subject {it.subject}: fix the subject or the code")
        for r in it.rows:
            _points(path, f"item {it.code} row {r.code} points", r.points)
            for d in r.deductions:
                _points(path, f"item {it.code} row {r.code} deduction {d.code} points", d.points)
        _check_codes(where, it)
        total = sum(exact(r.points) for r in it.rows)
        if total != 100:
            listing = ", ".join(f"{r.code} {r.points:g}" for r in it.rows)
            raise RubricError(f"{where}: rows add up to {float(total):g} points, not 100 ({listing}); every item is "
                              "scored on a 100-point sheet: fix the row points")
        rows = []
        for r in it.rows:
            deds = []
            for d in r.deductions:
                w = f"{where} row {r.code} deduction {d.code}"
                if (d.detector is None) != d.manual:
                    raise RubricError(f"{w}: give either a detector or `manual: true` (an examiner mark), not "
                                      f"{'both' if d.manual else 'neither'}")
                det = _detector(d.detector, w) if d.detector else None
                deds.append(Deduction(d.code, d.reason_zh, d.points, d.max_count, d.source, det,
                                      tuple(d.same_fault_as)))
            rows.append(Row(r.code, r.title_zh, r.points, r.source, tuple(deds)))
        _check_same_fault(where, rows)
        vetoes = []
        for v in it.vetoes:
            w = f"{where} veto {v.code}"
            if (v.detector is None) != v.manual:
                both = "both" if v.manual else "neither"
                raise RubricError(f"{w}: give either a detector or `manual: true`, not {both}")
            vetoes.append(Veto(v.code, v.reason_zh, v.source, _detector(v.detector, w) if v.detector else None))
        rest = tuple(_rest(r, f"{where} rest {r.signal}") for r in it.rest)
        items.append(Item(it.code, it.subject, it.title_zh, it.time_limit.seconds, it.time_limit.source,
                          it.candidate_may_choose, tuple(rows), tuple(vetoes), it.report, rest))
    for s in subjects:
        if not any(i.subject == s.code for i in items):
            raise RubricError(f"{path}: subject {s.code} has no items; add at least one item for it")
    return Rubric(f.rubric, f.edition, f.operation, f.title_zh, f.pass_rule.total, f.pass_rule.source,
                  subjects, tuple(items), digest)


def _check_codes(where: str, it: _Item) -> None:
    """Every row, deduction and veto has its own code, under its item (docs/rubrics.md): rows
    `K21-1`, `K21-2`; a row's deductions `K21-3a`, `K21-3b`; vetoes `K21-V1`. An examiner's mark
    and override name these codes, so a code under the wrong item or row, or used twice, would
    charge the wrong row. A deduction takes at most its row's points (the row never goes below 0)."""
    held: dict[str, str] = {}

    def claim(code: str, what: str, w: str) -> None:
        if code in held:
            raise RubricError(f"{w}: code {code} is used twice in the item ({held[code]} and {what}); every row, "
                              "deduction and veto needs its own code")
        held[code] = what

    for i, r in enumerate(it.rows, 1):
        w = f"{where} row {r.code}"
        if not re.fullmatch(re.escape(it.code) + r"-[0-9]+", r.code):
            raise RubricError(f"{w}: the code is not under item {it.code}: a row's code is its item's code, a dash "
                              f"and a number ({it.code}-1, {it.code}-2, ...)")
        claim(r.code, f"row {i}", w)
        for j, d in enumerate(r.deductions, 1):
            wd = f"{w} deduction {d.code}"
            if not re.fullmatch(re.escape(r.code) + "[a-z]+", d.code):
                raise RubricError(f"{wd}: the code is not under row {r.code}: a deduction's code is its row's code "
                                  f"and a letter ({r.code}a, {r.code}b, ...)")
            claim(d.code, f"deduction {j} of row {r.code}", wd)
            if exact(d.points) > exact(r.points):
                raise RubricError(f"{wd}: it takes {d.points:g} points, more than the row's {r.points:g}; a row "
                                  f"never goes below 0: take at most {r.points:g}, or move it to a row worth more")
    for i, v in enumerate(it.vetoes, 1):
        w = f"{where} veto {v.code}"
        if not re.fullmatch(re.escape(it.code) + r"-V[0-9]+", v.code):
            raise RubricError(f"{w}: the code is not under item {it.code}: a veto's code is its item's code, -V and "
                              f"a number ({it.code}-V1, {it.code}-V2, ...)")
        claim(v.code, f"veto {i}", w)


def _points(path: Path, what: str, points: float) -> None:
    try:
        to_hundredths(points, what)
    except ValueError as err:
        raise RubricError(f"{path}: {err}: write it with at most two decimals") from None


def _check_same_fault(where: str, rows: list[Row]) -> None:
    """`same_fault_as` names other deductions of the item, and never leads back to itself (the
    engine charges the named ones first)."""
    deductions = {d.code: d for r in rows for d in r.deductions}
    for d in deductions.values():
        for other in d.same_fault_as:
            if other == d.code or other not in deductions:
                others = ", ".join(c for c in deductions if c != d.code)
                raise RubricError(f"{where} deduction {d.code}: same_fault_as names {other}, which is not another "
                                  f"deduction of the item; use one of: {others}")

    def visit(code: str, trail: tuple[str, ...]) -> None:
        if code in trail:
            raise RubricError(f"{where}: same_fault_as goes round in a circle ({' -> '.join((*trail, code))}); "
                              "one of them must be charged first: remove one link")
        for other in deductions[code].same_fault_as:
            visit(other, (*trail, code))

    for code in deductions:
        visit(code, ())


def _rest(raw: _Rest, where: str) -> RestState:
    try:
        cond = TypeAdapter(Condition).validate_python(
            {"signal": raw.signal, "value": tuple(raw.value) if isinstance(raw.value, list) else raw.value,
             "op": raw.op, "field": raw.field})
    except ValidationError as err:
        raise RubricError(f"{where}: not a condition: {err.errors()[0]['msg']}") from err
    return RestState(cond, raw.label_zh, raw.source)

