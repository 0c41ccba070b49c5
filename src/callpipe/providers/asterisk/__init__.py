"""Asterisk: the WebSocket channel driver (``chan_websocket``) connecting to the bot.

There is no answer webhook: the dialplan (``Dial(WebSocket/callpipe/c(ulaw))``) or an ARI
application (``externalMedia`` with ``transport=websocket``) makes Asterisk open the media
WebSocket to the ``uri`` of a ``websocket_client.conf`` connection, and its first TEXT frame,
``MEDIA_START``, becomes the call data (``channel_id`` is the call id, ``connection_id`` the
stream id; in JSON format also the channel's variables).

Authentication fits a self-hosted PBX: with ``ASTERISK_WS_AUTH=username:password`` set, the
upgrade must carry those credentials as HTTP Basic auth (``username``/``password`` in
``websocket_client.conf``), and no stream token is needed. An ARI application can instead ask
``POST /`` (with the same Basic credentials, a ``channel_id`` field) for a one-time stream URL and
pass its token to Asterisk (``v(callpipe_token=...)`` on the dial string, or as a
``callpipe_token`` channel variable with JSON control messages). In production mode one of the
two is required, as for every provider; local mode accepts any stream.

Audio is whatever ``c(...)`` chose (µ-law, A-law or signed linear at 8-48 kHz); closing the
socket hangs the channel up.

Call control: with ``ASTERISK_ARI_URL`` (``http://pbx:8088/ari``), ``ASTERISK_ARI_USER`` and
``ASTERISK_ARI_PASSWORD`` set, the serializer gets ARI call control (hang-up of the WebSocket
channel; transfer and DTMF on the caller's channel named by the ``CALLPIPE_CALLER_CHANNEL``
channel variable). Without them nothing changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from callpipe.providers.asterisk.auth import AUTH_ENV, AUTH_HEADER, BasicAuthVerifier
from callpipe.providers.asterisk.dialect import AsteriskDialect
from callpipe.providers.base import (
    Answer,
    AnswerRequest,
    BaseProvider,
    CallData,
    NoHangUp,
    env_value,
)
from callpipe.serializers.asterisk import ControlFormat, parse_control
from callpipe.telephony.asterisk import CALLER_CHANNEL_VARIABLE

if TYPE_CHECKING:
    from callpipe.serializers.base_serializer import FrameSerializer

MAX_VARIABLES = 64
ARI_URL_ENV = "ASTERISK_ARI_URL"
ARI_USER_ENV = "ASTERISK_ARI_USER"
ARI_PASSWORD_ENV = "ASTERISK_ARI_PASSWORD"


def _text(value: Any, limit: int = 128) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


class AsteriskCallData(CallData):
    """What ``MEDIA_START`` says about the channel and its media."""

    channel: str | None = None
    format: str = "ulaw"
    optimal_frame_size: int | None = None
    ptime: int = 20
    control_format: str = "plain-text"
    """The control message format Asterisk used (``plain-text`` or ``json``): we answer in it."""
    channel_variables: dict[str, str] = {}
    media: str = "websocket"
    """``websocket`` (chan_websocket) or ``audiosocket`` (a call on the AudioSocket listener)."""


class AsteriskProvider(BaseProvider):
    name = "asterisk"
    signature_headers = (AUTH_HEADER,)
    webhook_secret_env = (AUTH_ENV,)
    detect_rank = 50  # an Authorization header says little: try every signing provider first
    stream_auth = True
    setup_hint = (
        "Asterisk websocket_client.conf (uri = wss://HOST/ws, username/password as in "
        f"{AUTH_ENV}); ARI apps may POST a channel_id for a one-time stream URL at"
    )
    dialect = AsteriskDialect

    def webhook_verifier(self, secrets: Mapping[str, str]) -> BasicAuthVerifier | None:
        value = secrets.get(AUTH_ENV)
        verifier = BasicAuthVerifier(value) if value else None
        return verifier if verifier is not None and verifier.configured else None

    def matches_webhook(self, fields: Mapping[str, str]) -> bool:
        return "channel_id" in fields and "CallSid" not in fields

    def webhook_call_id(self, fields: Mapping[str, str]) -> str:
        return fields.get("channel_id", "")

    def answer(self, request: AnswerRequest) -> Answer:
        """For an ARI application: the stream URL, and the token to pass to Asterisk."""
        body: dict[str, Any] = {"url": request.url}
        _, sep, token = request.url.partition("/ws/")
        if sep and token:
            body["token"] = token
            body["dial_option"] = f"v(callpipe_token={token})"
        return Answer(json.dumps(body), "application/json")

    def parse_text(self, text: str) -> Mapping[str, Any] | None:
        message = parse_control(text)
        if message is None or message.get("event") != "MEDIA_START":
            return None
        if not text.lstrip().startswith("{"):
            message["control_format"] = "plain-text"
        return message

    def detect_stream(self, message: Mapping[str, Any]) -> CallData | None:
        if message.get("event") != "MEDIA_START":
            return None
        connection_id = _text(message.get("connection_id"))
        channel_id = _text(message.get("channel_id"))
        if connection_id is None and channel_id is None:
            return None
        variables = message.get("channel_variables")
        json_format = message.get("control_format") != "plain-text"
        size = message.get("optimal_frame_size")
        ptime = message.get("ptime")
        return AsteriskCallData(
            stream_id=connection_id or channel_id,
            call_id=channel_id or connection_id,
            channel=_text(message.get("channel")),
            format=_text(message.get("format"), 16) or "ulaw",
            optimal_frame_size=size if isinstance(size, int) and size > 0 else None,
            ptime=ptime if isinstance(ptime, int) and 10 <= ptime <= 200 else 20,
            control_format="json" if json_format else "plain-text",
            channel_variables=_variables(variables),
        )

    def stream_parameters(self, call_data: CallData) -> dict[str, Any]:
        """The channel's variables (where a ``callpipe_token`` may ride)."""
        return dict(call_data.get("channel_variables", {}))

    def serializer(
        self, call_data: CallData, env: Mapping[str, str], no_hang_up: NoHangUp
    ) -> FrameSerializer:
        from callpipe.serializers.asterisk import AsteriskFrameSerializer
        from callpipe.serializers.audiosocket import AudioSocketFrameSerializer

        if call_data.get("media") == "audiosocket":
            return AudioSocketFrameSerializer(call_data.call_id)
        fmt = str(call_data.get("format", "ulaw"))
        control: ControlFormat = (
            "json" if call_data.get("control_format") == "json" else "plain-text"
        )
        ptime = int(call_data.get("ptime", 20))
        params = AsteriskFrameSerializer.InputParams(
            asterisk_format=fmt, control_format=control, ptime=ptime
        )
        variables = call_data.get("channel_variables", {})
        return AsteriskFrameSerializer(
            call_data.call_id,
            params=params,
            ari_url=env_value(env, ARI_URL_ENV),
            ari_user=env_value(env, ARI_USER_ENV),
            ari_password=env_value(env, ARI_PASSWORD_ENV),
            caller_channel_id=variables.get(CALLER_CHANNEL_VARIABLE),
        )


def _variables(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    out: dict[str, str] = {}
    for key, item in list(value.items())[:MAX_VARIABLES]:
        if isinstance(key, str) and isinstance(item, str | int | float | bool):
            out[key[:64]] = str(item)[:256]
    return out


ASTERISK = AsteriskProvider()
