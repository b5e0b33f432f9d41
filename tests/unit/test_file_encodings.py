"""The site config and the rubric files load as a Chinese site saves them (GBK from Notepad or
Excel, UTF-8 with a BOM), and an undecodable file is named with its byte and line, not a traceback."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from scoring.rubric_loader import RUBRIC_DIR, RubricError, load_rubric_file
from station.config import ConfigError, load_site_config

EXAMPLE = Path("examples/site.yaml")
LV = RUBRIC_DIR / "lv-electrician-2015.yaml"


def copy_as(source: Path, target: Path, encoding: str) -> Path:
    target.write_bytes(source.read_text(encoding="utf-8").encode(encoding))
    return target


def with_bom(source: Path, target: Path) -> Path:
    target.write_bytes(codecs.BOM_UTF8 + source.read_bytes())
    return target


def test_a_gbk_site_config_loads_the_same_config(tmp_path: Path) -> None:
    gbk = copy_as(EXAMPLE, tmp_path / "site.yaml", "gbk")
    assert gbk.read_bytes() != EXAMPLE.read_bytes(), "the example has Chinese text: GBK bytes differ"
    assert load_site_config(gbk) == load_site_config(EXAMPLE)


def test_a_site_config_with_a_bom_loads_the_same_config(tmp_path: Path) -> None:
    assert load_site_config(with_bom(EXAMPLE, tmp_path / "site.yaml")) == load_site_config(EXAMPLE)


def test_a_named_encoding_is_used(tmp_path: Path) -> None:
    gbk = copy_as(EXAMPLE, tmp_path / "site.yaml", "gbk")
    assert load_site_config(gbk, encoding="gbk") == load_site_config(EXAMPLE)
    with pytest.raises(ConfigError, match=r"is not utf-8 text \(byte 0x[0-9a-f]{2} at line \d+\)"):
        load_site_config(gbk, encoding="utf-8")


def undecodable(tmp_path: Path, source: Path, line: int) -> Path:
    """A copy with a byte that is neither UTF-8 nor GBK (0xff) at the start of `line`."""
    lines = source.read_bytes().split(b"\n")
    lines[line - 1] = b"\xff" + lines[line - 1]
    path = tmp_path / source.name
    path.write_bytes(b"\n".join(lines))
    return path


def test_an_undecodable_site_config_names_byte_and_line(tmp_path: Path) -> None:
    path = undecodable(tmp_path, EXAMPLE, 7)
    with pytest.raises(ConfigError) as info:
        load_site_config(path)
    message = str(info.value)
    assert f"{path} is not UTF-8 or GBK text (byte 0xff at line 7)" in message
    assert "Traceback" not in message and "UnicodeDecodeError" not in message


def test_a_gbk_rubric_has_the_same_content_and_hash(tmp_path: Path) -> None:
    shipped = load_rubric_file(LV)
    gbk = load_rubric_file(copy_as(LV, tmp_path / LV.name, "gb18030"))
    assert gbk == shipped and gbk.hash == shipped.hash


def test_a_rubric_with_a_bom_has_the_same_hash(tmp_path: Path) -> None:
    assert load_rubric_file(with_bom(LV, tmp_path / LV.name)).hash == load_rubric_file(LV).hash


def test_a_rubric_with_a_named_encoding(tmp_path: Path) -> None:
    gbk = copy_as(LV, tmp_path / LV.name, "gbk")
    assert load_rubric_file(gbk, encoding="gbk").hash == load_rubric_file(LV).hash


def test_an_undecodable_rubric_names_byte_and_line(tmp_path: Path) -> None:
    path = undecodable(tmp_path, LV, 12)
    with pytest.raises(RubricError) as info:
        load_rubric_file(path)
    assert f"{path} is not UTF-8 or GBK text (byte 0xff at line 12)" in str(info.value)
