"""Reading a provider's WebSocket handshake, and building the matching transport.

``parse_telephony_websocket`` improves on Pipecat's in the ways its users hit: it has a read
timeout (a silent peer cannot hold a handler forever), reads text *and* binary frames, stops
reading as soon as a ``start`` is recognised (so no media message is swallowed for providers
that send ``start`` first), refuses garbage and unknown dialects with a clear
:class:`~callpipe.errors.ProtocolError`, and caches its result on the socket so the runner and
the bot can both call it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from callpipe.errors import ConfigurationError, ProtocolError
from callpipe.providers import registry
from callpipe.runner.types import (
    CallData,
    DailyRunnerArguments,
    LiveKitRunnerArguments,
    RunnerArguments,
    SmallWebRTCRunnerArguments,
    WebSocketRunnerArguments,
)

if TYPE_CHECKING:
    from fastapi import WebSocket

    from callpipe.transports.base_transport import BaseTransport

logger = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_SECS = 10.0
"""How long to wait for the provider's first messages by default."""

MAX_HANDSHAKE_MESSAGES = 3
"""Messages read before giving up on finding a ``start`` (Twilio/Telnyx/Exotel send 2)."""

_CACHE_ATTR = "_callpipe_parsed_telephony"


class TelephonyHandshakeError(ProtocolError, ValueError):
    """The peer's first messages were not a telephony handshake.

    A ``ValueError`` too, because that is what Pipecat raises here and what its bots catch.
    """


def _detect(message: Mapping[str, Any]) -> tuple[str, CallData] | None:
    """Recognise one message as a provider's stream start; None if it is not one."""
    detected = registry.detect_stream(message)
    return None if detected is None else (detected[0].name, detected[1])


def _decode(raw: str | bytes) -> Mapping[str, Any] | None:
    """A JSON object from a text or binary frame, or a provider's own text handshake syntax
    (Asterisk's plain-text ``MEDIA_START``); None for anything else."""
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return registry.parse_text(raw) if isinstance(raw, str) else None
    return value if isinstance(value, dict) else None


