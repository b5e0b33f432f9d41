"""The clock check against Debian's chrony (a server nobody here wrote) and the simulated hall's NTP server.

chronyd runs as a subprocess on a free UDP port of 127.0.0.1 (`-x`: it never touches the system
clock); a server whose clock is 5 s off is the same chronyd under libfaketime (`FAKETIME=+5s`), so its
receive and transmit timestamps are really 5 s ahead. An unsynchronised server is chronyd without
`local stratum`: it answers with leap indicator 3 and stratum 0 until it has a source, and here it
never gets one. The simulated server is checked against chronyd's own client (`chronyd -Q`) too.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hardware_sim.ntp_server import SimNtpServer
from station.config import SiteConfig, load_site_config
from station.site_check.clock_check import check_clock
from station.site_check.report import Check, CheckContext

CHRONYD = shutil.which("chronyd") or ("/usr/sbin/chronyd" if os.access("/usr/sbin/chronyd", os.X_OK) else None)
FAKETIME_LIBS = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
needs_chrony = pytest.mark.skipif(CHRONYD is None,
                                  reason="Debian's chrony is not installed (make system-deps installs it)")
needs_faketime = pytest.mark.skipif(not FAKETIME_LIBS,
                                    reason="libfaketime is not installed (make system-deps installs it)")
SITE = load_site_config("examples/site.yaml")


def context(tmp_path: Path, ntp_server: str | None, max_offset_s: float = 1.0) -> CheckContext:
    acceptance = SITE.acceptance.model_copy(update={"ntp_server": ntp_server, "max_clock_offset_s": max_offset_s})
    config: SiteConfig = SITE.model_copy(update={"acceptance": acceptance})
    return CheckContext(config=config, config_path=Path("examples/site.yaml"), data_dir=tmp_path, sample_s=2)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(port: int) -> bool:
    """A bare NTP request, to know chronyd is serving (not the client under test)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        sock.sendto(b"\x23" + bytes(47), ("127.0.0.1", port))
        with contextlib.suppress(OSError):
            return len(sock.recv(512)) >= 48
    return False


@contextlib.contextmanager
def chronyd(tmp_path: Path, *, local_stratum: bool = True, faketime: str | None = None) -> Iterator[str]:
    """chronyd serving NTP on 127.0.0.1; yields `127.0.0.1:PORT`. Stopped by its pid."""
    assert CHRONYD is not None
    port = free_udp_port()
    workdir = tmp_path / f"chrony-{port}"
    workdir.mkdir()
    workdir.chmod(0o777)  # chronyd as root drops to its own user, which writes the drift file here
    conf = workdir / "chrony.conf"
    conf.write_text(
        f"port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\n"
        + ("local stratum 8\n" if local_stratum else "")
        + f"cmdport 0\nbindcmdaddress /\npidfile {workdir}/chronyd.pid\ndriftfile {workdir}/drift\n")
    env = dict(os.environ)
    if faketime is not None:
        env.update(LD_PRELOAD=FAKETIME_LIBS[0], FAKETIME=faketime)
    # -x: serve time, never adjust the system clock; -U: allowed to start without root (CI)
    with (workdir / "chronyd.log").open("wb") as log:
        proc = subprocess.Popen([CHRONYD, "-d", "-x", "-U", "-f", str(conf)], stdout=log, stderr=log, env=env)
    try:
        deadline = time.monotonic() + 5
        while not answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                text = (workdir / "chronyd.log").read_text(errors="replace")
                pytest.skip(f"chronyd cannot run here (uid {os.getuid()}): {text.strip()[-400:]}")
        yield f"127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def only(checks: list[Check]) -> Check:
    assert [c.id for c in checks] == ["clock"]
    return checks[0]


@needs_chrony
async def test_the_clock_agrees_with_chrony(tmp_path: Path) -> None:
    with chronyd(tmp_path) as server:
        check = only(await check_clock(context(tmp_path, server)))
    assert check.passed, check.detail
    assert check.category == "clock" and check.fix is None
    offset = check.figures["offset_s"]
    assert isinstance(offset, float) and abs(offset) < 0.05
    assert check.figures["stratum"] == 8 and check.figures["samples"] == 4
    delay = check.figures["delay_s"]
    assert isinstance(delay, float) and 0 <= delay < 0.05
    assert server in check.title and "at most 1 s" in check.detail


