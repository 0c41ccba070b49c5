"""Exotel: the Voicebot applet fetches the WebSocket URL from us; raw PCM16 in JSON messages.

Exotel does not POST a webhook to be answered: its applet can fetch the stream URL from an HTTPS
endpoint, so ``GET``/``POST /`` answers JSON whose ``url`` carries the token in the path. Exotel
signs nothing; with ``EXOTEL_WEBHOOK_AUTH`` the runner requires the HTTP Basic credentials that
Exotel documents for the applet URL (:mod:`callpipe.providers.exotel.signature`). Its ``start``
carries the applet URL's custom parameters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field

from callpipe.providers.base import (
    Answer,
    AnswerRequest,
    BaseProvider,
    CallData,
    NoHangUp,
    as_dict,
    numbers,
)
from callpipe.providers.exotel.dial import EXOTEL_DIALER
from callpipe.providers.exotel.dialect import ExotelDialect
from callpipe.providers.exotel.signature import SECRET_ENV, SIGNATURE_HEADER, ExotelVerifier

if TYPE_CHECKING:
    from callpipe.serializers.base_serializer import FrameSerializer


class ExotelCallData(CallData):
    """Exotel adds its account and the custom parameters configured on the applet URL."""

    account_sid: str = ""
    custom_parameters: dict[str, Any] = Field(default_factory=dict)


class ExotelProvider(BaseProvider):
    name = "exotel"
    signature_headers = (SIGNATURE_HEADER,)
    webhook_secret_env = (SECRET_ENV,)
    setup_hint = "Exotel Voicebot applet > URL (dynamic endpoint)"
    dialect = ExotelDialect
    dialer = EXOTEL_DIALER

    def webhook_verifier(self, secrets: Mapping[str, str]) -> ExotelVerifier | None:
        credentials = secrets.get(SECRET_ENV)
        return ExotelVerifier(credentials) if credentials else None

    def matches_webhook(self, fields: Mapping[str, str]) -> bool:
        return "CallFrom" in fields

    def answer(self, request: AnswerRequest) -> Answer:
        doc = {
            "url": request.url,
            "websocket_url": request.url,
            "note": "Configure this endpoint (or the WebSocket URL) in your Exotel Voicebot applet",
        }
        return Answer(json.dumps(doc), "application/json")

    def detect_stream(self, message: Mapping[str, Any]) -> CallData | None:
        start = as_dict(message.get("start"))
        if message.get("event") != "start" or not start.get("stream_sid"):
            return None
        if not start.get("call_sid"):
            return None
        return ExotelCallData(
            stream_id=start["stream_sid"],
            call_id=start["call_sid"],
            account_sid=str(start.get("account_sid") or ""),
            **numbers(str(start.get("from") or ""), str(start.get("to") or "")),
            custom_parameters=as_dict(start.get("custom_parameters")),
        )

    def stream_parameters(self, call_data: CallData) -> dict[str, Any]:
        params = dict(call_data.body)
        params.update(as_dict(call_data.get("custom_parameters", {})))
        return params

    def serializer(
        self, call_data: CallData, env: Mapping[str, str], no_hang_up: NoHangUp
    ) -> FrameSerializer:
        from callpipe.serializers.exotel import ExotelFrameSerializer

        return ExotelFrameSerializer(call_data.stream_id or "", call_data.call_id)


EXOTEL = ExotelProvider()
