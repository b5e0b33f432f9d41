"""Serving the UI: loopback HTTP works, plain HTTP beyond loopback is refused naming the fix, HTTPS
with the site's certificate serves the login page to a client trusting it, and Debian chromium keeps
the Secure `__Host-` session cookie over loopback HTTP and signs in through it."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from proctor_ui.app import create_app
from proctor_ui.context import UiContext
from proctor_ui.server import UiServerError, serving
from station.config import load_site_config
from station.db import database_path, open_database
from station.services import StationServices
from station.signing import SiteKey
from station.stored import ensure_database
from station.users import UserBook
from tests.integration.conftest import ManualClock

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_site_config(ROOT / "examples" / "site.yaml")
PASSWORD = "correct horse battery"


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[UiContext]:
    ensure_database(tmp_path)
    clock = ManualClock()
    with open_database(database_path(tmp_path)) as db:
        services = StationServices(CONFIG, db, SiteKey.load_or_create(tmp_path), clock)
        users = UserBook(db, clock, [s.id for s in CONFIG.stations])
        users.add("exam1", "examiner", PASSWORD, ["A01"])
        yield UiContext(services=services, users=users, data_dir=tmp_path)
        services.close()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost signed by its own key: the client trusts it as its CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "examstation test site")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "site.crt", folder / "site.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_loopback_http_serves_the_login_page(ctx: UiContext) -> None:
    async with serving(create_app(ctx), "127.0.0.1", 0) as url, httpx.AsyncClient() as client:
        assert url.startswith("http://127.0.0.1:")
        r = await client.get(f"{url}/login")
    assert r.status_code == 200 and 'name="password"' in r.text
    assert "__Host-examstation-login=" in r.headers["set-cookie"]


async def test_plain_http_beyond_loopback_is_refused_naming_the_fix(ctx: UiContext) -> None:
    with pytest.raises(UiServerError, match="--tls-cert and --tls-key"):
        async with serving(create_app(ctx), "0.0.0.0", 0):
            pytest.fail("served plain HTTP on every address")


async def test_a_certificate_without_its_key_is_refused(ctx: UiContext, tmp_path: Path) -> None:
    cert, _ = _self_signed(tmp_path)
    with pytest.raises(UiServerError, match="both --tls-cert and --tls-key"):
        async with serving(create_app(ctx), "127.0.0.1", 0, tls_cert=cert):
            pytest.fail("served with half a TLS configuration")


async def test_https_with_the_site_certificate(ctx: UiContext, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    ctx.secure_transport = True
    trust = ssl.create_default_context(cafile=str(cert))
    async with serving(create_app(ctx), "127.0.0.1", 0, tls_cert=cert, tls_key=key) as url:
        assert url.startswith("https://127.0.0.1:")
        async with httpx.AsyncClient(verify=trust) as client:
            r = await client.get(f"{url}/login")
        assert r.status_code == 200 and 'name="password"' in r.text
        async with httpx.AsyncClient() as untrusting:
            with pytest.raises(httpx.ConnectError):
                await untrusting.get(f"{url}/login")


async def test_chromium_keeps_the_host_cookie_over_loopback_http_and_signs_in(ctx: UiContext) -> None:
    """Browsers treat http://127.0.0.1 as a secure context: the `__Host-`, Secure cookie is kept."""
    from playwright.async_api import async_playwright

    async with serving(create_app(ctx), "127.0.0.1", 0) as url, async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            page = await browser.new_page()
            await page.goto(f"{url}/login")
            await page.fill("input[name=name]", "exam1")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{url}/")
            cookies = {c["name"]: c for c in await page.context.cookies()}
        finally:
            await browser.close()
    session = cookies["__Host-examstation-session"]
    assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Strict"
    assert "__Host-examstation-login" not in cookies


async def test_a_busy_port_is_refused_naming_the_fix(ctx: UiContext) -> None:
    async with serving(create_app(ctx), "127.0.0.1", 0) as url:
        port = int(url.rsplit(":", 1)[1])
        with pytest.raises(UiServerError, match="--port"):
            async with serving(create_app(ctx), "127.0.0.1", port):
                pytest.fail("two servers on one port")


async def test_a_damaged_certificate_is_refused_naming_the_fix(ctx: UiContext, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    cert.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    with pytest.raises(UiServerError, match="PEM certificate"):
        async with serving(create_app(ctx), "127.0.0.1", 0, tls_cert=cert, tls_key=key):
            pytest.fail("served with a damaged certificate")
