"""Helpers for the browser tests: the demo site as a person starts it, Debian's chromium, screenshots.

The site is `examstation demo` in its own process (as `make demo` runs it) on a free port with a
temporary data directory; it tells the test its URL and the logins it made through `--logins-file`.
Chromium is Debian's (/usr/bin/chromium), driven by Playwright's Python API; no browser is ever
downloaded. Screenshots go to a temporary directory, and to docs/screenshots/ when the run sets
EXAMSTATION_SCREENSHOTS=1 (the README shows those).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = ROOT / "docs" / "screenshots"
START_TIMEOUT_S = 60.0
"""The demo starts its simulators, broker, province and UI, and makes four Argon2id hashes."""


@dataclass(frozen=True, slots=True)
class DemoSite:
    url: str
    users: list[dict[str, Any]]
    data_dir: Path
    log: Path
    """The demo's console output (stdout and stderr), for failure messages."""

    def login_of(self, role: str, n: int = 0) -> tuple[str, str]:
        """(name, password) of the n-th demo user of `role`."""
        found = [u for u in self.users if u["role"] == role]
        return found[n]["name"], found[n]["password"]

    def console(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]


@contextlib.contextmanager
def demo_site(tmp: Path, *extra: str) -> Iterator[DemoSite]:
    """`examstation demo` on a free port until the block ends; then Ctrl-C (SIGINT) and a clean exit."""
    logins = tmp / "logins.json"
    log = tmp / "demo.log"
    cmd = [sys.executable, "-m", "station.cli", "demo", "--port", "0", "--data-dir", str(tmp / "data"),
           "--logins-file", str(logins), "--status-every", "30", *extra]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not logins.exists():
            if proc.poll() is not None:
                raise AssertionError(f"the demo exited with {proc.returncode} before serving the UI:\n"
                                     f"{log.read_text(errors='replace')[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the demo did not serve the UI within {START_TIMEOUT_S:g} s:\n"
                                     f"{log.read_text(errors='replace')[-4000:]}")
            time.sleep(0.1)
        data = json.loads(logins.read_text(encoding="utf-8"))
        yield DemoSite(data["url"], data["users"], tmp / "data", log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, f"the demo ended with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}"


def launch(p: Playwright) -> Browser:
    return p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def sign_in(page: Page, url: str, name: str, password: str, next: str = "/") -> None:
    """Through the login form, landing on `next` (the hall by default)."""
    page.goto(f"{url}/login?next={next}", wait_until="domcontentloaded")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("form.login button[type=submit]")
    page.wait_for_url(lambda u: "/login" not in u, wait_until="domcontentloaded")


def screenshot_dir(tmp: Path) -> Path:
    """docs/screenshots/ with EXAMSTATION_SCREENSHOTS=1, else a directory under the test's tmp."""
    if os.environ.get("EXAMSTATION_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    out = tmp / "screenshots"
    out.mkdir(exist_ok=True)
    return out


def png_pixels(png: bytes) -> bytes:
    """The image data of a PNG (its IDAT chunks inflated: every scanline's pixels, each row behind
    its filter byte), so two screenshots are compared by their pixels, not their file bytes."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, bytearray()
    while pos < len(png):
        length = int.from_bytes(png[pos:pos + 4], "big")
        kind = png[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += png[pos + 8:pos + 8 + length]
        pos += 12 + length
    return zlib.decompress(bytes(idat))