@needs_chrony
@needs_faketime
async def test_a_server_5_s_ahead_fails_with_the_offset_and_the_fix(tmp_path: Path) -> None:
    with chronyd(tmp_path, faketime="+5s") as server:
        check = only(await check_clock(context(tmp_path, server)))
    assert not check.passed
    offset = check.figures["offset_s"]
    assert isinstance(offset, float) and abs(offset - 5.0) < 0.1, offset
    assert re.search(r"5\.0\d\d s behind", check.detail), check.detail
    assert check.fix is not None and "chronyc makestep" in check.fix and "server 127.0.0.1 iburst" in check.fix


@needs_chrony
async def test_an_unsynchronised_server_fails(tmp_path: Path) -> None:
    with chronyd(tmp_path, local_stratum=False) as server:
        check = only(await check_clock(context(tmp_path, server)))
    assert not check.passed
    assert "not synchronised" in check.detail and "leap indicator 3" in check.detail
    assert check.fix is not None and "time sources" in check.fix


async def test_the_simulated_server_5_s_off_fails_the_same_way(tmp_path: Path) -> None:
    async with SimNtpServer(offset_s=5.0) as ntp:
        check = only(await check_clock(context(tmp_path, ntp.address)))
        offset = check.figures["offset_s"]
        assert not check.passed and isinstance(offset, float) and abs(offset - 5.0) < 0.05, check.detail
        assert "behind" in check.detail
        ntp.offset_s = -3.0
        check = only(await check_clock(context(tmp_path, ntp.address)))
        offset = check.figures["offset_s"]
        assert not check.passed and isinstance(offset, float) and abs(offset + 3.0) < 0.05
        assert "ahead of" in check.detail
        ntp.offset_s = 0.0
        check = only(await check_clock(context(tmp_path, ntp.address)))
        assert check.passed, check.detail
        ntp.unsynchronised = True
        check = only(await check_clock(context(tmp_path, ntp.address)))
        assert not check.passed and "leap indicator 3" in check.detail
        assert ntp.requests == 16


@needs_chrony
async def test_chronyd_as_a_client_reads_the_simulated_server_5_s_off(tmp_path: Path) -> None:
    """The simulator's answers are read by a client nobody here wrote: chronyd -Q measures, sets nothing."""
    async with SimNtpServer(offset_s=5.0) as ntp:
        assert CHRONYD is not None
        proc = await asyncio.create_subprocess_exec(
            CHRONYD, "-U", "-Q", "-t", "10", f"server 127.0.0.1 port {ntp.port} iburst minpoll -6 maxpoll -6",
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = await proc.communicate()
    found = re.search(rb"System clock wrong by (-?[0-9.]+) seconds", out)
    assert found is not None, out.decode(errors="replace")
    assert abs(float(found.group(1)) - 5.0) < 0.05


async def test_no_ntp_server_configured_fails_asking_for_one(tmp_path: Path) -> None:
    check = only(await check_clock(context(tmp_path, None)))
    assert not check.passed and "no NTP server is configured" in check.detail
    assert check.fix is not None and "acceptance.ntp_server" in check.fix


@contextlib.asynccontextmanager
async def silent_udp() -> AsyncIterator[int]:
    """A UDP port that reads requests and never answers (a server behind a firewall that drops replies)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def test_a_server_that_does_not_answer_fails_with_what_to_check(tmp_path: Path) -> None:
    async with silent_udp() as port:
        started = time.monotonic()
        check = only(await check_clock(context(tmp_path, f"127.0.0.1:{port}")))
    assert not check.passed and "no answer to 4 requests" in check.detail, check.detail
    assert check.fix is not None and f"UDP port {port}" in check.fix
    assert time.monotonic() - started < 6


async def test_nothing_listening_fails_as_refused(tmp_path: Path) -> None:
    port = free_udp_port()
    check = only(await check_clock(context(tmp_path, f"127.0.0.1:{port}")))
    assert not check.passed and "refused" in check.detail, check.detail
