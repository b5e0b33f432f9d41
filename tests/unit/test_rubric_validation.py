"""What a rubric file must hold beyond each key's shape (docs/rubrics.md): no key written twice,
codes unique in the item and under their item, no deduction larger than its row. Each refusal
names the file, the item and the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoring.rubric_loader import RUBRIC_DIR, RubricError, load_rubric_file
from scoring.yaml_strict import DuplicateKeyError, load_strict

LV = RUBRIC_DIR / "lv-electrician-2015.yaml"
WELD = RUBRIC_DIR / "welding-2015.yaml"


def edited(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    text = source.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{source.name} changed: {old!r} is no longer there once"
    path = tmp_path / source.name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(RubricError) as info:
        load_rubric_file(path)
    return str(info.value)


# --- duplicate keys ------------------------------------------------------------------------------

def test_a_key_written_twice_names_file_key_and_lines(tmp_path: Path) -> None:
    old = "      - code: K21-4\n        title_zh: 安全文明操作与用时\n        points: 15\n"
    path = edited(tmp_path, LV, old, old + "        points: 12\n")
    lines = path.read_text(encoding="utf-8").splitlines()
    first = lines.index("      - code: K21-4") + 1
    assert error_of(path) == (f"{path}: key 'points' appears twice in the mapping at line {first} "
                              f"(lines {first + 2} and {first + 3}); keep one of them")


def test_strict_yaml_keeps_merge_keys_and_catches_keys_equal_as_values() -> None:
    assert load_strict("base: &b {a: 1, b: 2}\nmine:\n  <<: *b\n  b: 3\n") == {
        "base": {"a": 1, "b": 2}, "mine": {"a": 1, "b": 3}}, "a merged key may be overridden"
    with pytest.raises(DuplicateKeyError, match=r"key True appears twice in the mapping at line 1 \(lines 1 and 2\)"):
        load_strict("yes: 1\ntrue: 2\n")
    with pytest.raises(DuplicateKeyError, match="key 'a' appears twice"):
        load_strict("outer:\n  - {a: 1, a: 1}\n")


def test_the_shipped_files_have_no_duplicate_keys() -> None:
    for path in (LV, WELD):
        load_strict(path.read_text(encoding="utf-8"))
