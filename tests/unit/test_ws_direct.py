"""The frames ws_direct writes are what a WebSocket client reads as one binary message: checked by
the websockets library's own client-side parser, at each length encoding of RFC 6455 5.2."""

from __future__ import annotations

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from proctor_ui.ws_direct import _frame_of, binary_frame_header


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 300_000])
def test_a_client_reads_each_frame_as_one_binary_message(length: int) -> None:
    payload = bytes(i % 251 for i in range(length))
    client = ClientProtocol(parse_uri("ws://127.0.0.1/"), state=State.OPEN, max_size=None)
    client.receive_data(_frame_of(payload))
    (event,) = client.events_received()
    assert isinstance(event, Frame)
    assert event.opcode is Opcode.BINARY and event.fin and event.data == payload


def test_the_frame_is_built_once_per_payload_and_the_header_is_the_shortest() -> None:
    payload = b"x" * 1000
    assert _frame_of(payload) is _frame_of(payload)
    assert [len(binary_frame_header(n)) for n in (125, 126, 65535, 65536)] == [2, 4, 4, 10]
