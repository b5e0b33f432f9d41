"""What the site config refuses beyond a field's own shape: a key written twice, two devices on one
Modbus endpoint. Each refusal names the file, where, both parties and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.config import ConfigError, load_site_config

EXAMPLE = Path("examples/site.yaml")


def edited(tmp_path: Path, old: str, new: str) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"examples/site.yaml changed: {old!r} is no longer there once"
    path = tmp_path / "site.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def line_of(path: Path, fragment: str, nth: int = 1) -> int:
    lines = [i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if fragment in line]
    return lines[nth - 1]


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_site_config(path)
    return str(info.value)


# --- duplicate keys ------------------------------------------------------------------------------

def test_a_key_written_twice_in_a_block_mapping(tmp_path: Path) -> None:
    path = edited(tmp_path, "  min_free_gb: 20\n", "  min_free_gb: 20\n  data_dir: /srv/exam\n")
    mapping, first, second = line_of(path, "storage:"), line_of(path, "data_dir:"), line_of(path, "data_dir:", 2)
    assert second == first + 2
    assert error_of(path) == (f"{path}: key 'data_dir' appears twice in the mapping at line {mapping + 1} "
                              f"(lines {first} and {second}); keep one of them")


def test_a_key_written_twice_in_a_flow_mapping(tmp_path: Path) -> None:
    path = edited(tmp_path, "host: a01-bench.hall.lan, port: 502,", "host: a01-bench.hall.lan, port: 502, port: 503,")
    line = line_of(path, "a01-bench")
    assert f"{path}: key 'port' appears twice in the mapping at line {line} (both on line {line})" in error_of(path)


def test_the_example_has_no_duplicate_keys() -> None:
    load_site_config(EXAMPLE)
