"""Genesys Cloud: an Audio Connector (AudioHook protocol) session straight to the bot.

Genesys has no answer webhook: the Architect flow's *Call Audio Connector* action opens a
WebSocket to the integration's Base Connection URI (``wss://HOST/ws``, plus the action's
connector id) with ``X-API-KEY``, ``Audiohook-Organization-Id``, ``Audiohook-Correlation-Id``,
``Audiohook-Session-Id`` and, with a client secret, ``Signature``/``Signature-Input`` headers.
The runner recognises such an upgrade by its headers and admits it on those (no stream token):
``GENESYS_API_KEY`` must match ``X-API-KEY`` and, with ``GENESYS_CLIENT_SECRET`` (base64, as the
integration shows it), the request signature must verify (see :mod:`.signature`);
``GENESYS_ORGANIZATION_ID`` optionally pins the organization. The first message, ``open``, is the
handshake the provider is detected from; the serializer answers it with ``opened``. Ending the
call is the ``disconnect`` message, so there is no REST call control.
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
from callpipe.providers.genesys.dialect import GenesysDialect
from callpipe.providers.genesys.signature import AudioHookVerifier, decode_client_secret

if TYPE_CHECKING:
    from callpipe.serializers.base_serializer import FrameSerializer

API_KEY_ENV = "GENESYS_API_KEY"
CLIENT_SECRET_ENV = "GENESYS_CLIENT_SECRET"
ORGANIZATION_ENV = "GENESYS_ORGANIZATION_ID"
UPGRADE_HEADER = "audiohook-session-id"


def _text(value: Any) -> str | None:
    return value[:256] if isinstance(value, str) and value else None


class GenesysCallData(CallData):
    """The ``open`` message's identifiers: ``stream_id`` is the AudioHook session id,
    ``call_id`` the conversation id; ``open_message`` is kept for the serializer to answer."""

    organization_id: str | None = None
    input_variables: dict[str, Any] | None = None
    open_message: dict[str, Any] | None = None


class GenesysProvider(BaseProvider):
    name = "genesys"
    stream_secret_env = (API_KEY_ENV, CLIENT_SECRET_ENV, ORGANIZATION_ENV)
    setup_hint = "Genesys Cloud Audio Connector integration > Base Connection URI"
    dialect = GenesysDialect

    def setup_url(self, host: str) -> str:
        return f"wss://{host}/ws"

    def claims_upgrade(self, headers: Mapping[str, str]) -> bool:
        return UPGRADE_HEADER in headers

    def stream_verifier(self, secrets: Mapping[str, str]) -> AudioHookVerifier | None:
        api_key = secrets.get(API_KEY_ENV)
        if not api_key:
            return None
        secret = secrets.get(CLIENT_SECRET_ENV)
        key = decode_client_secret(secret) if secret else None
        if secret and not key:
            return None  # not base64: refuse every upgrade rather than skip the signature
        return AudioHookVerifier(api_key, key, secrets.get(ORGANIZATION_ENV) or None)

    def answer(self, request: AnswerRequest) -> Answer:
        """Genesys never asks (it has no answer webhook): where its stream would connect."""
        note = "Genesys connects here directly; configure wss://HOST/ws as the Base Connection URI"
        return Answer(json.dumps({"websocket": request.url, "note": note}), "application/json")

    def busy(self, reason: str) -> Answer:
        body = {"error": "busy", "reason": reason}
        return Answer(json.dumps(body), "application/json", 503)

    def detect_stream(self, message: Mapping[str, Any]) -> CallData | None:
        if message.get("type") != "open" or message.get("version") != "2":
            return None
        session_id, params = message.get("id"), message.get("parameters")
        if not isinstance(session_id, str) or not session_id or not isinstance(params, dict):
            return None
        if not isinstance(params.get("media"), list):
            return None
        participant = params.get("participant")
        party = participant if isinstance(participant, dict) else {}
        variables = params.get("inputVariables")
        return GenesysCallData(
            stream_id=session_id[:64],
            call_id=_text(params.get("conversationId")) or session_id[:64],
            organization_id=_text(params.get("organizationId")),
            input_variables=dict(variables) if isinstance(variables, dict) else None,
            open_message=dict(message),
            **numbers(_text(party.get("ani")), _text(party.get("dnis"))),
        )

    def stream_parameters(self, call_data: CallData) -> dict[str, Any]:
        return {}

    def serializer(
        self, call_data: CallData, env: Mapping[str, str], no_hang_up: NoHangUp
    ) -> FrameSerializer:
        from callpipe.serializers.genesys import GenesysAudioHookSerializer

        serializer = GenesysAudioHookSerializer()
        open_message = call_data.get("open_message")
        if isinstance(open_message, dict):
            serializer.adopt_open(open_message)
        return serializer


GENESYS = GenesysProvider()
