"""The clock check: this machine's offset from the site's NTP server, with an SNTP client written here.

Why it matters: every evidence segment, score event and receipt carries this machine's time, and the
province compares them with its own; a station clock that drifts makes evidence disputable. Why a
client here and not `chronyc`/`ntpdate`: the station need not run chrony itself, and the check must
measure against the server the province names (`acceptance.ntp_server`), not whatever the local
daemon happens to follow.

The client is RFC 4330/5905 client mode: a 48-byte request, version 4, mode 3, with the local send
time as transmit timestamp; the reply must be mode 4 and echo that timestamp as originate (anything
else is a stray or spoofed datagram and is ignored). With t1 sent, t2 received by the server, t3 sent
by the server and t4 received here: offset = ((t2 - t1) + (t3 - t4)) / 2, delay = (t4 - t1) - (t3 - t2).
Several requests are sent and the answer with the smallest delay is kept (the least queueing, so the
truest offset, as NTP's clock filter does). A positive offset means this machine is behind.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import struct
import time
from dataclasses import dataclass
from typing import Final

from station.site_check.report import Check, CheckContext

logger = logging.getLogger(__name__)

NTP_PORT: Final = 123
SAMPLES: Final = 4
ANSWER_TIMEOUT_S: Final = 1.0
"""Per request: an NTP server on the site's network answers in milliseconds."""
_GAP_S: Final = 0.1
_NTP_UNIX_OFFSET_S: Final = 2_208_988_800
_PACKET_BYTES: Final = 48
_LI_VN4_CLIENT: Final = (0 << 6) | (4 << 3) | 3
_MODE_SERVER: Final = 4
_UNSYNCHRONISED_LEAP: Final = 3
_UNSYNCHRONISED_STRATUM: Final = 16


class NtpError(Exception):
    """The server gave no usable answer; the message says what was seen."""


@dataclass(frozen=True, slots=True)
class NtpSample:
    offset_s: float
    delay_s: float
    stratum: int
    leap: int
    reference: str
    """Reference id: a source code (GPS, LOCL) at stratum 1, else the upstream server's IPv4 address."""


def _to_ntp(unix_ns: int) -> bytes:
    seconds, rest_ns = divmod(unix_ns, 1_000_000_000)
    return struct.pack("!II", (seconds + _NTP_UNIX_OFFSET_S) & 0xFFFFFFFF, (rest_ns << 32) // 1_000_000_000)


def _from_ntp(data: bytes) -> float:
    seconds, fraction = struct.unpack("!II", data)
    return float(seconds - _NTP_UNIX_OFFSET_S) + float(fraction) / 2**32


def _reference(stratum: int, raw: bytes) -> str:
    if stratum <= 1:
        return raw.rstrip(b"\x00").decode("ascii", "replace")
    return ".".join(str(b) for b in raw)


def parse_reply(reply: bytes, sent: bytes, t1_ns: int, t4_ns: int) -> NtpSample | None:
    """One answer as a sample; None when it is not the answer to the request that carried `sent`."""
    if len(reply) < _PACKET_BYTES or reply[0] & 0x7 != _MODE_SERVER or reply[24:32] != sent:
        return None
    t1, t4 = t1_ns / 1e9, t4_ns / 1e9
    t2, t3 = _from_ntp(reply[32:40]), _from_ntp(reply[40:48])
    stratum = reply[1]
    return NtpSample(offset_s=((t2 - t1) + (t3 - t4)) / 2, delay_s=(t4 - t1) - (t3 - t2), stratum=stratum,
                     leap=reply[0] >> 6, reference=_reference(stratum, reply[12:16]))


class _Client(asyncio.DatagramProtocol):
    """Hands each datagram, stamped on arrival, to whoever waits; remembers an ICMP refusal."""

    def __init__(self) -> None:
        self.answers: asyncio.Queue[tuple[bytes, int] | OSError] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.answers.put_nowait((data, time.time_ns()))

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):  # ICMP port unreachable: nothing listens there
            self.answers.put_nowait(exc)


def split_server(server: str) -> tuple[str, int]:
    """`host` or `host:port` (an IPv6 literal is taken whole, on port 123)."""
    host, sep, port = server.rpartition(":")
    if not sep or ":" in host:
        return server, NTP_PORT
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"acceptance.ntp_server {server!r}: port {port!r} is not a UDP port (1-65535)")
    return host, int(port)


