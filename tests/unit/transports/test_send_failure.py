"""A failed send names its cause: a peer that is gone is a remote close, not a send failure.

An aborted caller can be noticed first by the output (its next packet fails) or by the input
(its receive sees the drop); the call's end reason must not depend on which got there first.
"""

from __future__ import annotations

from typing import cast

import pytest
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from callpipe.transports.network.fastapi_websocket import _Client


class _Socket:
    client_state = WebSocketState.CONNECTED
    application_state = WebSocketState.CONNECTED

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.sends = 0

    async def send_bytes(self, data: bytes) -> None:
        self.sends += 1
        raise self.error

    async def send_text(self, data: str) -> None:
        self.sends += 1
        raise self.error


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (WebSocketDisconnect(1006), "remote closed"),
        (ConnectionResetError(), "remote closed"),
        (RuntimeError("Unexpected ASGI message"), "send failed"),
    ],
)
async def test_a_failed_send_records_why(error: Exception, cause: str) -> None:
    socket = _Socket(error)
    client = _Client(cast(WebSocket, socket), close_timeout=1.0)
    assert client.can_send
    assert await client.send(b"\xff" * 160) is False
    assert client.remote_closed and not client.can_send
    assert client.send_failure == cause
    assert await client.send("{}") is False
    assert socket.sends == 1  # no second attempt once the peer is gone