async def _receive(websocket: WebSocket) -> str | bytes | None:
    """The next data frame, or None when the peer disconnected."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    if text is not None:
        return str(text)
    data = message.get("bytes")
    return bytes(data) if data is not None else b""


async def parse_telephony_websocket(
    websocket: WebSocket,
    *,
    timeout: float = HANDSHAKE_TIMEOUT_SECS,  # noqa: ASYNC109
) -> tuple[str, CallData]:
    """Detect the provider from its first messages; return ``(transport_type, call_data)``.

    The socket must be accepted. Reads at most :data:`MAX_HANDSHAKE_MESSAGES` messages, all within
    ``timeout`` seconds. Raises :class:`TelephonyHandshakeError` (a ``ProtocolError`` and a
    ``ValueError``) for a peer that sends nothing (timeout or disconnect), sends only garbage,
    or speaks an unknown dialect. Idempotent: a second call on the same socket returns the
    first result without reading.
    """
    cached = getattr(websocket, _CACHE_ATTR, None)
    if cached is not None:
        return tuple(cached)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen: list[str] = []
    for _ in range(MAX_HANDSHAKE_MESSAGES):
        remaining = deadline - loop.time()
        try:
            if remaining <= 0:
                raise TimeoutError
            raw = await asyncio.wait_for(_receive(websocket), remaining)
        except TimeoutError:
            raise TelephonyHandshakeError(
                f"no telephony handshake within {timeout:g}s (received: {_describe(seen)})"
            ) from None
        if raw is None:
            raise TelephonyHandshakeError(
                "WebSocket closed before the telephony handshake completed "
                f"(received: {_describe(seen)})"
            )
        message = _decode(raw)
        if message is None:
            seen.append("binary frame" if isinstance(raw, bytes) else "non-JSON text")
            continue
        detected = _detect(message)
        if detected is not None:
            setattr(websocket, _CACHE_ATTR, detected)
            logger.debug("telephony handshake: %s stream %s", detected[0], detected[1].stream_id)
            return detected
        seen.append(f"event={message.get('event')!r}")
    raise TelephonyHandshakeError(f"unknown telephony dialect (received: {_describe(seen)})")


def remember_handshake(websocket: WebSocket, transport_type: str, call_data: CallData) -> None:
    """Record a handshake read some other way (an AudioSocket UUID message), so that
    :func:`parse_telephony_websocket` and ``create_transport`` return it without reading."""
    setattr(websocket, _CACHE_ATTR, (transport_type, call_data))


def _describe(seen: list[str]) -> str:
    return ", ".join(seen) if seen else "nothing"


async def create_transport(
    runner_args: RunnerArguments,
    transport_params: Mapping[str, Callable[[], Any]],
) -> Any:
    """Build a ``FastAPIWebsocketTransport`` for this call with the right serializer.

    ``transport_params`` maps a transport name (``"twilio"``, ``"websocket"``, ...) to a
    zero-argument factory returning ``FastAPIWebsocketParams``; only the detected provider's
    factory is called, so entries for other transports (``"daily"``, ``"webrtc"``) may stay.
    Runner arguments for a transport callpipe does not provide (``DailyRunnerArguments``,
    ``SmallWebRTCRunnerArguments``, ``LiveKitRunnerArguments``) raise a
    :class:`~callpipe.errors.ConfigurationError` naming it. Credentials come from the
    environment: ``TWILIO_ACCOUNT_SID``/``TWILIO_AUTH_TOKEN`` (or ``TWILIO_API_KEY``/
    ``TWILIO_API_SECRET``), ``TWILIO_REGION``/``TWILIO_EDGE``, ``TELNYX_API_KEY``,
    ``PLIVO_AUTH_ID``/``PLIVO_AUTH_TOKEN``. Without them the serializer's automatic hang-up is
    turned off (with a warning) instead of failing the call.
    """
    from callpipe.transports.network.fastapi_websocket import FastAPIWebsocketTransport

    if not isinstance(runner_args, WebSocketRunnerArguments):
        raise ConfigurationError(_not_a_phone_call(runner_args))
    websocket = runner_args.websocket
    if runner_args.transport_type == "websocket":
        params = _params_for(transport_params, "websocket")
        return FastAPIWebsocketTransport(websocket=websocket, params=params)
    transport_type, call_data = await parse_telephony_websocket(websocket)
    runner_args.transport_type = transport_type
    runner_args.call_data = call_data
    params = _params_for(transport_params, transport_type)
    params.add_wav_header = False
    params.serializer = build_serializer(transport_type, call_data)
    runner_args._serializer = params.serializer
    return FastAPIWebsocketTransport(websocket=websocket, params=params)


_NOT_PROVIDED: tuple[tuple[type[RunnerArguments], str], ...] = (
    (DailyRunnerArguments, "Daily WebRTC rooms"),
    (SmallWebRTCRunnerArguments, "SmallWebRTC (browser WebRTC) connections"),
    (LiveKitRunnerArguments, "LiveKit rooms"),
)


def _not_a_phone_call(runner_args: RunnerArguments) -> str:
    kind = type(runner_args).__name__
    what = next((name for cls, name in _NOT_PROVIDED if isinstance(runner_args, cls)), None)
    if what is None:
        return f"unsupported runner arguments: {kind}"
    return (
        f"{kind}: {what} are not provided by callpipe, which answers phone calls over a "
        "telephony provider's WebSocket (WebSocketRunnerArguments); the bot's "
        "transport_params entries for other transports are ignored on a phone call"
    )


def _params_for(transport_params: Mapping[str, Callable[[], Any]], name: str) -> Any:
    factory = transport_params.get(name)
    if factory is None:
        raise ConfigurationError(
            f"Missing transport params for {name!r}: pass transport_params={{{name!r}: "
            "lambda: FastAPIWebsocketParams(...)}"
        )
    return factory()


def build_serializer(transport_type: str, call_data: CallData) -> Any:
    """The provider's serializer for this call, credentials from the environment."""
    provider = registry.get(transport_type)
    if provider is None:
        raise ConfigurationError(f"Unsupported telephony provider: {transport_type!r}")
    return provider.serializer(call_data, os.environ, _no_hang_up)


_WARNED_MISSING: set[str] = set()
"""Credential variables already warned about: once per process, not on every (local) call."""


def _no_hang_up(serializer_cls: Any, has_credentials: bool, env_names: str) -> Any:
    """Default params, with auto hang-up off (and a warning) when credentials are missing."""
    if has_credentials:
        return None
    first = env_names not in _WARNED_MISSING
    _WARNED_MISSING.add(env_names)
    logger.log(
        logging.WARNING if first else logging.DEBUG,
        "%s not set: calls will not be hung up through the provider's API at the end "
        "(the WebSocket is still closed)",
        env_names,
    )
    return serializer_cls.InputParams(auto_hang_up=False)


def get_transport_client_id(transport: BaseTransport, client: Any) -> str:
    """Pipecat's deprecated helper: ``transport.get_client_id(client)``."""
    return transport.get_client_id(client)


async def maybe_capture_participant_camera(
    transport: BaseTransport, client: Any, framerate: int = 0
) -> None:
    """Pipecat's deprecated helper for video transports: a phone call has no camera, so this
    does nothing (a multi-transport bot's phone branch runs unchanged)."""


async def maybe_capture_participant_screen(
    transport: BaseTransport, client: Any, framerate: int = 0
) -> None:
    """Pipecat's deprecated helper for video transports: nothing to capture on a phone call."""
