"""`/metrics` (Prometheus text format 0.0.4) and `/healthz` (is the controller fit to examine).

Who may read them, and why:
- `/healthz` answers anyone: load balancers, systemd and monitoring probes do not sign in. It names
  stations, devices and cameras and says what is wrong with them, never a candidate, an attempt
  or an address (station.health_check).
- `/metrics` answers without credentials only over loopback (a Prometheus or node agent on the box
  itself); from anywhere else it takes a signed-in administrator or the bearer token in the file
  `monitoring.metrics_token_file` names (Prometheus' `authorization: {credentials_file: ...}`).
  Its figures (which stations and devices run, how the uplink fares) are the site's business, and
  beyond loopback the UI is on the hall's LAN. A reverse proxy on the box makes every request
  loopback: block /metrics there.
Neither is in the OpenAPI schema: they are for machines that know them.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from proctor_ui.context import UiContext
from proctor_ui.deps import Ui
from proctor_ui.hall_state import HallFeed
from proctor_ui.sessions import UiSession
from station.health_check import judge
from station.metrics import AlarmFigures, Sources, exposition, gather

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


def is_loopback(client_host: str) -> bool:
    """The peer's address is loopback (127.0.0.0/8, ::1); a name is not an address."""
    try:
        return ipaddress.ip_address(client_host).is_loopback
    except ValueError:
        return False


def metrics_refusal(client_host: str | None, role: str | None, authorization: str | None,
                    token: str | None) -> int | None:
    """Who may read /metrics: None when this request may, else its refusal (401: say who you are,
    403: signed in but not an administrator). `token`: the configured bearer token, if any."""
    if client_host is not None and is_loopback(client_host):
        return None
    if token and authorization is not None:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
    if role == "admin":
        return None
    return 403 if role is not None else 401


def read_token(path: str | None) -> str | None:
    """The bearer token from its file (first line); None when none is configured or it cannot be read
    (logged: a remote Prometheus is then refused, loopback and administrators still read)."""
    if not path:
        return None
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as err:
        log.warning("monitoring.metrics_token_file %s: cannot read it (%s); /metrics takes no bearer token until "
                    "it can", path, err.strerror)
        return None
    return token or None


async def _authorize(request: Request, ui: UiContext) -> None:
    session: UiSession | None = getattr(request.state, "session", None)
    role = session.user.role if session is not None else None
    host = request.client.host if request.client is not None else None
    authorization = request.headers.get("authorization")
    token = await asyncio.to_thread(read_token, ui.services.config.monitoring.metrics_token_file) \
        if authorization and not (host and is_loopback(host)) else None
    refusal = metrics_refusal(host, role, authorization, token)
    if refusal == 401:
        raise HTTPException(401, "/metrics beyond loopback needs the bearer token of monitoring.metrics_token_file "
                                 "or an administrator's session", headers={"WWW-Authenticate": "Bearer"})
    if refusal is not None:
        raise HTTPException(403, "/metrics is for administrators and the site's monitoring")


def _sources(ui: UiContext) -> Sources:
    """The figures' sources; the hall's alarms are copied here, on the event loop that changes them."""
    feed = HallFeed.of(ui)
    alarms = AlarmFigures(tuple(feed.alarms.values()), dict(feed.raised))
    return Sources(ui.services, ui.hub, ui.relay, lambda: alarms)


@router.get("/metrics")
async def metrics(request: Request, ui: Ui) -> Response:
    await _authorize(request, ui)
    body = await asyncio.to_thread(exposition, _sources(ui))  # reads the outbox from the database
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4, headers={"Cache-Control": "no-store"})


@router.get("/healthz")
async def healthz(ui: Ui) -> JSONResponse:
    # no database and no thread: a probe must not queue behind the work it is checking
    verdict = judge(gather(_sources(ui), outbox=False))
    return JSONResponse(verdict.document(), status_code=200 if verdict.ok else 503,
                        headers={"Cache-Control": "no-store"})
