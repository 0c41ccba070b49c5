"""Vonage Voice API: an NCCO ``connect`` to a websocket endpoint; L16 binary audio.

The stream token rides in the URL path and ``from``/``to``/``call_id`` go as websocket
``headers``, which Vonage echoes at the top level of ``websocket:connected``; so the token is
bound to the webhook's ``uuid``. Vonage signs its webhooks (answer and event) with an HS256 JWT
in ``Authorization``; with ``VONAGE_SIGNATURE_SECRET`` set the runner verifies them
(:mod:`callpipe.providers.vonage.signature`), so Vonage needs no ``--insecure``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from callpipe.providers.base import (
    Answer,
    AnswerRequest,
    BaseProvider,
    CallData,
    NoHangUp,
    numbers,
)
from callpipe.providers.vonage.dial import VONAGE_DIALER
from callpipe.providers.vonage.dialect import VonageDialect
from callpipe.providers.vonage.signature import SECRET_ENV, SIGNATURE_HEADER, VonageVerifier

if TYPE_CHECKING:
    from callpipe.serializers.base_serializer import FrameSerializer


class VonageCallData(CallData):
    """Vonage (Voice API WebSocket) adds the negotiated content type."""

    content_type: str = ""


class VonageProvider(BaseProvider):
    name = "vonage"
    signature_headers = (SIGNATURE_HEADER,)
    webhook_secret_env = (SECRET_ENV,)
    binds_call_id = True
    setup_hint = "Vonage application > Answer URL"
    dialect = VonageDialect
    dialer = VONAGE_DIALER

    def webhook_verifier(self, secrets: Mapping[str, str]) -> VonageVerifier | None:
        return VonageVerifier.from_secret(secrets.get(SECRET_ENV))

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
        from callpipe.providers.vonage.call_control import vonage_call_control
        from callpipe.serializers.vonage import VonageFrameSerializer

        serializer = VonageFrameSerializer()
        serializer.call_control = vonage_call_control(call_data.call_id, env)
        return serializer


VONAGE = VonageProvider()
