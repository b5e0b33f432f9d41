"""What a rubric file must hold beyond each key's shape (docs/rubrics.md): no key written twice,
codes unique in the item and under their item, no deduction larger than its row. Each refusal
names the file, the item and the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoring.rubric_loader import RUBRIC_DIR, RubricError, load_rubric_file, rubric_for
from scoring.yaml_strict import DuplicateKeyError, load_strict

LV = RUBRIC_DIR / "lv-electrician-2015.yaml"
WELD = RUBRIC_DIR / "welding-2015.yaml"
ELECTRICIAN, WELDING = "低压电工作业", "熔化焊接与热切割作业"


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


# --- codes: unique in the item, under their item and row -----------------------------------------

# (what is changed in lv-electrician-2015.yaml, into what, the parts the error must name)
BROKEN = {
    "row code used twice": (
        "      - code: K21-2\n", "      - code: K21-1\n",
        ["item K21 row K21-1: code K21-1 is used twice in the item (row 1 and row 2)",
         "every row, deduction and veto needs its own code"]),
    "deduction code used twice": (
        "          - code: K21-3c\n", "          - code: K21-3b\n",
        ["item K21 row K21-3 deduction K21-3b: code K21-3b is used twice in the item (deduction 2 of row K21-3 "
         "and deduction 3 of row K21-3)"]),
    "veto code used twice": (
        "{code: K21-V2, reason_zh: 损坏设备或元件", "{code: K21-V1, reason_zh: 损坏设备或元件",
        ["item K21 veto K21-V1: code K21-V1 is used twice in the item (veto 1 and veto 2)"]),
    "row coded for another item": (
        "      - code: K21-2\n", "      - code: K22-2\n",
        ["item K21 row K22-2: the code is not under item K21: a row's code is its item's code, a dash and a "
         "number (K21-1, K21-2, ...)"]),
    "deduction coded for another row": (
        "          - code: K21-3c\n", "          - code: K21-2c\n",
        ["item K21 row K21-3 deduction K21-2c: the code is not under row K21-3: a deduction's code is its row's "
         "code and a letter (K21-3a, K21-3b, ...)"]),
    "deduction coded for another item": (
        "          - code: K21-3c\n", "          - code: K22-3c\n",
        ["item K21 row K21-3 deduction K22-3c: the code is not under row K21-3"]),
    "veto coded for another item": (
        "{code: K21-V2, reason_zh: 损坏设备或元件", "{code: K22-V2, reason_zh: 损坏设备或元件",
        ["item K21 veto K22-V2: the code is not under item K21: a veto's code is its item's code, -V and a "
         "number (K21-V1, K21-V2, ...)"]),
    "deduction larger than its row": (
        "{code: K11-4a, reason_zh: 读数错误, points: 5,", "{code: K11-4a, reason_zh: 读数错误, points: 15,",
        ["item K11 row K11-4 deduction K11-4a: it takes 15 points, more than the row's 10",
         "a row never goes below 0: take at most 10, or move it to a row worth more"]),
    "subject listed twice": (
        "  - {code: K2, title_zh: 安全操作技术, weight: 0.4, source: national-2015}\n",
        "  - {code: K2, title_zh: 安全操作技术, weight: 0.2, source: national-2015}\n"
        "  - {code: K2, title_zh: 安全操作技术, weight: 0.2, source: national-2015}\n",
        ["subject K2 is listed twice; list each subject once with its weight"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_rule_names_file_item_and_code(case: str, tmp_path: Path) -> None:
    old, new, expected = BROKEN[case]
    msg = error_of(edited(tmp_path, LV, old, new))
    assert msg.startswith(f"{tmp_path / LV.name}: "), msg
    for part in expected:
        assert part in msg, msg


def test_an_item_under_another_subject(tmp_path: Path) -> None:
    text = LV.read_text(encoding="utf-8")
    old = "  - code: K21\n    subject: K2\n"
    path = edited(tmp_path, LV, old, "  - code: K21\n    subject: K3\n")
    assert text.count(old) == 1
    assert error_of(path) == (f"{path}: item K21: an item's code starts with its subject's (K21 is a K2 item), "
                              "but it names subject K3: fix the subject or the code")


def test_the_shipped_files_follow_every_rule() -> None:
    for path in (LV, WELD):
        rubric = load_rubric_file(path)
        for item in rubric.items:
            codes = [*(r.code for r in item.rows), *item.markable()]
            assert len(codes) == len(set(codes)), item.code
            for row in item.rows:
                assert row.code.startswith(item.code + "-")
                for d in row.deductions:
                    assert d.code.startswith(row.code) and d.points <= row.points


# --- one operation's broken file fails that operation only ---------------------------------------

def rubric_dir(tmp_path: Path, welding_text: str | None = None) -> Path:
    """Both shipped files in a directory of their own, the welding one replaced by `welding_text`."""
    directory = tmp_path / "rubrics"
    directory.mkdir()
    (directory / LV.name).write_bytes(LV.read_bytes())
    (directory / WELD.name).write_text(welding_text or WELD.read_text(encoding="utf-8"), encoding="utf-8")
    return directory


def welding_error(directory: Path) -> str:
    with pytest.raises(RubricError) as info:
        rubric_for(WELDING, directory)
    return str(info.value)


def test_a_welding_file_that_breaks_a_rule_fails_welding_only(tmp_path: Path) -> None:
    old = "      - code: K11-1\n        title_zh: 选择劳动防护用品\n        points: 40\n"
    text = WELD.read_text(encoding="utf-8")
    assert text.count(old) == 1
    directory = rubric_dir(tmp_path, text.replace(old, old.replace("points: 40", "points: 30")))
    assert rubric_for(ELECTRICIAN, directory).hash == load_rubric_file(LV).hash
    assert welding_error(directory).startswith(
        f"{directory / WELD.name}: item K11: rows add up to 90 points, not 100")


def test_a_welding_file_that_cannot_be_parsed_fails_welding_only(tmp_path: Path) -> None:
    directory = rubric_dir(tmp_path, WELD.read_text(encoding="utf-8").replace("title_zh: 选择劳动防护用品",
                                                                             "title_zh: [选择劳动防护用品", 1))
    assert rubric_for(ELECTRICIAN, directory).id == "lv-electrician-2015"
    msg = welding_error(directory)
    assert msg.startswith(f"no valid rubric for {WELDING} in {directory}; these files could not be read:\n"
                          f"  {directory / WELD.name}: cannot read the rubric (while parsing"), msg


def test_an_undecodable_or_nameless_file_is_listed_when_its_operation_is_missing(tmp_path: Path) -> None:
    directory = rubric_dir(tmp_path)
    (directory / WELD.name).write_bytes(b"\xff\xfe" + WELD.read_bytes())
    (directory / "notes.yaml").write_text("rubric: notes\n", encoding="utf-8")
    assert rubric_for(ELECTRICIAN, directory).id == "lv-electrician-2015"
    msg = welding_error(directory)
    assert f"{directory / WELD.name} is not UTF-8 or GBK text (byte 0xff at line 1)" in msg
    assert f"{directory / 'notes.yaml'}: names no `operation:`; give the operation it scores" in msg


def test_no_file_and_two_files_for_an_operation(tmp_path: Path) -> None:
    directory = rubric_dir(tmp_path)
    (directory / WELD.name).unlink()
    assert welding_error(directory) == (f"no rubric file for {WELDING} in {directory} (it has: {LV.name} for "
                                        f"{ELECTRICIAN}); add one, see docs/rubrics.md")
    (directory / "welding-a.yaml").write_bytes(WELD.read_bytes())
    (directory / "welding-b.yaml").write_bytes(WELD.read_bytes())
    assert welding_error(directory) == (f"2 rubric files for {WELDING} in {directory} (welding-a.yaml, "
                                        "welding-b.yaml); keep exactly one")
