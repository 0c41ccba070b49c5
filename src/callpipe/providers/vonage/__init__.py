"""Vonage Voice API: an NCCO ``connect`` to a websocket endpoint; L16 binary audio.

The stream token rides in the URL path and ``from``/``to``/``call_id`` go as websocket
``headers``, which Vonage echoes at the top level of ``websocket:connected``; so the token is
bound to the webhook's ``uuid``. Vonage signs its webhooks with JWTs, not checked by callpipe.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from callpipe.errors import MissingDependencyError
from callpipe.providers.base import (
    Answer,
    AnswerRequest,
    BaseProvider,
    CallData,
    NoHangUp,
    env_value,
    numbers,
)
from callpipe.providers.vonage.dial import VONAGE_DIALER
from callpipe.providers.vonage.dialect import VonageDialect

if TYPE_CHECKING:
    from callpipe.serializers.base_serializer import FrameSerializer
    from callpipe.telephony.base import CallControl

logger = logging.getLogger(__name__)


class VonageCallData(CallData):
    """Vonage (Voice API WebSocket) adds the negotiated content type."""

    content_type: str = ""


class VonageProvider(BaseProvider):
    name = "vonage"
    binds_call_id = True
    setup_hint = "Vonage application > Answer URL"
    dialect = VonageDialect
    dialer = VONAGE_DIALER

    def matches_webhook(self, fields: Mapping[str, str]) -> bool:
        return "conversation_uuid" in fields

    def webhook_call_id(self, fields: Mapping[str, str]) -> str:
        return fields.get("uuid", "")

    def answer(self, request: AnswerRequest) -> Answer:
        pairs = (("from", request.from_number), ("to", request.to_number))
        ws_headers: dict[str, str] = {k: v for k, v in (*pairs, ("call_id", request.call_id)) if v}
        endpoint = {
            "type": "websocket",
            "uri": request.url,
            "content-type": "audio/l16;rate=16000",
            "headers": ws_headers,
        }
        return Answer(
            json.dumps([{"action": "connect", "endpoint": [endpoint]}]), "application/json"
        )

    def busy(self, reason: str) -> Answer:
        return Answer(
            json.dumps([{"action": "talk", "text": "All lines are busy."}]), "application/json"
        )

    def detect_stream(self, message: Mapping[str, Any]) -> CallData | None:
        if message.get("event") != "websocket:connected":
            return None
        # The NCCO's websocket "headers" are echoed at the top level.
        extras = {
            k: v for k, v in message.items() if k not in ("event", "content-type") and k != "start"
        }
        return VonageCallData(
            stream_id=str(extras.get("stream_id") or extras.get("uuid") or ""),
            call_id=str(extras.get("call_id") or extras.get("uuid") or ""),
            **numbers(extras.get("from"), extras.get("to")),
            content_type=str(message.get("content-type") or ""),
            body=extras,
        )

    def serializer(
        self, call_data: CallData, env: Mapping[str, str], no_hang_up: NoHangUp
    ) -> FrameSerializer:
        from callpipe.serializers.vonage import VonageFrameSerializer

        serializer = VonageFrameSerializer()
        serializer.call_control = vonage_call_control(call_data.call_id, env)
        return serializer


def vonage_call_control(call_uuid: str | None, env: Mapping[str, str]) -> CallControl | None:
    """REST control of the caller's leg (DTMF, transfer) when the application's JWT credentials
    are set; hang-up stays with the socket (the serializer's ``auto_hang_up`` is off)."""
    app_id, key = env_value(env, "VONAGE_APPLICATION_ID"), env_value(env, "VONAGE_PRIVATE_KEY")
    if not (app_id and key and call_uuid):
        return None
    from callpipe.providers.vonage.jwt import VonageJwt
    from callpipe.telephony.vonage import VonageCallControl

    try:
        bearer = VonageJwt(app_id, key)
    except MissingDependencyError as exc:
        logger.warning("vonage call control off: %s", exc)
        return None
    return VonageCallControl(call_uuid=call_uuid, bearer=bearer)


VONAGE = VonageProvider()
