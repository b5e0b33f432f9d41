"""A live frame written straight into a viewer's WebSocket when its socket has room.

Why: the hub hands every viewer the same bytes, but relaying them through each viewer's task
(wake the task, resume the iterator, Starlette's send, uvicorn's send, the websockets framer)
costs ~25 µs of Python per viewer per frame: 60 viewers of one camera then cost more than its
ingest and recording together. Written from the hub's own `offer` call, a frame costs a header
and one `transport.write`. This works only on uvicorn's websockets-sansio protocol, found behind
the ASGI `send` callable that the guard keeps in the scope (`RAW_SEND`); on any other server, or
when the socket's buffer is full or the relay is mid-send, `try_binary` says no and the frame
takes the normal ASGI path, so behaviour never depends on it, only cost.

Frames are server-to-client binary messages: FIN, opcode 2, no mask (RFC 6455 5.2), never
compressed (the server refuses permessage-deflate; an uncompressed frame is valid even where it
is negotiated, RSV1 clear).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import MutableMapping
from typing import Any

try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
except ImportError:  # another uvicorn layout: every frame takes the ASGI path
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]

RAW_SEND = "examstation.raw_send"
"""Scope key under which the guard keeps the server's own `send` for WebSocket connections."""


def binary_frame_header(length: int) -> bytes:
    if length < 126:
        return struct.pack("!BB", 0x82, length)
    if length < 1 << 16:
        return struct.pack("!BBH", 0x82, 126, length)
    return struct.pack("!BBQ", 0x82, 127, length)


class DirectSocket:
    """Writes binary messages to one accepted WebSocket without a task switch, when it can."""

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol
        self._writable: asyncio.Event = protocol.writable
        self.busy = False
        """Set by the relay while it sends through ASGI: a direct frame then would overtake it."""

    frames_written = 0
    """Frames written directly by every DirectSocket of this process (for tests and diagnostics)."""

    @classmethod
    def of(cls, scope: MutableMapping[str, Any]) -> DirectSocket | None:
        """The direct writer of this connection, or None when the server is not uvicorn's sansio one."""
        protocol = getattr(scope.get(RAW_SEND), "__self__", None)
        if WebSocketsSansIOProtocol is None or not isinstance(protocol, WebSocketsSansIOProtocol):
            return None
        return cls(protocol)

    def try_binary(self, payload: bytes) -> bool:
        """Write `payload` as one binary message now if the socket has room; False to queue it instead."""
        protocol = self._protocol
        if (self.busy or not self._writable.is_set() or protocol.close_sent or not protocol.handshake_complete
                or protocol.transport.is_closing()):
            return False
        protocol.transport.write(_frame_of(payload))
        DirectSocket.frames_written += 1
        return True


_last: tuple[bytes | None, bytes] = (None, b"")
"""The last payload and its frame: the hub offers one item to all viewers of a stream in a row, so
the frame is built once per item, not once per viewer."""


def _frame_of(payload: bytes) -> bytes:
    global _last
    if _last[0] is not payload:
        _last = (payload, binary_frame_header(len(payload)) + payload)
    return _last[1]
