"""The requirements files: the national one loads, a province's merges by row id, and a wrong file
is refused with its file, line and fix (strict YAML, unknown keys, unknown profiles)."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.site_check.requirements import (
    NATIONAL_FILE,
    RequirementsError,
    load_requirements,
    load_requirements_file,
)


def test_the_national_rows_cover_both_operations_and_name_their_sources() -> None:
    rows = load_requirements()
    assert set(rows) == {"低压电工作业", "熔化焊接与热切割作业"}
    lv = {r.id: r for r in rows["低压电工作业"]}
    assert lv["wiring-bench"].profiles == ("lv-bench",)
    assert lv["camera"].needed == 1 and lv["camera"].profiles is None
    weld = {r.id: r for r in rows["熔化焊接与热切割作业"]}
    assert weld["welding-set"].profiles == ("weld-sim", "weld-power")
    for row in (*lv.values(), *weld.values()):
        assert "STANDARD.md" in row.source, row.id


def test_an_override_replaces_by_id_adds_new_rows_and_may_waive(tmp_path: Path) -> None:
    path = tmp_path / "province.yaml"
    path.write_text(
        "operations:\n"
        "  低压电工作业:\n"
        "    - {id: cpr-manikin, title_zh: 心肺复苏模拟人, profiles: [cpr-manikin], count: 2, source: 省标准 3.2}\n"
        "    - {id: id-card-reader, title_zh: 身份证阅读器, profiles: [id-card-reader], count: 0, source: 省标准 3.5}\n"
        "    - {id: spare-bench, title_zh: 备用考核台, profiles: [lv-bench], source: 省标准 3.9}\n",
        encoding="utf-8")
    rows = load_requirements(path)
    lv = [(r.id, r.needed, r.source) for r in rows["低压电工作业"]]
    assert lv[1] == ("cpr-manikin", 2, "省标准 3.2")  # replaced in place
    assert lv[4] == ("id-card-reader", 0, "省标准 3.5")  # waived
    assert lv[-1] == ("spare-bench", 1, "省标准 3.9")  # added at the end
    assert [r.id for r in rows["熔化焊接与热切割作业"]] == [r.id for r in load_requirements()["熔化焊接与热切割作业"]]


@pytest.mark.parametrize(("text", "line", "words"), [
    ("operations:\n  低压电工作业:\n    - id: bench\n      title_zh: 台\n      profiles: [lv-bench]\n"
     "      sorce: x\n", 3, ["sorce", "remove it or fix its spelling", "source"]),
    ("operations:\n  低压电工作业:\n    - {id: bench, title_zh: 台, profiles: [lv-bench2], source: x}\n", 3,
     ["no device profile named lv-bench2", "known profiles: cpr-manikin"]),
    ("operations:\n  低压电工作业:\n    - {id: bench, title_zh: 台, source: x}\n", 3,
     ["give exactly one of profiles"]),
    ("operations:\n  低压电工作业:\n    - {id: a, title_zh: 台, cameras: 1, source: x}\n"
     "  低压电工作业:\n    - {id: b, title_zh: 台, cameras: 1, source: y}\n", 2, ["appears twice", "lines 2 and 4"]),
    ("operations:\n  电工:\n    - {id: a, title_zh: 台, cameras: 1, source: x}\n", 1,
     ["operation '电工' is not one this controller scores"]),
    ("operations:\n  低压电工作业:\n    - {id: a, title_zh: 台, cameras: 1}\n", 3, ["source", "add source:"]),
])
def test_a_wrong_file_names_its_line_and_the_fix(tmp_path: Path, text: str, line: int, words: list[str]) -> None:
    path = tmp_path / "province.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RequirementsError) as info:
        load_requirements_file(path)
    message = str(info.value)
    assert f"{path}:{line}" in message or f"line {line}" in message, message
    for word in words:
        assert word in message, message


def test_a_gbk_file_is_read_and_a_spreadsheet_refused(tmp_path: Path) -> None:
    gbk = tmp_path / "gbk.yaml"
    gbk.write_bytes(NATIONAL_FILE.read_text(encoding="utf-8").encode("gb18030"))
    assert load_requirements_file(gbk) == load_requirements_file(NATIONAL_FILE)
    xlsx = tmp_path / "rows.xlsx"
    xlsx.write_bytes(b"PK\x03\x04" + b"\0" * 64)
    with pytest.raises(RequirementsError, match="Excel workbook"):
        load_requirements_file(xlsx)
