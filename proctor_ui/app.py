"""`create_app(ui)`: the proctor and examiner web UI on the station's service layer.

One router per thing people do (proctor_ui/routes/): signing in, the hall, live video, a
station's exam, review and sign-off, CPR and welding reports, discipline incidents, and the site
administration pages. Static files (htmx, ECharts, the UI's own CSS and JS) are served from
proctor_ui/static; nothing is loaded from the internet.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from proctor_ui.context import UiContext
from proctor_ui.deps import LoginRequired
from proctor_ui.guard import SESSION_ENDED, Guard, login_location
from proctor_ui.routes import (
    account,
    admin,
    auth_routes,
    discipline,
    hall,
    live,
    metrics,
    reports,
    review,
    site_check,
    station,
)
from proctor_ui.sessions import SessionStore
from proctor_ui.templating import render
from station.errors import ServiceError

STATIC_DIR = Path(__file__).parent / "static"


def create_app(ui: UiContext) -> FastAPI:
    app = FastAPI(title="examstation proctor UI", version="1", docs_url=None, redoc_url=None)
    app.state.ui = ui
    app.state.sessions = SessionStore()
    for module in (auth_routes, account, hall, live, station, review, reports, discipline, admin, site_check, metrics):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired) -> Response:
        if _wants_page(request):
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        headers = {"HX-Redirect": login_location(request.headers.get("hx-current-url"))} \
            if request.headers.get("hx-request") else None
        return JSONResponse({"detail": SESSION_ENDED}, status_code=401, headers=headers)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        """An exam action that cannot be done: the person sees why and what to do, never a 500."""
        if _wants_page(request):
            return render(request, "error.html", {"message": str(exc)}, status_code=409)
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if _wants_page(request) and exc.status_code in (403, 404):
            return render(request, "error.html", {"message": str(exc.detail)}, status_code=exc.status_code)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    guarded = Guard(app, app.state.sessions, ui.secure_transport)
    app.state.guard = guarded
    return app


def asgi(app: FastAPI) -> Guard:
    """The app behind its guard (sessions, CSRF): what uvicorn serves."""
    guard: Guard = app.state.guard
    return guard


def _wants_page(request: Request) -> bool:
    return (request.method == "GET" and "text/html" in request.headers.get("accept", "")
            and not request.headers.get("hx-request"))
