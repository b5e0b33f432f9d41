"""An MQTT broker inside the demo's own process (amqtt), so `make demo` needs nothing installed.

Demo only: amqtt does not enforce keepalive (a frozen client's will never fires, LIBRARY-NOTES.md),
so tests and real sites use mosquitto. It listens on 127.0.0.1 only, on a free port.
"""

from __future__ import annotations

import socket

from amqtt.broker import Broker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    """`async with EmbeddedBroker() as broker:` then connect to `broker.url`."""

    def __init__(self, port: int = 0) -> None:
        self.port = port or _free_port()
        self._broker: Broker | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def __aenter__(self) -> EmbeddedBroker:
        self._broker = Broker({
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        })
        await self._broker.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
