"""Rendering pages: Jinja2 with the i18n extension, and what every page's layout needs.

`render(request, "hall.html", {...})` adds the signed-in user, the session's CSRF token (forms put
it in a hidden `csrf` field; htmx sends it as `X-CSRF-Token` from the `<body hx-headers>`), the
language and the site's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape

from proctor_ui import i18n
from proctor_ui.context import UiContext

TEMPLATES_DIR = Path(__file__).parent / "templates"

_env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(default=True),
                   extensions=["jinja2.ext.i18n"])
_env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
templates = Jinja2Templates(env=_env)


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200,
           headers: dict[str, str] | None = None) -> HTMLResponse:
    lang = i18n.lang_of(request.cookies.get(i18n.COOKIE))
    i18n.current_lang.set(lang)
    ui: UiContext = request.app.state.ui
    s = getattr(request.state, "session", None)
    page: dict[str, Any] = {
        "user": s.user if s is not None else None,
        "csrf": s.csrf if s is not None else getattr(request.state, "login_csrf", ""),
        "lang": lang,
        "site": ui.services.config.site,
        "stations": ui.services.config.stations,
    }
    page.update(context or {})
    return templates.TemplateResponse(request, name, page, status_code=status_code, headers=headers)
