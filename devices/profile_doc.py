"""Render a Modbus profile's register map as the Markdown table the device docs carry.

Why generated: the register map lives in one place, the profile YAML the controller and the
simulator both read. A hand-written table in `docs/devices/*.md` would silently drift from it the
first time someone moves an address; so the table in each page is this module's output, pasted
between `<!-- register-table:begin -->` and `<!-- register-table:end -->`, and a unit test
(tests/unit/test_device_docs.py) fails when the page and the profile disagree. After changing a
profile, refresh its page with

    python -m devices.profile_doc lv-bench --write docs/devices/lv-bench.md

`render_register_table` is pure (profile in, text out); only `main` touches files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devices.errors import DeviceConfigError
from devices.modbus.block_plan import FUNCTION_CODE
from devices.profile import ModbusProfile, RegisterPoint, load_profile

BEGIN_MARKER = "<!-- register-table:begin -->"
END_MARKER = "<!-- register-table:end -->"

COLUMNS = ("signal", "table", "address", "mbpoll ref", "type", "scale / unit", "deadband", "meaning", "description")
"""`address` is the 0-based protocol (PDU) address; `mbpoll ref` the 1-based reference mbpoll prints."""


def _cell(text: str) -> str:
    """Make `text` safe inside one Markdown table cell (no line breaks, no bare pipes)."""
    return " ".join(text.split()).replace("|", "\\|")


def _span(first: int, words: int) -> str:
    return str(first) if words == 1 else f"{first}-{first + words - 1}"


def _number(value: float) -> str:
    return f"{value:g}"


def _type(point: RegisterPoint) -> str:
    if point.bit is not None:
        return f"bool, bit {point.bit}"
    if point.words == 2:
        return f"{point.type}, {'high' if point.word_order == 'big' else 'low'} word first"
    return point.type


def _scale_unit(point: RegisterPoint) -> str:
    parts: list[str] = []
    if point.scale != 1.0:
        parts.append(f"×{_number(point.scale)}")
    if point.offset != 0.0:
        parts.append(f"{point.offset:+g}")
    if point.unit:
        parts.append(point.unit)
    return " ".join(parts)


def _deadband(point: RegisterPoint) -> str:
    if point.deadband == 0.0:
        return ""
    return f"{_number(point.deadband)} {point.unit}".strip()


def _meaning(point: RegisterPoint) -> str:
    if not point.enum:
        return ""
    return ", ".join(f"{code} {name}" for code, name in sorted(point.enum.items()))


def _row(point: RegisterPoint) -> tuple[str, ...]:
    return (
        f"`{point.signal}`",
        f"{point.table} (FC{FUNCTION_CODE[point.table]})",
        _span(point.address, point.words),
        _span(point.address + 1, point.words),
        _type(point),
        _scale_unit(point),
        _deadband(point),
        _meaning(point),
        point.description,
    )


def render_register_table(profile: ModbusProfile) -> str:
    """The profile's points as a Markdown table, in file order, ending with a newline."""
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for point in profile.points:
        lines.append("| " + " | ".join(_cell(c) for c in _row(point)) + " |")
    return "\n".join(lines) + "\n"


def replace_register_table(page: str, table: str) -> str:
    """`page` with the text between the register-table markers replaced by `table`."""
    head, sep, rest = page.partition(BEGIN_MARKER)
    _, sep2, tail = rest.partition(END_MARKER)
    if not sep or not sep2:
        raise ValueError(f"page has no {BEGIN_MARKER} ... {END_MARKER} section to fill")
    return f"{head}{BEGIN_MARKER}\n{table}{END_MARKER}{tail}"


def extract_register_table(page: str) -> str:
    """The text between the register-table markers of `page`, without the newline after the begin marker."""
    _, sep, rest = page.partition(BEGIN_MARKER)
    middle, sep2, _ = rest.partition(END_MARKER)
    if not sep or not sep2:
        raise ValueError(f"page has no {BEGIN_MARKER} ... {END_MARKER} section")
    return middle.removeprefix("\n")


def main(argv: list[str] | None = None) -> int:
    """`python -m devices.profile_doc PROFILE [--write PAGE]`: print the table, or refresh a page."""
    parser = argparse.ArgumentParser(
        prog="python -m devices.profile_doc",
        description="Render a Modbus device profile's register table as Markdown.",
    )
    parser.add_argument("profile", help="profile name from devices/profiles, e.g. lv-bench")
    parser.add_argument(
        "--write", type=Path, metavar="PAGE",
        help="replace the table between the register-table markers of this Markdown page instead of printing",
    )
    args = parser.parse_args(argv)
    try:
        profile = load_profile(args.profile)
    except DeviceConfigError as err:
        print(err, file=sys.stderr)
        return 2
    if not isinstance(profile, ModbusProfile):
        print(f"profile {args.profile} is a {profile.protocol} frame map, not a Modbus register map; "
              "its document is written by hand (docs/devices/manikin-protocol.md)", file=sys.stderr)
        return 2
    table = render_register_table(profile)
    if args.write is None:
        sys.stdout.write(table)
        return 0
    page: Path = args.write
    page.write_text(replace_register_table(page.read_text(encoding="utf-8"), table), encoding="utf-8")
    print(f"{page}: register table of {args.profile} written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
