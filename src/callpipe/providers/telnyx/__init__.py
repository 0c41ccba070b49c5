"""Telnyx: TeXML ``<Connect><Stream bidirectionalMode="rtp">``, Ed25519-signed webhooks.

The stream token rides in the URL path; Telnyx puts ``from``/``to`` in its ``start`` itself and
names the codec it sends (``media_format.encoding``). Telnyx's ``start`` carries its own
``call_control_id``, not the TeXML webhook's ``CallSid``, so the token is not bound to the call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from callpipe.providers.base import (
    Answer,
    AnswerRequest,
    BaseProvider,
    CallData,
    NoHangUp,
    SignedWebhook,
    as_dict,
    env_value,
    numbers,
)
from callpipe.providers.telnyx.dial import TELNYX_DIALER
from callpipe.providers.telnyx.dialect import TelnyxDialect
from callpipe.providers.telnyx.signature import TelnyxVerifier
from callpipe.providers.twilio import connect_stream, reject_busy

if TYPE_CHECKING:
    from callpipe.serializers.base_serializer import FrameSerializer

SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"


class TelnyxCallData(CallData):
    """Telnyx adds the codec Telnyx sends us (its ``media_format.encoding``).

    ``call_id`` is Telnyx's ``call_control_id`` (Pipecat 1.x normalises it so); the key
    ``call_control_id`` is kept too, because bots written for earlier releases read it.
    """

    outbound_encoding: str = "PCMU"
    call_control_id: str | None = None


class TelnyxWebhookVerifier:
    """Adapts :class:`TelnyxVerifier` (body, signature, timestamp) to a signed webhook."""

    def __init__(self, verifier: TelnyxVerifier) -> None:
        self._verifier = verifier

    def verify(self, request: SignedWebhook) -> bool:
        headers = request.headers
        return self._verifier.verify(
            request.body, headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER)
        )


class TelnyxProvider(BaseProvider):
    name = "telnyx"
    signature_headers = (SIGNATURE_HEADER,)
    webhook_secret_env = ("TELNYX_PUBLIC_KEY",)
    setup_hint = "Telnyx TeXML application > Voice URL (POST)"
    dialect = TelnyxDialect
    dialer = TELNYX_DIALER

    def webhook_verifier(self, secrets: Mapping[str, str]) -> TelnyxWebhookVerifier | None:
        key = secrets.get("TELNYX_PUBLIC_KEY")
        return TelnyxWebhookVerifier(TelnyxVerifier(key)) if key else None

    def answer(self, request: AnswerRequest) -> Answer:
        return connect_stream(request.url, attributes=' bidirectionalMode="rtp"', parameters={})

    def busy(self, reason: str) -> Answer:
        return reject_busy()

    def detect_stream(self, message: Mapping[str, Any]) -> CallData | None:
        start = as_dict(message.get("start"))
        if not message.get("stream_id") or not start.get("call_control_id"):
            return None
        media_format = as_dict(start.get("media_format"))
        return TelnyxCallData(
            stream_id=message["stream_id"],
            call_id=start["call_control_id"],
            call_control_id=start["call_control_id"],
            outbound_encoding=str(media_format.get("encoding") or "PCMU"),
            **numbers(str(start.get("from") or ""), str(start.get("to") or "")),
            body=as_dict(start.get("custom_parameters")),
        )

    def serializer(
        self, call_data: CallData, env: Mapping[str, str], no_hang_up: NoHangUp
    ) -> FrameSerializer:
        from callpipe.serializers.telnyx import TelnyxFrameSerializer

        api_key = env_value(env, "TELNYX_API_KEY")
        return TelnyxFrameSerializer(
            call_data.stream_id or "",
            outbound_encoding=str(call_data.get("outbound_encoding", "PCMU")),
            inbound_encoding="PCMU",
            call_control_id=call_data.call_id,
            api_key=api_key,
            params=no_hang_up(TelnyxFrameSerializer, bool(api_key), "TELNYX_API_KEY"),
        )


TELNYX = TelnyxProvider()
