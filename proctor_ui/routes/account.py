"""My password (修改密码): any signed-in user changes their own, giving the current one first.

A changed password ends every session of that user, this one included (a password that was known
to someone else must not leave them signed in elsewhere); the page then asks to sign in again.
An administrator sets another user's password on the user page (proctor_ui.routes.admin_users),
and `examstation user passwd NAME` on the box is the way back in when nobody can sign in.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from proctor_ui.deps import Ui, Viewer
from proctor_ui.forms import new_password_errors
from proctor_ui.guard import cookie_names
from proctor_ui.sessions import SessionStore
from proctor_ui.templating import render
from station.users import MIN_PASSWORD_CHARS, LoginRefused

router = APIRouter()


def _page(request: Request, status_code: int = 200, **extra: object) -> Response:
    ctx: dict[str, object] = {"errors": {}, "changed": False, "min_password": MIN_PASSWORD_CHARS}
    ctx.update(extra)
    return render(request, "account_password.html", ctx, status_code=status_code)


@router.get("/account/password", include_in_schema=False)
async def password_page(request: Request, _user: Viewer) -> Response:
    return _page(request)


@router.post("/account/password", include_in_schema=False)
async def change_password(request: Request, ui: Ui, user: Viewer,
                          current: Annotated[str, Form(max_length=256)] = "",
                          password: Annotated[str, Form(max_length=256)] = "",
                          password2: Annotated[str, Form(max_length=256)] = "") -> Response:
    """Each wrong field comes back with its message; no password is ever sent back."""
    errors = new_password_errors(password, password2)
    if not errors and password == current:
        errors["password"] = "新密码与当前密码相同"
    if not errors:
        try:
            await asyncio.to_thread(ui.users.change_own_password, user.name, current, password)
        except LoginRefused:
            errors["current"] = "当前密码错误"
    if errors:
        return _page(request, errors=errors, status_code=422)
    store: SessionStore = request.app.state.sessions
    store.end_user(user.name)
    response = _page(request, changed=True)
    session_cookie, _ = cookie_names(request.app.state.ui.secure_transport)
    response.delete_cookie(session_cookie, path="/", secure=True, httponly=True, samesite="strict")
    return response
