"""SignalWire: cXML (LaML) ``<Connect><Stream>`` answers, Twilio-compatible Media Streams.

Webhooks are Twilio-shaped form POSTs signed with the project's Signing Key in
``X-SignalWire-Signature`` (the same HMAC-SHA1 of URL + sorted parameters as Twilio's). Streams
speak Twilio's messages; what tells a SignalWire stream (and an unsigned webhook in local mode)
apart from Twilio's is the shape of its ids: SignalWire's call SIDs and project ids are UUIDs,
Twilio's are ``CA…``/``AC…``. SignalWire echoes the webhook's ``CallSid`` in ``start.callSid``,
so the stream token is bound to the call. Call control uses the project's Space REST host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from callpipe.providers.base import (
    Answer,
    AnswerRequest,
    BaseProvider,
    CallData,
    NoHangUp,
    env_value,
)
from callpipe.providers.signalwire.dialect import SignalWireDialect
from callpipe.providers.signalwire.signature import SIGNATURE_HEADER, SignalWireVerifier
from callpipe.providers.twilio import (
    connect_stream,
    media_streams_start,
    reject_busy,
)

if TYPE_CHECKING:
    from callpipe.serializers.base_serializer import FrameSerializer

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_signalwire_id(value: Any) -> bool:
    """SignalWire ids are UUIDs (Twilio's are two letters and 32 hex digits)."""
    return isinstance(value, str) and _UUID.match(value) is not None


class SignalWireProvider(BaseProvider):
    name = "signalwire"
    signature_headers = (SIGNATURE_HEADER,)
    webhook_secret_env = ("SIGNALWIRE_SIGNING_KEY",)
    binds_call_id = True
    detect_rank = 0  # before Twilio, whose shapes it shares
    setup_hint = "SignalWire phone number > Voice settings > cXML/LaML webhook URL (POST)"
    dialect = SignalWireDialect

    def webhook_verifier(self, secrets: Mapping[str, str]) -> SignalWireVerifier | None:
        key = secrets.get("SIGNALWIRE_SIGNING_KEY")
        return SignalWireVerifier(key) if key else None

    def matches_webhook(self, fields: Mapping[str, str]) -> bool:
        return is_signalwire_id(fields.get("CallSid")) or is_signalwire_id(fields.get("AccountSid"))

    def answer(self, request: AnswerRequest) -> Answer:
        parameters = {"from_number": request.from_number, "to_number": request.to_number}
        return connect_stream(request.url, parameters=parameters)

    def busy(self, reason: str) -> Answer:
        return reject_busy()

    def detect_stream(self, message: Mapping[str, Any]) -> CallData | None:
        call_data = media_streams_start(message)
        if call_data is None or not is_signalwire_id(call_data.call_id):
            return None
        return call_data

    def serializer(
        self, call_data: CallData, env: Mapping[str, str], no_hang_up: NoHangUp
    ) -> FrameSerializer:
        from callpipe.serializers.signalwire import SignalWireFrameSerializer

        project = env_value(env, "SIGNALWIRE_PROJECT_ID")
        token = env_value(env, "SIGNALWIRE_API_TOKEN")
        space = env_value(env, "SIGNALWIRE_SPACE_URL")
        return SignalWireFrameSerializer(
            call_data.stream_id or "",
            call_data.call_id,
            project_id=project,
            api_token=token,
            space=space,
            params=no_hang_up(
                SignalWireFrameSerializer,
                bool(project and token and space),
                "SIGNALWIRE_PROJECT_ID/API_TOKEN/SPACE_URL",
            ),
        )


SIGNALWIRE = SignalWireProvider()
