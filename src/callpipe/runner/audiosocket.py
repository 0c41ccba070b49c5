"""The AudioSocket listener: Asterisk's ``AudioSocket()`` calls over TCP, beside the HTTP server.

``--audiosocket-port PORT`` (``RunnerConfig.audiosocket_port``) makes the runner listen for
Asterisk's ``AudioSocket(<uuid>,<host>:<port>)`` dialplan application (and ARI ``externalMedia``
with ``encapsulation=audiosocket``). Each connection is one call: its UUID message becomes the
call data (``transport_type`` ``"asterisk"``, ``call_data.media == "audiosocket"``) and the bot
runs exactly as for a WebSocket call, through the same call slots, drain, records and
``create_transport`` (the connection is presented as a WebSocket, see
:mod:`callpipe.transports.network.audiosocket`).

AudioSocket has no authentication at all: anyone who can reach the port can place a call on
the bot's (paid) speech services. The listener binds to loopback by default
(``--audiosocket-host``); bind it to a private address the PBX alone can reach, never to a
public one, or firewall it. Connection guards: a cap on connections waiting for their UUID (in
total and per address), a deadline for the UUID, per-read deadlines and a payload cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
import uuid

from starlette.websockets import WebSocketDisconnect

from callpipe.errors import ConfigurationError
from callpipe.log import mask
from callpipe.providers.asterisk import ASTERISK, AsteriskCallData
from callpipe.runner.app import RunnerState, bot_failure_reason
from callpipe.runner.calls import CALLS_REFUSED, HANDSHAKE_SECONDS, ActiveCall
from callpipe.runner.types import WebSocketRunnerArguments
from callpipe.runner.utils import remember_handshake
from callpipe.serializers.audiosocket import KIND_UUID, parse_header, parse_uuid
from callpipe.transports.network.audiosocket import (
    AudioSocketLimits,
    ProtocolViolation,
    audiosocket_websocket,
    read_message,
)

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"


def is_private_host(host: str) -> bool:
    """Loopback or a private-network address (where an unauthenticated listener may bind)."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if address.is_unspecified:  # 0.0.0.0 or :: binds every interface, public ones too
        return False
    return address.is_loopback or address.is_private


class AudioSocketServer:
    """One process's AudioSocket listener, sharing the runner's call registry and bot."""

    def __init__(
        self,
        state: RunnerState,
        limits: AudioSocketLimits | None = None,
        *,
        max_pending_per_address: int = 8,
        max_pending: int = 64,
    ) -> None:
        self._state = state
        self._limits = limits or AudioSocketLimits()
        self._max_pending = max_pending
        self._max_pending_per_address = max_pending_per_address
        self._pending: dict[str, int] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> tuple[str, int] | None:
        if self._server is None or not self._server.sockets:
            return None
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def start(self, host: str = DEFAULT_HOST, port: int = 0) -> tuple[str, int]:
        """Listen on ``host:port`` (0: a free port); return the bound address."""
        if not is_private_host(host):
            logger.warning(
                "AudioSocket on %s: it has no authentication; anyone who reaches this port can "
                "place calls (bind it to a private address the PBX alone can reach)",
                host,
            )
        self._server = await asyncio.start_server(self._on_connection, host, port, reuse_port=True)
        address = self.address
        assert address is not None
        logger.info("AudioSocket listening on %s:%d (no authentication)", *address)
        return address

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()

    def _begin_pending(self, address: str) -> str | None:
        if sum(self._pending.values()) >= self._max_pending:
            return "too many pending connections"
        if self._pending.get(address, 0) >= self._max_pending_per_address:
            return "too many pending connections from this address"
        self._pending[address] = self._pending.get(address, 0) + 1
        return None

    def _end_pending(self, address: str) -> None:
        left = self._pending.get(address, 0) - 1
        if left > 0:
            self._pending[address] = left
        else:
            self._pending.pop(address, None)

    async def _handshake(self, reader: asyncio.StreamReader) -> str | None:
        """The call's UUID from the first message, or None (timeout, EOF, not a UUID)."""
        try:
            first = await read_message(reader, self._limits, self._limits.handshake_timeout)
        except ProtocolViolation:
            return None
        if first is None:
            return None
        kind, _ = parse_header(first[:3])
        return parse_uuid(first[3:]) if kind == KIND_UUID else None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state = self._state
        calls = state.calls
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "-"
        refusal = calls.refusal_reason() or self._begin_pending(address)
        if refusal is not None:
            CALLS_REFUSED.inc(stage="audiosocket", reason=refusal)
            logger.warning("refusing AudioSocket connection from %s: %s", address, refusal)
            return
        started = time.monotonic()
        try:
            call_uuid = await self._handshake(reader)
        finally:
            self._end_pending(address)
        if call_uuid is None:
            CALLS_REFUSED.inc(stage="audiosocket", reason="handshake")
            logger.warning("refusing AudioSocket connection from %s: no UUID message", address)
            return
        HANDSHAKE_SECONDS.observe(time.monotonic() - started, provider=ASTERISK.name)
        if not calls.reserve():
            reason = calls.refusal_reason() or "unavailable"
            CALLS_REFUSED.inc(stage="audiosocket", reason=reason)
            logger.warning("refusing AudioSocket call %s: %s", mask(call_uuid), reason)
            return
        try:
            await self._run_call(reader, writer, call_uuid)
        finally:
            calls.release()

    async def _run_call(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, call_uuid: str
    ) -> None:
        state = self._state
        websocket = audiosocket_websocket(reader, writer, self._limits)
        await websocket.accept()
        call_data = AsteriskCallData(
            stream_id=call_uuid, call_id=call_uuid, format="slin", media="audiosocket"
        )
        remember_handshake(websocket, ASTERISK.name, call_data)
        args = WebSocketRunnerArguments(websocket, session_id=str(uuid.uuid4()))
        args.body = dict(state.config.body)
        args.cli_args = state.config.cli_args
        args.transport_type = ASTERISK.name
        args.call_data = call_data
        call = ActiveCall(args, ASTERISK.name)
        state.calls.register(call)
        masked = mask(call_uuid)
        logger.info(
            "call started (asterisk AudioSocket call %s, session %s)", masked, args.session_id
        )
        record_id = state.records.begin_call(ASTERISK.name, args)
        outcome = "ok"
        try:
            with state.records.serving(record_id):
                await state.bot(args)
        except WebSocketDisconnect:
            outcome = "hangup"  # Asterisk hung up while the bot was still talking to it
        except ConfigurationError as exc:
            outcome = "error"  # the bot's own setup: the message says what to fix
            logger.error("bot() failed (asterisk AudioSocket call %s): %s", masked, exc)
        except Exception as exc:
            outcome = "error"
            logger.exception(
                "bot() failed (asterisk AudioSocket call %s): %s", masked, bot_failure_reason(exc)
            )
        finally:
            state.records.end(record_id, outcome)
            state.calls.unregister(call, outcome)
            logger.info("call ended (asterisk AudioSocket call %s, %s)", masked, outcome)
