"""The simulated hall's NTP server: answers NTP client requests over UDP, with faults for tests.

Why: the site check measures this machine's clock against the site's NTP server, and a simulated
hall must offer one that `examstation sim --write-config` can name in `acceptance.ntp_server`
(a hall's own server, or the province's, is usually a Linux box running chrony or ntpd). It speaks
NTPv4 server mode (RFC 5905, mode 4) the way chrony does for a client's mode-3 request: the
request's transmit timestamp goes back as the originate timestamp, receive and transmit timestamps
are this machine's clock plus `offset_s`, stratum 2 with the sim's own reference id.

Faults, flipped by tests while it runs: `offset_s` (the server's clock is that many seconds ahead of
this machine's; a clock 5 s off is `offset_s = 5`), `silent` (requests are read and never answered,
as a server behind a firewall), `unsynchronised` (answers with leap indicator 3, "clock not
synchronised", as a server that lost its own sources). The packet format is written here from the
RFC, not shared with the station's client, so the two cannot agree on a shared mistake.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from types import TracebackType
from typing import Final, Self, cast

logger = logging.getLogger(__name__)

NTP_UNIX_OFFSET_S: Final = 2_208_988_800
"""Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01)."""
_PACKET: Final = struct.Struct("!BBbb4s4s4s8s8s8s8s")
"""LI/VN/mode, stratum, poll, precision, root delay, root dispersion, reference id, then the
reference, originate, receive and transmit timestamps (RFC 5905 figure 8)."""
_MODE_CLIENT: Final = 3
_MODE_SERVER: Final = 4
_STRATUM: Final = 2
_PRECISION: Final = -20
"""About a microsecond, log2 seconds: what chrony announces on a machine like this."""
_REFERENCE_ID: Final = b"SIM\x00"


def ntp_timestamp(unix_s: float) -> bytes:
    """A 64-bit NTP timestamp (32-bit seconds since 1900, 32-bit fraction) of a Unix time."""
    seconds = int(unix_s // 1) + NTP_UNIX_OFFSET_S
    fraction = int((unix_s % 1) * 2**32) & 0xFFFFFFFF
    return struct.pack("!II", seconds & 0xFFFFFFFF, fraction)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: SimNtpServer) -> None:
        self._server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a datagram transport, though in 3.11 its class does not derive from DatagramTransport
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        received_s = time.time() + self._server.offset_s
        answer = self._server.answer(data, received_s)
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)

    def error_received(self, exc: Exception) -> None:
        logger.debug("sim NTP server: %r", exc)


class SimNtpServer:
    """`async with SimNtpServer() as ntp:` then point `acceptance.ntp_server` at `ntp.address`."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, offset_s: float = 0.0) -> None:
        self.host = host
        self.offset_s = offset_s
        """Seconds the served clock is ahead of this machine's (negative: behind). Settable while running."""
        self.silent = False
        """While True, requests are not answered (a firewalled or dead server)."""
        self.unsynchronised = False
        """While True, answers carry leap indicator 3 (the server's clock is not synchronised)."""
        self.requests = 0
        """Client requests received (answered or not)."""
        self._requested_port = port
        self._port: int | None = None
        self._transport: asyncio.DatagramTransport | None = None

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.host, self._requested_port))
        self._transport = transport
        self._port = int(transport.get_extra_info("sockname")[1])
        logger.info("sim NTP server: serving on %s (offset %+.3f s)", self.address, self.offset_s)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()
            await asyncio.sleep(0)  # the transport closes its socket on the next loop iteration
            logger.info("sim NTP server: closed after %d requests", self.requests)

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("sim NTP server is not started; use 'async with SimNtpServer()'")
        return self._port

    @property
    def address(self) -> str:
        """`host:port`, the form `acceptance.ntp_server` takes."""
        return f"{self.host}:{self.port}"

    def answer(self, request: bytes, received_s: float) -> bytes | None:
        """The server-mode reply to one datagram, or None when it gets none (not a client request, or silent)."""
        if len(request) < _PACKET.size:
            logger.debug("sim NTP server: ignored a %d-byte datagram (an NTP request has 48)", len(request))
            return None
        version, mode = (request[0] >> 3) & 0x7, request[0] & 0x7
        if mode != _MODE_CLIENT or not 1 <= version <= 4:
            logger.debug("sim NTP server: ignored mode %d version %d (answers client mode 3 only)", mode, version)
            return None
        self.requests += 1
        if self.silent:
            return None
        leap = 3 if self.unsynchronised else 0
        (poll,) = struct.unpack_from("!b", request, 2)
        now_s = time.time() + self.offset_s
        return _PACKET.pack(
            (leap << 6) | (version << 3) | _MODE_SERVER, _STRATUM, poll,
            _PRECISION, struct.pack("!I", 0x0000_0100), struct.pack("!I", 0x0000_0200), _REFERENCE_ID,
            ntp_timestamp(now_s - 16.0), request[40:48], ntp_timestamp(received_s), ntp_timestamp(now_s))
