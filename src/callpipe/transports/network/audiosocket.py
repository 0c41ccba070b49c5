"""An AudioSocket TCP connection presented as a WebSocket, so the WebSocket transport serves it.

AudioSocket (see :mod:`callpipe.serializers.audiosocket`) is one call per TCP connection,
framed by a 3-byte header. :func:`audiosocket_websocket` wraps the connection's streams in a
Starlette :class:`~starlette.websockets.WebSocket` over a tiny ASGI bridge: each whole AudioSocket
message (header included) is one binary "WebSocket message" in either direction, and closing the
WebSocket sends AudioSocket's hang-up (``0x00 0x00 0x00``) and closes the connection. The
unchanged :class:`~callpipe.transports.network.fastapi_websocket.FastAPIWebsocketTransport` then
does everything else: input, VAD, paced output (AudioSocket needs the sender to pace), barge-in,
hang-up, the flood guard and the write timeout, with the ``AudioSocketFrameSerializer``.

A silent or hostile peer cannot hold the call or the loop: each read has a deadline
(``read_timeout``; Asterisk sends audio every 20 ms), a header announcing more than
``max_payload`` bytes ends the connection before anything is buffered, and bad kinds are the
serializer's problem (counted and skipped).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from starlette.types import Message
from starlette.websockets import WebSocket

from callpipe.errors import ProtocolError
from callpipe.serializers.audiosocket import HANGUP_MESSAGE, HEADER_BYTES, parse_header

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AudioSocketLimits:
    """Bounds on one AudioSocket connection."""

    max_payload: int = 8192
    """Largest payload accepted (20 ms of 48 kHz PCM16 is 1920 bytes; the protocol allows 65535)."""
    read_timeout: float = 10.0
    """Seconds without a complete message before the connection counts as dead."""
    handshake_timeout: float = 5.0
    """Seconds for the first message (the UUID) after the connection opens."""


class ProtocolViolation(ProtocolError):
    """The peer broke the framing (oversized payload): the connection is dropped."""


async def read_message(
    reader: asyncio.StreamReader, limits: AudioSocketLimits, within: float | None = None
) -> bytes | None:
    """One whole message (header and payload), or None at EOF or after the read deadline.

    Raises :class:`ProtocolViolation` for a payload over ``limits.max_payload``.
    """
    try:
        async with asyncio.timeout(limits.read_timeout if within is None else within):
            header = await reader.readexactly(HEADER_BYTES)
            _, length = parse_header(header)
            if length > limits.max_payload:
                raise ProtocolViolation(f"payload of {length} bytes")
            return header + (await reader.readexactly(length) if length else b"")
    except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
        return None


class _Bridge:
    """ASGI ``receive``/``send`` over one AudioSocket connection."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        limits: AudioSocketLimits,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._limits = limits
        self._connected = False
        self._gone = False

    async def receive(self) -> Message:
        if not self._connected:
            self._connected = True
            return {"type": "websocket.connect"}
        if self._gone:
            return {"type": "websocket.disconnect", "code": 1006}
        try:
            message = await read_message(self._reader, self._limits)
        except ProtocolViolation as exc:
            logger.warning("audiosocket %s: dropping the connection: %s", self.peer, exc)
            message = None
        if message is None:
            self._gone = True
            return {"type": "websocket.disconnect", "code": 1006}
        return {"type": "websocket.receive", "bytes": message}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.send":
            data = message.get("bytes")
            if data is None or self._gone:
                return  # AudioSocket has no text messages
            self._writer.write(data)
            await self._writer.drain()  # bounded by the transport's write timeout
        elif kind == "websocket.close":
            await self.close(hang_up=True)

    async def close(self, *, hang_up: bool) -> None:
        writer = self._writer
        if writer.is_closing():
            return
        try:
            if hang_up and not self._gone:
                writer.write(HANGUP_MESSAGE)
            writer.close()
            async with asyncio.timeout(1.0):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            pass

    @property
    def peer(self) -> str:
        peer: Any = self._writer.get_extra_info("peername")
        return str(peer[0]) if isinstance(peer, tuple) and peer else "-"


def audiosocket_websocket(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    limits: AudioSocketLimits | None = None,
) -> WebSocket:
    """A not-yet-accepted WebSocket whose messages are this connection's AudioSocket messages."""
    bridge = _Bridge(reader, writer, limits or AudioSocketLimits())
    peer: Any = writer.get_extra_info("peername")
    local: Any = writer.get_extra_info("sockname")
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/audiosocket",
        "raw_path": b"/audiosocket",
        "query_string": b"",
        "headers": [],
        "client": tuple(peer[:2]) if isinstance(peer, tuple) else None,
        "server": tuple(local[:2]) if isinstance(local, tuple) else None,
        "subprotocols": [],
        "extensions": {},
        "state": {},
    }
    return WebSocket(scope, bridge.receive, bridge.send)
