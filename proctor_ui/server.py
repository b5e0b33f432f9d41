"""Serving the UI inside `examstation run` and `examstation demo`: uvicorn on the controller's loop.

Why in-process: routes call the station's services directly (one writer of attempts, one event
stream); a second process would need its own path to both. `serving(app, host, port)` starts
uvicorn as a task of the running loop and yields the URL it listens on (port 0 picks a free one,
as the tests do), and stops it on exit.

Beyond loopback the UI is served over HTTPS only, with the site's certificate (`tls_cert`,
`tls_key`): examiners sign results with it, and a hall LAN is not a trusted network.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from proctor_ui.app import asgi

log = logging.getLogger(__name__)


class UiServerError(Exception):
    """The UI cannot be served as asked (plain HTTP beyond loopback, a missing certificate, a busy port)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(host: str, tls_cert: Path | None, tls_key: Path | None) -> None:
    """Refuse plain HTTP beyond loopback, and a certificate without its key (or the reverse)."""
    if (tls_cert is None) != (tls_key is None):
        raise UiServerError("give both --tls-cert and --tls-key (the site's certificate and its private key)")
    for what, path in (("certificate", tls_cert), ("key", tls_key)):
        if path is not None and not path.is_file():
            raise UiServerError(f"the TLS {what} {path} does not exist; give the site's {what} file")
    if tls_cert is None and not is_loopback(host):
        raise UiServerError(f"the UI would listen on {host} over plain HTTP; beyond loopback it is served over "
                            "HTTPS only: give --tls-cert and --tls-key, or listen on 127.0.0.1")


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the CLI owns SIGINT/SIGTERM and stops everything in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, tls_cert: Path | None = None,
                  tls_key: Path | None = None) -> AsyncIterator[str]:
    """Serve `app` until the block ends; yields its base URL (http://127.0.0.1:PORT or https://...).

    The certificate is loaded and the port bound here, before uvicorn starts, so a bad certificate
    or a busy port is a UiServerError naming the fix (uvicorn itself would exit the process)."""
    check_transport(host, tls_cert, tls_key)
    # no permessage-deflate: live video is H.264, which does not compress, and zlib per viewer per
    # fragment was most of the fan-out cost (bench/live_fanout.py: ratio 8.7 with it, 2.9 without)
    config = uvicorn.Config(asgi(app), host=host, port=port, log_level="warning", access_log=False, lifespan="off",
                            ssl_certfile=str(tls_cert) if tls_cert else None,
                            ssl_keyfile=str(tls_key) if tls_key else None, ws="websockets-sansio",
                            ws_per_message_deflate=False, timeout_graceful_shutdown=2)
    try:
        config.load()
    except (ssl.SSLError, OSError) as err:
        raise UiServerError(f"the TLS certificate {tls_cert} and key {tls_key} could not be loaded ({err}); give "
                            "the site's PEM certificate and its matching private key") from err
    sock = _bind(host, port)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"proctor UI {host}:{port}")
    try:
        while not server.started:
            if task.done():
                task.result()
                raise UiServerError(f"the UI on {host}:{port} stopped while starting; run again with -v")
            await asyncio.sleep(0.02)
        bound = sock.getsockname()[1]
        scheme = "https" if tls_cert else "http"
        shown = f"[{host}]" if ":" in host else host
        yield f"{scheme}://{shown}:{bound}"
    finally:
        # live views (SSE, tiles, players) never end by themselves: uvicorn cancels them after its
        # graceful wait and logs each as "Exception in ASGI application"; at a stop that is expected
        uvicorn_log = logging.getLogger("uvicorn.error")
        level = uvicorn_log.level
        uvicorn_log.setLevel(logging.CRITICAL)
        server.should_exit = True
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            uvicorn_log.setLevel(level)
            sock.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, reuse_port=False)
    except OSError as err:
        raise UiServerError(f"the UI cannot listen on {host}:{port}: {err.strerror or err}; is another examstation "
                            "or web server using the port? choose another with --port, or stop it") from err
    sock.set_inheritable(True)
    return sock
