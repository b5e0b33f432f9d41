"""Reading a text file a site administrator wrote: UTF-8 (with or without BOM), or GBK/GB18030.

Chinese Excel, WPS and Windows Notepad save CSV and text as GBK unless told otherwise, so a
candidate list or a config edited on the exam centre's PC is often GBK. Every file a person hands
to us (site config, rubric, candidate list) is read here, so all of them accept the same
encodings and fail the same clear way: the file, the byte and its line, never a traceback.

Detection: a UTF-8 BOM or valid UTF-8 is UTF-8 (GBK text with Chinese characters is almost never
valid UTF-8); otherwise GB18030, the superset of GBK that Python decodes strictly. A name given
with `encoding=` is used as is. A spreadsheet (.xlsx is a ZIP, .xls an OLE file) is named as one,
with the fix: save it as CSV.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

SPREADSHEET_MAGIC = {b"PK\x03\x04": "an Excel workbook (.xlsx)",
                     b"\xd0\xcf\x11\xe0": "an Excel 97-2003 workbook (.xls)"}
"""First bytes of the files people pass where text belongs."""


class TextFileError(ValueError):
    """The file cannot be read as text; the message names the file, what was found and the fix."""


@dataclass(frozen=True, slots=True)
class TextFile:
    text: str
    encoding: str
    """What it was read as: "utf-8", "utf-8-sig" (with BOM), "gb18030", or the name given."""


def read_text_file(path: Path, encoding: str | None = None, what: str = "text", table: bool = False) -> TextFile:
    """The file's text. `what` names the file for people ("the candidate list", "the site config");
    `table`: a spreadsheet's rows are what it wants (save it as CSV), else a spreadsheet is the wrong
    file altogether; only a table is read with a command that has `--encoding`.

    Raises TextFileError for a file that is not text in a supported encoding, OSError (with the
    file name) when it cannot be read at all.
    """
    data = path.read_bytes()
    for magic, kind in SPREADSHEET_MAGIC.items():
        if data.startswith(magic):
            if table:
                raise TextFileError(f"{path} is {kind}, not {what}: open it in Excel or WPS and save it as CSV "
                                    "(另存为 CSV UTF-8 或 CSV), then use that file")
            raise TextFileError(f"{path} is {kind}, not {what}: give the YAML text file itself")
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise TextFileError(f"--encoding {encoding!r} is not an encoding Python knows; use utf-8 or gbk") from None
        return TextFile(_decode(path, data, encoding, f"{encoding} text", table), encoding)
    if data.startswith(codecs.BOM_UTF8):
        return TextFile(_decode(path, data, "utf-8-sig", "UTF-8 text", table), "utf-8-sig")
    try:
        return TextFile(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError as utf8_error:
        try:
            return TextFile(data.decode("gb18030"), "gb18030")
        except UnicodeDecodeError:
            raise TextFileError(f"{path} is not UTF-8 or GBK text ({_where(data, utf8_error)}); "
                                f"{_todo(table)}") from None


def _decode(path: Path, data: bytes, encoding: str, kind: str, table: bool) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise TextFileError(f"{path} is not {kind} ({_where(data, err)}); {_todo(table)}") from None


def _todo(table: bool) -> str:
    return "save it as UTF-8, or name its encoding with --encoding" if table else "save it as UTF-8 (or GBK)"


def _where(data: bytes, err: UnicodeDecodeError) -> str:
    """"byte 0xb9 at line 3": where a person can look for it in an editor."""
    line = data.count(b"\n", 0, err.start) + 1
    return f"byte 0x{data[err.start]:02x} at line {line}"