async def query(host: str, port: int, *, samples: int = SAMPLES,
                answer_timeout_s: float = ANSWER_TIMEOUT_S) -> list[NtpSample]:
    """Send `samples` requests one after another; the valid answers (raises NtpError when none came)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as err:
        raise NtpError(f"cannot resolve {host}: {err.strerror}") from err
    family, _, _, _, address = infos[0]
    remote = (str(address[0]), int(address[1]))
    transport, client = await loop.create_datagram_endpoint(_Client, remote_addr=remote, family=family)
    got: list[NtpSample] = []
    try:
        for index in range(samples):
            if index:
                await asyncio.sleep(_GAP_S)
            t1_ns = time.time_ns()
            # the low bits of the fraction are noise, as RFC 5905 advises: a reply must echo them exactly
            sent = _to_ntp(t1_ns)[:7] + secrets.token_bytes(1)
            transport.sendto(bytes((_LI_VN4_CLIENT,)) + bytes(39) + sent)
            try:
                async with asyncio.timeout(answer_timeout_s):
                    while True:
                        answer = await client.answers.get()
                        if isinstance(answer, OSError):
                            raise NtpError(f"refused by {host} UDP port {port} ({answer.strerror}): "
                                           "nothing answers NTP there")
                        if (sample := parse_reply(answer[0], sent, t1_ns, answer[1])) is not None:
                            got.append(sample)
                            break
            except TimeoutError:
                continue
    finally:
        transport.close()
    if not got:
        raise NtpError(f"no answer to {samples} requests to {host} UDP port {port} "
                       f"(waited {answer_timeout_s:.1f} s for each)")
    return got


async def check_clock(ctx: CheckContext) -> list[Check]:
    """One `clock` check: this machine's offset from `acceptance.ntp_server` within `max_clock_offset_s`."""
    acceptance = ctx.config.acceptance
    server, limit_s = acceptance.ntp_server, acceptance.max_clock_offset_s
    title = f"Clock agrees with the NTP server {server}" if server else "Clock agrees with the site's NTP server"

    def failed(detail: str, fix: str, **figures: float | int | str) -> list[Check]:
        return [Check(id="clock", category="clock", title=title, passed=False, detail=detail, fix=fix,
                      figures={"max_offset_s": limit_s, **figures})]

    if not server:
        return failed("no NTP server is configured, so the clock cannot be checked",
                      "set acceptance.ntp_server in the site config to the NTP server the province names "
                      "(host or host:port)")
    try:
        host, port = split_server(server)
    except ValueError as err:
        return failed(str(err), "write acceptance.ntp_server as host or host:port")
    unreachable_fix = (f"check that {host} is up and that UDP port {port} is open to it from this machine "
                       "(firewall), and that acceptance.ntp_server names the right server")
    try:
        async with asyncio.timeout(SAMPLES * (ANSWER_TIMEOUT_S + _GAP_S) + 5.0):
            samples = await query(host, port)
    except (NtpError, OSError) as err:
        return failed(f"NTP server {server} gave no time: {err}", unreachable_fix)
    except TimeoutError:
        return failed(f"NTP server {server} did not answer in time", unreachable_fix)
    best = min(samples, key=lambda s: s.delay_s)
    figures: dict[str, float | int | str] = {
        "offset_s": round(best.offset_s, 6), "delay_s": round(best.delay_s, 6), "stratum": best.stratum,
        "samples": len(samples), "reference": best.reference}
    if best.leap == _UNSYNCHRONISED_LEAP or best.stratum in (0, _UNSYNCHRONISED_STRATUM):
        what = (f"kiss code {best.reference}" if best.stratum == 0 and best.reference and best.leap != 3
                else f"leap indicator {best.leap}, stratum {best.stratum}")
        return failed(f"NTP server {server} answers but is not synchronised itself ({what}): "
                      "its time cannot be trusted",
                      f"have the operator of {server} fix its time sources (it must reach stratum 15 or better "
                      "with leap indicator 0-2), or point acceptance.ntp_server at a synchronised server", **figures)
    direction = "behind" if best.offset_s > 0 else "ahead of"
    found = (f"this machine's clock is {abs(best.offset_s):.3f} s {direction} {server} "
             f"(stratum {best.stratum}, round trip {best.delay_s * 1000:.1f} ms, best of {len(samples)} answers); "
             f"at most {limit_s:g} s is accepted")
    if abs(best.offset_s) > limit_s:
        return failed(found, f"make this machine follow {server}: install chrony, put 'server {host} iburst' in "
                      "/etc/chrony/chrony.conf, restart it and step the clock now with 'chronyc makestep'; "
                      "then run the site check again", **figures)
    return [Check(id="clock", category="clock", title=title, passed=True, detail=found,
                  figures={"max_offset_s": limit_s, **figures})]
