"""The ASGI layer in front of every route: who is asking (the session) and CSRF on unsafe requests.

Why plain ASGI and not a Starlette BaseHTTPMiddleware: live video and SSE responses stream for
hours, and this layer must not buffer or wrap them. Only unsafe requests' bodies are read here
(to find the CSRF token in a form), and they are replayed to the route unchanged.

CSRF: every POST/PUT/PATCH/DELETE must carry the session's token, in the `X-CSRF-Token` header
(htmx sends it), the `csrf` field of a urlencoded form, or the `csrf` query parameter (multipart
uploads); the login form carries a pre-session token from its own cookie. A request whose
`Origin` header names another site is refused too. Refusals are 403 with a page that says what
to do (reload the page), never a 500.

Signed out: an unsafe request without a live session (8 h unused, a controller restart, signed out
or disabled elsewhere) is answered 401 "your session has ended" before its CSRF token is looked at:
its token is of a session that no longer exists, and a 403 "reload the page" would hide why. For
htmx the answer also names the login page to go to, with the page the person was on as `next`
(`HX-Redirect`, `login_location`); static/session.js shows the message and that link instead of
letting a button do nothing (htmx does not swap a 4xx answer).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from proctor_ui.sessions import SessionStore
from proctor_ui.ws_direct import RAW_SEND

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SIGN_IN = "/login"
"""The one unsafe route for someone without a session (its form carries the login CSRF token)."""
SESSION_ENDED = ("会话已结束，请重新登录 / your session has ended (8 hours unused, a controller restart, or "
                 "signed out elsewhere): sign in again")
MAX_FORM_BYTES = 32 * 1024 * 1024
"""A candidate batch CSV with photos fits; anything larger is refused before it is read whole."""


def cookie_names(secure: bool) -> tuple[str, str]:
    """(session cookie, login CSRF cookie). `__Host-` binds them to this host and path /; they are
    Secure, HttpOnly and SameSite=Strict wherever they are set.

    The same names over loopback HTTP: browsers treat http://127.0.0.1 and http://localhost as
    secure contexts and keep a Secure `__Host-` cookie set there (Debian chromium does: checked by
    tests/integration/test_ui_server.py, which signs in through it). Beyond loopback the UI is
    HTTPS only (proctor_ui.server), so `secure` changes nothing today; it stays a parameter so a
    transport that needs other names has one place to say so."""
    return "__Host-examstation-session", "__Host-examstation-login"


def _cookies(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k:
                    out[k] = v
    return out


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


class Guard:
    def __init__(self, app: ASGIApp, sessions: SessionStore, secure: bool) -> None:
        self.app = app
        self.sessions = sessions
        self.session_cookie, self.login_cookie = cookie_names(secure)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        cookies = _cookies(scope)
        session = self.sessions.get(cookies.get(self.session_cookie))
        state = scope.setdefault("state", {})
        state["session"] = session
        state["login_csrf"] = cookies.get(self.login_cookie) or ""
        if scope["type"] == "websocket":
            if not self._same_origin(scope):
                await send({"type": "websocket.close", "code": 1008})
                return
            scope[RAW_SEND] = send  # the live relays write frames straight to the socket (ws_direct)
            await self.app(scope, receive, send)
            return
        if scope["method"] not in UNSAFE:
            await self.app(scope, receive, send)
            return
        if session is None and scope.get("path") != SIGN_IN:
            hx = _header(scope, b"hx-request") is not None
            await _refuse(send, 401, SESSION_ENDED,
                          {"HX-Redirect": login_location(_header(scope, b"hx-current-url"))} if hx else None)
            return
        body, complete = await self._read_body(receive)
        if not complete:
            await _refuse(send, 413, "请求太大 / the request is too large")
            return
        expected = session.csrf if session is not None else state["login_csrf"]
        given = self._token(scope, body)
        if not self._same_origin(scope) or not expected or not given or not hmac.compare_digest(expected, given):
            await _refuse(send, 403, "页面已过期，请刷新后重试 / this page has expired: reload it and try again "
                                     "(CSRF token missing or wrong)")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _read_body(receive: Receive) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"", False
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_FORM_BYTES:
                return b"", False
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), True

    @staticmethod
    def _token(scope: Scope, body: bytes) -> str | None:
        header = _header(scope, b"x-csrf-token")
        if header:
            return header
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("csrf"):
            return str(query["csrf"][0])
        ctype = _header(scope, b"content-type") or ""
        if ctype.startswith("application/x-www-form-urlencoded"):
            form = parse_qs(body.decode("utf-8", errors="replace"))
            if form.get("csrf"):
                return str(form["csrf"][0])
        return None

    @staticmethod
    def _same_origin(scope: Scope) -> bool:
        """A browser names the page's origin on unsafe requests and WebSockets: it must be this host."""
        origin = _header(scope, b"origin")
        if origin is None or (origin == "null" and scope["type"] == "http"):
            return origin is None
        host = _header(scope, b"host") or ""
        return origin.split("://", 1)[-1] == host


async def _refuse(send: Send, status: int, text: str, headers: dict[str, str] | None = None) -> None:
    body = text.encode("utf-8")
    more = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), *more]})
    await send({"type": "http.response.body", "body": body})


def login_location(page_url: str | None) -> str:
    """The login page that brings the person back to `page_url` (htmx's HX-Current-URL) once signed
    in: only its path and query, and `/` for anything that is not a plain path on this site."""
    parts = urlsplit(page_url or "/")
    page = parts.path + (f"?{parts.query}" if parts.query else "")
    if not page.startswith("/") or page.startswith("//") or "\\" in page:
        page = "/"
    return f"{SIGN_IN}?next={quote(page, safe='')}"


def new_login_token() -> str:
    return secrets.token_urlsafe(32)
