"""The UI's languages: Chinese (the default, written in the templates), English from a Babel catalog.

Why Chinese in the templates: examiners and proctors read Chinese, and a string someone forgets
to translate must still show in the language of the hall. `locale/en/LC_MESSAGES/messages.po` maps
each Chinese string to English; `scripts/update-translations.sh` extracts new strings (pybabel)
and keeps the catalog in step; a test fails when a template string has no English entry.

The language of a request is its `lang` cookie (`/lang/en`, `/lang/zh` set it), else Chinese.
Rendering sets it in a context variable the Jinja2 i18n extension reads, so `{% trans %}` and
`_()` in templates, and `gettext()` in Python, give the request's language.
"""

from __future__ import annotations

import contextvars
from functools import cache
from pathlib import Path
from typing import Literal

from babel.messages.pofile import read_po

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
DEFAULT_LANG: Lang = "zh"
COOKIE = "lang"
LOCALE_DIR = Path(__file__).parent / "locale"

current_lang: contextvars.ContextVar[Lang] = contextvars.ContextVar("current_lang", default=DEFAULT_LANG)


@cache
def catalog(lang: Lang) -> dict[str, str]:
    """msgid -> translation for `lang` (empty for Chinese: the msgids are the Chinese text)."""
    if lang == DEFAULT_LANG:
        return {}
    path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return {}
    with path.open("rb") as f:
        cat = read_po(f)
    return {str(m.id): str(m.string) for m in cat if m.id and isinstance(m.id, str) and m.string}


def gettext(message: str) -> str:
    return catalog(current_lang.get()).get(message, message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return gettext(singular if n == 1 else plural)


def lang_of(cookie: str | None) -> Lang:
    return "en" if cookie == "en" else DEFAULT_LANG
