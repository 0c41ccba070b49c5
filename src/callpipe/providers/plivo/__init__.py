"""Plivo: ``<Stream bidirectional="true">`` answers, audio streams, V3-signed webhooks.

The stream token rides in the URL path; ``from``/``to`` go in ``extraHeaders`` (Plivo allows only
letters and digits in values, so numbers are sent as digits) and come back as ``extra_headers``.
Plivo echoes the webhook's ``CallUUID`` as ``callId``, so the stream token is bound to the call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape, quoteattr

from callpipe.providers.base import (
    XML_DECL,
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
from callpipe.providers.plivo.dial import PLIVO_DIALER
from callpipe.providers.plivo.dialect import PlivoDialect
from callpipe.providers.plivo.signature import verify_plivo_v3

if TYPE_CHECKING:
    from callpipe.serializers.base_serializer import FrameSerializer

SIGNATURE_HEADER = "x-plivo-signature-v3"
NONCE_HEADER = "x-plivo-signature-v3-nonce"


def _digits(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", value)


def parse_extra_headers(raw: Any) -> dict[str, Any]:
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


class PlivoVerifier:
    """``X-Plivo-Signature-V3`` (HMAC-SHA256 of URL, sorted parameters and nonce)."""

    def __init__(self, auth_token: str) -> None:
        self._auth_token = auth_token

    def verify(self, request: SignedWebhook) -> bool:
        grouped: dict[str, str | list[str]] = {}
        for k, v in request.form:
            prev = grouped.get(k)
            grouped[k] = v if prev is None else [*(prev if isinstance(prev, list) else [prev]), v]
        return verify_plivo_v3(
            self._auth_token,
            request.method,
            request.url,
            grouped,
            request.headers.get(NONCE_HEADER),
            request.headers.get(SIGNATURE_HEADER),
        )


class PlivoProvider(BaseProvider):
    name = "plivo"
    signature_headers = (SIGNATURE_HEADER,)
    webhook_secret_env = ("PLIVO_AUTH_TOKEN",)
    binds_call_id = True
    setup_hint = "Plivo application > Answer URL (POST)"
    dialect = PlivoDialect
    dialer = PLIVO_DIALER

    def webhook_verifier(self, secrets: Mapping[str, str]) -> PlivoVerifier | None:
        token = secrets.get("PLIVO_AUTH_TOKEN")
        return PlivoVerifier(token) if token else None

    def matches_webhook(self, fields: Mapping[str, str]) -> bool:
        return "CallUUID" in fields

    def webhook_call_id(self, fields: Mapping[str, str]) -> str:
        return fields.get("CallUUID", "")

    def answer(self, request: AnswerRequest) -> Answer:
        headers = ",".join(
            f"{name}={_digits(value)}"
            for name, value in (("from", request.from_number), ("to", request.to_number))
            if _digits(value)
        )
        extra = f" extraHeaders={quoteattr(headers)}" if headers else ""
        body = (
            f"{XML_DECL}<Response>\n"
            '  <Stream bidirectional="true" keepCallAlive="true" '
            f'contentType="audio/x-mulaw;rate=8000"{extra}>{escape(request.url)}</Stream>\n'
            "</Response>"
        )
        return Answer(body, "application/xml")

    def busy(self, reason: str) -> Answer:
        body = f'{XML_DECL}<Response>\n  <Hangup reason="busy"/>\n</Response>'
        return Answer(body, "application/xml")

    def detect_stream(self, message: Mapping[str, Any]) -> CallData | None:
        start = as_dict(message.get("start"))
        if message.get("event") not in (None, "start"):
            return None
        if not start.get("streamId") or not start.get("callId"):
            return None
        headers = parse_extra_headers(message.get("extra_headers"))
        return CallData(
            stream_id=start["streamId"],
            call_id=start["callId"],
            body=headers,
            **numbers(headers.get("from"), headers.get("to")),
        )

    def serializer(
        self, call_data: CallData, env: Mapping[str, str], no_hang_up: NoHangUp
    ) -> FrameSerializer:
        from callpipe.serializers.plivo import PlivoFrameSerializer

        auth_id, auth_token = env_value(env, "PLIVO_AUTH_ID"), env_value(env, "PLIVO_AUTH_TOKEN")
        return PlivoFrameSerializer(
            call_data.stream_id or "",
            call_data.call_id,
            auth_id=auth_id,
            auth_token=auth_token,
            params=no_hang_up(
                PlivoFrameSerializer, bool(auth_id and auth_token), "PLIVO_AUTH_ID/AUTH_TOKEN"
            ),
        )


PLIVO = PlivoProvider()
