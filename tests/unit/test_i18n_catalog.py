"""Every Chinese string the UI marks for translation has English in the catalog.

The strings are extracted the way scripts/update-translations.sh extracts them (babel's own
extractors over babel.cfg: the Jinja2 templates with the i18n extension, and the Python gettext
calls), not read from the catalog, so a string someone adds to a template and forgets to translate
fails here by name, with the file and line where it is. Run scripts/update-translations.sh, fill
the empty `msgstr`, and this passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "proctor_ui" / "locale" / "en" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def extracted() -> Iterator[tuple[str, str]]:
    """(msgid, "file:line") for every marked string (plural forms: each form)."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)  # type: ignore[no-untyped-call]

    def inside_the_ui(directory: str) -> bool:  # babel.cfg names only proctor_ui/: do not walk the rest
        parts = Path(directory).relative_to(ROOT).parts
        return parts[0] == "proctor_ui" and not any(p.startswith((".", "_")) for p in parts)

    for filename, lineno, message, _comments, _context in extract_from_dir(ROOT, method_map, options_map,
                                                                           directory_filter=inside_the_ui):
        for msgid in message if isinstance(message, tuple) else (message,):
            if msgid:
                yield msgid, f"{filename}:{lineno}"


def english() -> Catalog:
    with CATALOG.open("rb") as f:
        return read_po(f)


def test_every_marked_string_has_english() -> None:
    catalog = english()
    known = {m.id if isinstance(m.id, str) else m.id[0]: m for m in catalog if m.id}
    missing = []
    for msgid, where in extracted():
        m = known.get(msgid)
        if m is None or not m.string or "fuzzy" in m.flags:
            missing.append(f"{where}: {msgid!r}")
    assert not missing, (f"{len(missing)} UI string(s) without English in {CATALOG.relative_to(ROOT)}; run "
                         "scripts/update-translations.sh and translate them:\n" + "\n".join(sorted(set(missing))))


def test_the_extractor_sees_the_templates() -> None:
    """Guards the test above: babel.cfg must reach the templates and the Python code."""
    places = {where.split(":")[0] for _, where in extracted()}
    assert any(p.startswith("proctor_ui/templates/") and p.endswith("base.html") for p in places), places
    assert any(p.endswith(".py") for p in places), places


def test_translations_keep_the_placeholders() -> None:
    """`_("每组 %(n)s 次", n=30)` must still say 30 in English: the same named placeholders."""
    wrong = []
    for m in english():
        if not m.id or not m.string:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        wanted = set(PLACEHOLDER.findall(str(ids[0])))
        wrong += [f"{ids[0]!r} -> {s!r}" for s in (m.string if isinstance(m.string, tuple) else (m.string,))
                  if set(PLACEHOLDER.findall(str(s))) != wanted]
    assert not wrong, "translations whose %(name)s placeholders differ from the Chinese:\n" + "\n".join(wrong)
