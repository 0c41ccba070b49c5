"""In-memory stand-ins for the Starlette ``WebSocket`` a ``FastAPIWebsocketTransport`` is given.

Unit tests and CPU benchmarks of the transport need a peer without a server, a network or
wall-clock waits (they run on :func:`callpipe.testing.run_virtual`'s clock). Both classes
implement exactly the members the transport uses (``receive``, ``send_text``, ``send_bytes``,
``close``, ``client_state``, ``application_state``) and record what it sent; pass
:attr:`MemoryWebSocket.websocket` (typed as Starlette's ``WebSocket``) to the transport::

    socket = TwilioCallerSocket(packets=50)          # 1 s of a caller's audio, then a hang-up
    transport = FastAPIWebsocketTransport(socket.websocket, params)
    ...
    assert socket.closed_with is None                # the caller closed first

- :class:`MemoryWebSocket` is fed by the test: :meth:`~MemoryWebSocket.feed_text`,
  :meth:`~MemoryWebSocket.feed_bytes`, :meth:`~MemoryWebSocket.disconnect` queue what the
  transport receives next, as uvicorn would.
- :class:`TwilioCallerSocket` is a scripted Twilio media-stream caller: one 20 ms µ-law media
  message per 20 ms, every ``mark`` the transport sends acknowledged (as Twilio does once the
  audio before it has played), then a hang-up.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any, cast

from starlette.websockets import WebSocket, WebSocketState

PACKET_SECS = 0.02
"""One Twilio media message: 20 ms of 8 kHz µ-law."""

_SILENCE = base64.b64encode(b"\xff" * 160).decode()
_MEDIA = (
    '{"event":"media","sequenceNumber":"%d","media":{"track":"inbound","chunk":"%d",'
    '"timestamp":"%d","payload":"%s"},"streamSid":"%s"}'
)


class MemoryWebSocket:
    """A connected WebSocket in memory: receives what is fed, records what is sent.

    ``texts`` holds every text message sent, in order; ``sent`` counts text and binary sends;
    ``closed_with`` is the close code the transport sent (None: it never closed).
    """

    def __init__(self) -> None:
        self.client_state = WebSocketState.CONNECTED
        self.application_state = WebSocketState.CONNECTED
        self.texts: list[str] = []
        self.sent = 0
        self.closed_with: int | None = None
        self._incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    @property
    def websocket(self) -> WebSocket:
        """This stand-in, typed as what the transport takes."""
        return cast(WebSocket, self)

    def feed_text(self, text: str) -> None:
        """Queue a text message for the transport to receive."""
        self._incoming.put_nowait({"type": "websocket.receive", "text": text})

    def feed_bytes(self, data: bytes) -> None:
        """Queue a binary message for the transport to receive."""
        self._incoming.put_nowait({"type": "websocket.receive", "bytes": data})

    def disconnect(self, code: int = 1000) -> None:
        """Queue the peer's close (the caller hung up)."""
        self._incoming.put_nowait({"type": "websocket.disconnect", "code": code})

    @property
    def pending(self) -> int:
        """Messages fed but not yet received."""
        return self._incoming.qsize()

    async def receive(self) -> dict[str, Any]:
        return await self._incoming.get()

    async def send_text(self, data: str) -> None:
        self.sent += 1
        self.texts.append(data)

    async def send_bytes(self, data: bytes) -> None:
        self.sent += 1

    async def close(self, code: int = 1000) -> None:
        self.closed_with = code
        self.application_state = WebSocketState.DISCONNECTED


class TwilioCallerSocket(MemoryWebSocket):
    """A Twilio media stream's caller: ``packets`` media messages of silence, one per 20 ms,
    with every mark the transport sends acknowledged in order, then a hang-up.

    Each receive waits 20 ms first (a mark's acknowledgement too). After the last packet the
    caller keeps listening for 0.5 s (acknowledging marks) and disconnects; with
    ``hang_up=False`` it stays on the line, silent, until the transport closes. Media and
    marks use ``stream_sid``.
    """

    def __init__(self, packets: int, *, hang_up: bool = True, stream_sid: str = "MZ0") -> None:
        super().__init__()
        self.packets = packets
        self.hang_up = hang_up
        self.stream_sid = stream_sid
        self.seq = 0
        self._acks: list[str] = []

    def messages(self) -> list[dict[str, Any]]:
        """The text messages sent, parsed as JSON."""
        return [json.loads(text) for text in self.texts]

    async def receive(self) -> dict[str, Any]:
        await asyncio.sleep(PACKET_SECS)
        if self._acks:
            return self._ack(self._acks.pop(0))
        if self.seq >= self.packets:
            if not self.hang_up:
                await asyncio.Event().wait()
            await asyncio.sleep(0.5)  # the caller listens to the end, acknowledging marks
            if self._acks:
                return await self.receive()
            return {"type": "websocket.disconnect", "code": 1000}
        self.seq += 1
        n = self.seq
        text = _MEDIA % (n, n, n * 20, _SILENCE, self.stream_sid)
        return {"type": "websocket.receive", "text": text}

    async def send_text(self, data: str) -> None:
        await super().send_text(data)
        if '"mark"' in data:
            message = json.loads(data)
            if message.get("event") == "mark":
                self._acks.append(message["mark"]["name"])

    def _ack(self, name: str) -> dict[str, Any]:
        text = json.dumps({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})
        return {"type": "websocket.receive", "text": text}
