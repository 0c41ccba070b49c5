"""Twilio: TwiML ``<Connect><Stream>`` answers, Media Streams, ``X-Twilio-Signature`` webhooks.

The stream token rides in the URL path (Twilio forbids query strings there); the caller's numbers
go as ``<Parameter>``s and come back in ``start.customParameters``. Twilio echoes the webhook's
``CallSid`` in its ``start``, so the stream token is bound to the call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

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
from callpipe.providers.twilio.dial import TWILIO_DIALER
from callpipe.providers.twilio.dialect import TwilioDialect
from callpipe.providers.twilio.signature import twilio_signature_algorithm, verify_twilio

if TYPE_CHECKING:
    from callpipe.serializers.base_serializer import FrameSerializer

SIGNATURE_HEADER = "x-twilio-signature"
SETTINGS_HEADER = "x-twilio-webhooks-signature-settings"


def connect_stream(url: str, *, attributes: str = "", parameters: Mapping[str, str]) -> Answer:
    """``<Response><Connect><Stream url=…>`` (TwiML; TeXML and cXML read the same document)."""
    params = "".join(
        f"\n      <Parameter name={quoteattr(name)} value={quoteattr(value)}/>"
        for name, value in parameters.items()
        if value
    )
    close = "\n    </Stream>" if params else "</Stream>"
    body = (
        f"{XML_DECL}<Response>\n  <Connect>\n"
        f"    <Stream url={quoteattr(url)}{attributes}>{params}{close}\n"
        "  </Connect>\n</Response>"
    )
    return Answer(body, "application/xml")


def reject_busy() -> Answer:
    """``<Reject reason="busy"/>``: the caller hears busy (TwiML, TeXML and cXML)."""
    return Answer(
        f'{XML_DECL}<Response>\n  <Reject reason="busy"/>\n</Response>', "application/xml"
    )


def media_streams_start(message: Mapping[str, Any]) -> CallData | None:
    """A Media Streams ``start`` (Twilio's shape, also SignalWire's) as call data."""
    start = as_dict(message.get("start"))
    if message.get("event") != "start" or not start.get("streamSid") or not start.get("callSid"):
        return None
    params = as_dict(start.get("customParameters"))
    return CallData(
        stream_id=start["streamSid"],
        call_id=start["callSid"],
        body=params,
        **numbers(params.get("from_number"), params.get("to_number")),
    )


class TwilioVerifier:
    """``X-Twilio-Signature`` with the Auth Token (HMAC-SHA1) or a webhook SharedKey."""

    def __init__(
        self, auth_token: str | None, shared_keys: tuple[str, ...], header: str = SIGNATURE_HEADER
    ) -> None:
        self._auth_token = auth_token or ""
        self._shared_keys = shared_keys
        self._header = header

    def verify(self, request: SignedWebhook) -> bool:
        settings = request.headers.get(SETTINGS_HEADER)
        # A SharedKey-signed webhook names its algorithm; the Auth Token signs with HMAC-SHA1.
        secrets = list(self._shared_keys) if settings else [self._auth_token]
        algorithm = twilio_signature_algorithm(settings)
        raw = request.body if request.method == "POST" and not request.is_form else None
        signature = request.headers.get(self._header)
        return any(
            verify_twilio(
                secret, request.url, request.form, signature, algorithm=algorithm, body=raw
            )
            for secret in secrets
            if secret
        )


class TwilioProvider(BaseProvider):
    name = "twilio"
    signature_headers = (SIGNATURE_HEADER,)
    webhook_secret_env = ("TWILIO_AUTH_TOKEN", "TWILIO_WEBHOOK_SHARED_KEY")
    binds_call_id = True
    detect_rank = 1  # Twilio-compatible providers (SignalWire) are recognised first
    setup_hint = "Twilio number > Voice > 'A call comes in' webhook (HTTP POST)"
    dialect = TwilioDialect
    dialer = TWILIO_DIALER

    def webhook_verifier(self, secrets: Mapping[str, str]) -> TwilioVerifier | None:
        shared = secrets.get("TWILIO_WEBHOOK_SHARED_KEY") or ""
        keys = tuple(k.strip() for k in shared.split(",") if k.strip())
        token = secrets.get("TWILIO_AUTH_TOKEN")
        return TwilioVerifier(token, keys) if token or keys else None

    def matches_webhook(self, fields: Mapping[str, str]) -> bool:
        return "CallSid" in fields

    def answer(self, request: AnswerRequest) -> Answer:
        parameters = {"from_number": request.from_number, "to_number": request.to_number}
        return connect_stream(request.url, parameters=parameters)

    def busy(self, reason: str) -> Answer:
        return reject_busy()

    def detect_stream(self, message: Mapping[str, Any]) -> CallData | None:
        return media_streams_start(message)

    def serializer(
        self, call_data: CallData, env: Mapping[str, str], no_hang_up: NoHangUp
    ) -> FrameSerializer:
        from callpipe.serializers.twilio import TwilioFrameSerializer

        account, token = env_value(env, "TWILIO_ACCOUNT_SID"), env_value(env, "TWILIO_AUTH_TOKEN")
        key, secret = env_value(env, "TWILIO_API_KEY"), env_value(env, "TWILIO_API_SECRET")
        has_creds = bool(account and (token or (key and secret)))
        return TwilioFrameSerializer(
            call_data.stream_id or "",
            call_data.call_id,
            account_sid=account,
            auth_token=token,
            region=env_value(env, "TWILIO_REGION"),
            edge=env_value(env, "TWILIO_EDGE"),
            params=no_hang_up(TwilioFrameSerializer, has_creds, "TWILIO_ACCOUNT_SID/AUTH_TOKEN"),
            api_key_sid=key,
            api_key_secret=secret,
        )


TWILIO = TwilioProvider()
