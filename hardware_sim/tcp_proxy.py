"""A TCP relay in front of a simulated Modbus TCP server that injects faults on the wire.

Why a relay and not server hooks: faults then look exactly like they do on a real network
(delayed segments, silence, garbled bytes, reset connections, a port that refuses) whatever
server sits behind it, and the server itself stays a plain pymodbus SimDevice server.
"""

from __future__ import annotations

import asyncio
import logging

from hardware_sim.fault import FaultPlan

log = logging.getLogger(__name__)


def garble_mbap(chunk: bytes) -> bytes:
    """Break a Modbus TCP answer so no client can accept it: protocol id must be 0, make it not."""
    if len(chunk) < 4:
        return b"\xff" * len(chunk)
    return chunk[:2] + b"\xde\xad" + chunk[4:]


class FaultyTcpProxy:
    """Listens on `host`:`port` (0 = a free port, kept across power cycles) and relays to a backend."""

    def __init__(self, backend_host: str, backend_port: int, faults: FaultPlan | None = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.backend = (backend_host, backend_port)
        self.faults = faults or FaultPlan()
        self.host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections_accepted = 0

    @property
    def port(self) -> int:
        return self._port

    @property
    def powered(self) -> bool:
        return self._server is not None

    async def __aenter__(self) -> FaultyTcpProxy:
        await self.power_on()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.power_off()

    async def power_on(self) -> None:
        """Listen again on the same port: the device was switched back on."""
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, self.host, self._port)
            self._port = int(self._server.sockets[0].getsockname()[1])

    async def power_off(self) -> None:
        """Stop listening and reset every connection: connects are refused until power_on()."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self.disconnect_all()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
        if server is not None:
            await server.wait_closed()

    def disconnect_all(self) -> None:
        """Reset every open connection now (a cable pulled for a moment)."""
        for pair in list(self._pairs):
            for w in pair:
                w.transport.abort()
        self._pairs.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            self.connections_accepted += 1
            try:
                b_reader, b_writer = await asyncio.open_connection(*self.backend)
            except OSError:
                writer.transport.abort()
                return
            pair = (writer, b_writer)
            self._pairs.add(pair)
            try:
                await asyncio.gather(
                    self._pump(reader, b_writer, answers=False), self._pump(b_reader, writer, answers=True)
                )
            finally:
                self._pairs.discard(pair)
                for w in pair:
                    w.transport.abort()
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, answers: bool) -> None:
        try:
            while True:
                chunk = await src.read(4096)
                if not chunk:
                    return
                f = self.faults
                if not answers and f.no_answer:
                    continue
                if answers:
                    if f.delay_s > 0:
                        await asyncio.sleep(f.delay_s)
                    if f.corrupt:
                        chunk = garble_mbap(chunk)
                dst.write(chunk)
                await dst.drain()
        except (ConnectionError, OSError):
            return
        finally:
            dst.transport.abort()
