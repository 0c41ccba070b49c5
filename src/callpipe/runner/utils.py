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
from callpipe.runner.types import (
    CallData,
    ExotelCallData,
    RunnerArguments,
    TelnyxCallData,
    VonageCallData,
    WebSocketRunnerArguments,
)

if TYPE_CHECKING:
    from fastapi import WebSocket

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
    start = message.get("start")
    start = start if isinstance(start, Mapping) else {}
    event = message.get("event")
    if event == "start" and start.get("streamSid") and start.get("callSid"):
        params = start.get("customParameters")
        params = dict(params) if isinstance(params, Mapping) else {}
        return "twilio", CallData(
            stream_id=start["streamSid"],
            call_id=start["callSid"],
            body=params,
            **_numbers(params.get("from_number"), params.get("to_number")),
        )
    if message.get("stream_id") and start.get("call_control_id"):
        media_format = start.get("media_format")
        media_format = media_format if isinstance(media_format, Mapping) else {}
        params = start.get("custom_parameters")
        return "telnyx", TelnyxCallData(
            stream_id=message["stream_id"],
            call_id=start["call_control_id"],
            call_control_id=start["call_control_id"],
            outbound_encoding=str(media_format.get("encoding") or "PCMU"),
            **_numbers(str(start.get("from") or ""), str(start.get("to") or "")),
            body=dict(params) if isinstance(params, Mapping) else {},
        )
    if event in (None, "start") and start.get("streamId") and start.get("callId"):
        headers = _parse_plivo_headers(message.get("extra_headers"))
        return "plivo", CallData(
            stream_id=start["streamId"],
            call_id=start["callId"],
            body=headers,
            **_numbers(headers.get("from"), headers.get("to")),
        )
    if event == "start" and start.get("stream_sid") and start.get("call_sid"):
        custom = start.get("custom_parameters")
        return "exotel", ExotelCallData(
            stream_id=start["stream_sid"],
            call_id=start["call_sid"],
            account_sid=str(start.get("account_sid") or ""),
            **_numbers(str(start.get("from") or ""), str(start.get("to") or "")),
            custom_parameters=dict(custom) if isinstance(custom, Mapping) else {},
        )
    if event == "websocket:connected":
        # Vonage Voice API: the NCCO's websocket "headers" are echoed at the top level.
        extras = {
            k: v for k, v in message.items() if k not in ("event", "content-type") and k != "start"
        }
        return "vonage", VonageCallData(
            stream_id=str(extras.get("stream_id") or extras.get("uuid") or ""),
            call_id=str(extras.get("call_id") or extras.get("uuid") or ""),
            **_numbers(extras.get("from"), extras.get("to")),
            content_type=str(message.get("content-type") or ""),
            body=extras,
        )
    return None


def _numbers(from_number: Any, to_number: Any) -> dict[str, Any]:
    """``from``/``to`` by their wire names (the model's aliases)."""
    return {"from": from_number, "to": to_number}


def _parse_plivo_headers(raw: Any) -> dict[str, Any]:
    """Plivo echoes ``extraHeaders`` as ``"k=v,k2=v2"`` (some accounts use ``;``)."""
    if isinstance(raw, Mapping):
        return dict(raw)
    if not isinstance(raw, str) or not raw:
        return {}
    out: dict[str, Any] = {}
    for part in raw.replace(";", ",").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out


def _decode(raw: str | bytes) -> Mapping[str, Any] | None:
    """A JSON object from a text or binary frame; None for anything else."""
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
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


def _describe(seen: list[str]) -> str:
    return ", ".join(seen) if seen else "nothing"


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


async def create_transport(
    runner_args: RunnerArguments,
    transport_params: Mapping[str, Callable[[], Any]],
) -> Any:
    """Build a ``FastAPIWebsocketTransport`` for this call with the right serializer.

    ``transport_params`` maps a transport name (``"twilio"``, ``"websocket"``, ...) to a
    zero-argument factory returning ``FastAPIWebsocketParams``. Credentials come from the
    environment: ``TWILIO_ACCOUNT_SID``/``TWILIO_AUTH_TOKEN`` (or ``TWILIO_API_KEY``/
    ``TWILIO_API_SECRET``), ``TWILIO_REGION``/``TWILIO_EDGE``, ``TELNYX_API_KEY``,
    ``PLIVO_AUTH_ID``/``PLIVO_AUTH_TOKEN``. Without them the serializer's automatic hang-up is
    turned off (with a warning) instead of failing the call.
    """
    from callpipe.transports.network.fastapi_websocket import FastAPIWebsocketTransport

    if not isinstance(runner_args, WebSocketRunnerArguments):
        raise ConfigurationError(f"unsupported runner arguments: {type(runner_args).__name__}")
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
    stream_id = call_data.stream_id or ""
    call_id = call_data.call_id
    if transport_type == "twilio":
        from callpipe.serializers.twilio import TwilioFrameSerializer

        account, token = _env("TWILIO_ACCOUNT_SID"), _env("TWILIO_AUTH_TOKEN")
        key, secret = _env("TWILIO_API_KEY"), _env("TWILIO_API_SECRET")
        has_creds = bool(account and (token or (key and secret)))
        return TwilioFrameSerializer(
            stream_id,
            call_id,
            account_sid=account,
            auth_token=token,
            region=_env("TWILIO_REGION"),
            edge=_env("TWILIO_EDGE"),
            params=_no_hang_up(TwilioFrameSerializer, has_creds, "TWILIO_ACCOUNT_SID/AUTH_TOKEN"),
            api_key_sid=key,
            api_key_secret=secret,
        )
    if transport_type == "telnyx":
        from callpipe.serializers.telnyx import TelnyxFrameSerializer

        api_key = _env("TELNYX_API_KEY")
        return TelnyxFrameSerializer(
            stream_id,
            outbound_encoding=str(call_data.get("outbound_encoding", "PCMU")),
            inbound_encoding="PCMU",
            call_control_id=call_id,
            api_key=api_key,
            params=_no_hang_up(TelnyxFrameSerializer, bool(api_key), "TELNYX_API_KEY"),
        )
    if transport_type == "plivo":
        from callpipe.serializers.plivo import PlivoFrameSerializer

        auth_id, auth_token = _env("PLIVO_AUTH_ID"), _env("PLIVO_AUTH_TOKEN")
        return PlivoFrameSerializer(
            stream_id,
            call_id,
            auth_id=auth_id,
            auth_token=auth_token,
            params=_no_hang_up(
                PlivoFrameSerializer, bool(auth_id and auth_token), "PLIVO_AUTH_ID/AUTH_TOKEN"
            ),
        )
    if transport_type == "exotel":
        from callpipe.serializers.exotel import ExotelFrameSerializer

        return ExotelFrameSerializer(stream_id, call_id)
    if transport_type == "vonage":
        from callpipe.serializers.vonage import VonageFrameSerializer

        return VonageFrameSerializer()
    raise ConfigurationError(f"Unsupported telephony provider: {transport_type!r}")


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
