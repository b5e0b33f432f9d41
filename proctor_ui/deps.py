"""FastAPI dependencies every route uses: the UI context, the signed-in user, role and station checks.

Why here and not in each route: the authorization rules (who may do what where) are one table a
reviewer can read, and the authorization-matrix test checks every route against it.

- `viewer`: any signed-in user (pages redirect to the login page, the API answers 401).
- `role("admin")`, `role("examiner", "admin")`...: the user has one of those roles (403 otherwise).
- `examiner_at(station)`: an examiner assigned to that station (403 for anyone else, admins too:
  an admin manages the site, an examiner scores).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from proctor_ui.context import UiContext
from proctor_ui.sessions import UiSession
from station.users import Role, UserInfo


class LoginRequired(Exception):
    """Raised for a request without a valid session; pages redirect to /login, the API gets 401."""


def ui(request: Request) -> UiContext:
    ctx: UiContext = request.app.state.ui
    return ctx


def session(request: Request) -> UiSession:
    found: UiSession | None = getattr(request.state, "session", None)
    if found is None:
        raise LoginRequired()
    return found


CurrentSession = Annotated[UiSession, Depends(session)]


def viewer(s: CurrentSession) -> UserInfo:
    return s.user


Ui = Annotated[UiContext, Depends(ui)]
Viewer = Annotated[UserInfo, Depends(viewer)]
"""Any signed-in user: `def page(user: Viewer, ui: Ui)`."""


def role(*roles: Role) -> Callable[[UserInfo], UserInfo]:
    """A dependency that lets only users of `roles` through."""

    def check(user: Viewer) -> UserInfo:
        if user.role not in roles:
            raise HTTPException(403, f"{user.name} is a {user.role}; this needs a {' or '.join(roles)}")
        return user

    return check


def examiner_at(station: str, user: Viewer) -> UserInfo:
    """The examiner assigned to `station` (the path parameter); nobody else acts on its exam."""
    if not user.may_act_at(station):
        who = f"examiner {user.name} is not assigned to {station}" if user.role == "examiner" else \
            f"{user.name} is a {user.role}; only the examiners assigned to {station} act on its exam"
        raise HTTPException(403, who)
    return user


ExaminerAt = Annotated[UserInfo, Depends(examiner_at)]
"""The examiner assigned to the route's `{station}`: `def start(station: str, user: ExaminerAt)`."""
Admin = Annotated[UserInfo, Depends(role("admin"))]
