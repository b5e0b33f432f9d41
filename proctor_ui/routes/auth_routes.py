"""Signing in and out, and choosing the language.

The login form carries a token from its own cookie (login CSRF); a wrong name and a wrong password
get the same answer in the same time (station.users), so nobody learns who has an account. Failed
logins are counted per client address and per name typed (proctor_ui.login_limit): past the limit
the form answers 429 with when to try again, the same for names that exist and names that do not.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from proctor_ui import i18n
from proctor_ui.deps import CurrentSession, Ui
from proctor_ui.guard import cookie_names, new_login_token
from proctor_ui.login_limit import LoginLimit
from proctor_ui.sessions import SessionStore
from proctor_ui.templating import render
from station.users import LoginRefused

router = APIRouter()

REFUSED = "用户名或密码错误"


def login_limit(request: Request) -> LoginLimit:
    """The app's login limit, made on first use (one per app, like its session store)."""
    found: LoginLimit | None = getattr(request.app.state, "login_limit", None)
    if found is None:
        found = request.app.state.login_limit = LoginLimit()
    return found


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _safe_next(target: str) -> str:
    """Only a path on this site: `next=//evil.example` must not send the user away."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login", include_in_schema=False)
async def login_page(request: Request, next: str = "/") -> Response:
    token = new_login_token()
    request.state.login_csrf = token
    response = render(request, "login.html", {"next": _safe_next(next), "error": None})
    _, login_cookie = cookie_names(request.app.state.ui.secure_transport)
    response.set_cookie(login_cookie, token, secure=True, httponly=True, samesite="strict", path="/")
    return response


@router.post("/login", include_in_schema=False)
async def login(request: Request, ctx: Ui, name: Annotated[str, Form(max_length=64)],
                password: Annotated[str, Form(max_length=256)], next: Annotated[str, Form()] = "/") -> Response:
    limit, client = login_limit(request), _client(request)
    locked = limit.check(client, name)
    if locked is not None:
        return render(request, "login.html", {"next": _safe_next(next), "error": None,
                                              "retry_minutes": locked.minutes},
                      status_code=429, headers={"Retry-After": str(locked.retry_after_s)})
    try:
        user = await asyncio.to_thread(ctx.users.authenticate, name, password)
    except LoginRefused:
        limit.failed(client, name)
        return render(request, "login.html", {"next": _safe_next(next), "error": REFUSED}, status_code=401)
    limit.succeeded(client, name)
    store: SessionStore = request.app.state.sessions
    s = store.create(user)
    response = RedirectResponse(_safe_next(next), status_code=303)
    session_cookie, login_cookie = cookie_names(ctx.secure_transport)
    response.set_cookie(session_cookie, s.token, secure=True, httponly=True, samesite="strict", path="/")
    response.delete_cookie(login_cookie, path="/", secure=True, httponly=True, samesite="strict")
    return response


@router.post("/logout", include_in_schema=False)
async def logout(request: Request, s: CurrentSession) -> Response:
    store: SessionStore = request.app.state.sessions
    store.end(s.token)
    response = RedirectResponse("/login", status_code=303)
    session_cookie, _ = cookie_names(request.app.state.ui.secure_transport)
    response.delete_cookie(session_cookie, path="/", secure=True, httponly=True, samesite="strict")
    return response


@router.get("/lang/{lang}", include_in_schema=False)
async def choose_language(lang: str, request: Request) -> Response:
    back = _safe_next(request.headers.get("referer", "/").split(request.url.netloc, 1)[-1] or "/")
    response = RedirectResponse(back, status_code=303)
    response.set_cookie(i18n.COOKIE, i18n.lang_of(lang), max_age=365 * 86400, samesite="strict", path="/",
                        secure=True)
    return response
