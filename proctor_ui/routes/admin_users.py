"""Users (用户): list, add with role and stations, assign an examiner's stations, set a new password,
disable or enable.

Through station.users.UserBook, which audits each change under the administrator's name. Disabling
a user, changing their stations or setting their password ends their sessions at once (SessionStore.end_user): a session
holds the user as they were when they signed in, so the old rights must not outlive the change.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from proctor_ui.deps import Admin, Ui
from proctor_ui.forms import new_password_errors
from proctor_ui.routes.admin_candidates import literal
from proctor_ui.sessions import SessionStore
from proctor_ui.templating import render
from station.errors import ServiceError
from station.users import MIN_PASSWORD_CHARS, ROLES

router = APIRouter()


async def _page(request: Request, ui: Ui, status_code: int = 200, **extra: object) -> Response:
    users = await asyncio.to_thread(ui.users.all)
    ctx: dict[str, object] = {"users": users, "roles": ROLES, "form": {}, "errors": {}, "message": None,
                              "min_password": MIN_PASSWORD_CHARS}
    ctx.update(extra)
    return render(request, "admin/users.html", ctx, status_code=status_code)


def _sessions(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.sessions
    return store


@router.get("/users")
async def users_page(request: Request, ui: Ui, _user: Admin) -> Response:
    return await _page(request, ui)


@router.post("/users")
async def add_user(request: Request, ui: Ui, user: Admin, name: Annotated[str, Form(max_length=200)] = "",
                   role: Annotated[str, Form(max_length=20)] = "", password: Annotated[str, Form(max_length=256)] = "",
                   password2: Annotated[str, Form(max_length=256)] = "",
                   stations: Annotated[list[str] | None, Form()] = None) -> Response:
    """A new user; each wrong field comes back with its message (the password is never sent back)."""
    form = {"name": name, "role": role, "stations": stations or []}
    errors: dict[str, str] = {}
    if not name.strip():
        errors["name"] = "必填"
    if role not in ROLES:
        errors["role"] = "请选择角色"
    errors.update(new_password_errors(password, password2))
    if not errors:
        try:
            await asyncio.to_thread(ui.users.add, name, role, password, stations or [], user.name)
        except ServiceError as err:
            text = literal(str(err))
            errors["stations" if "station" in text else "name"] = text
    if errors:
        return await _page(request, ui, form=form, errors=errors, status_code=422)
    return await _page(request, ui, message=f"{name.strip()} ({role})")


@router.post("/users/{name}/stations")
async def assign_stations(request: Request, ui: Ui, user: Admin, name: str,
                          stations: Annotated[list[str] | None, Form()] = None) -> Response:
    await asyncio.to_thread(ui.users.set_stations, name, stations or [], user.name)
    _sessions(request).end_user(name)
    return await _page(request, ui, message=name)


@router.post("/users/{name}/password")
async def set_password(request: Request, ui: Ui, user: Admin, name: str,
                       password: Annotated[str, Form(max_length=256)] = "",
                       password2: Annotated[str, Form(max_length=256)] = "") -> Response:
    """A forgotten password: the administrator sets a new one and tells the user; their sessions end."""
    problems = new_password_errors(password, password2)
    if problems:
        return await _page(request, ui, errors={f"password:{name}": next(iter(problems.values()))}, status_code=422)
    await asyncio.to_thread(ui.users.set_password, name, password, user.name)
    _sessions(request).end_user(name)
    return await _page(request, ui, message=name)


@router.post("/users/{name}/disable")
async def disable(request: Request, ui: Ui, user: Admin, name: str) -> Response:
    if name == user.name:
        raise ServiceError("you cannot disable yourself; another administrator can")
    await asyncio.to_thread(ui.users.set_disabled, name, True, user.name)
    _sessions(request).end_user(name)
    return await _page(request, ui, message=name)


@router.post("/users/{name}/enable")
async def enable(request: Request, ui: Ui, user: Admin, name: str) -> Response:
    await asyncio.to_thread(ui.users.set_disabled, name, False, user.name)
    return await _page(request, ui, message=name)
