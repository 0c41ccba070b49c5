"""jambonz: a JSON application answering with the ``listen`` verb (bidirectional streaming).

jambonz posts its call webhook as JSON (``call_sid``, ``from``, ``to``, ``account_sid``,
``application_sid``, ...). The runner answers ``listen`` to ``wss://HOST/ws/<token>`` with
``bidirectionalAudio`` streaming at 8 kHz, ``passDtmf``, mono, followed by ``hangup`` so the call
ends when the bot closes the stream. jambonz connects with subprotocol ``audio.jambonz.org`` and
sends the call's ``callSid`` in its first frame, so the stream token is bound to the call.
Webhooks are verified with ``Jambonz-Signature`` (HMAC-SHA256 with the account's webhook secret,
``JAMBONZ_WEBHOOK_SECRET``). Closing the stream ends the call; with ``JAMBONZ_API_KEY`` (and
``JAMBONZ_API_URL`` when self-hosted) the transport also ends it through jambonz's REST API.
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
    env_value,
    numbers,
)
from callpipe.providers.jambonz.dialect import JambonzDialect
from callpipe.providers.jambonz.signature import SIGNATURE_HEADER, JambonzVerifier

if TYPE_CHECKING:
    from callpipe.serializers.base_serializer import FrameSerializer

SAMPLE_RATE = 8000
_PREAMBLE_KEYS = ("sampleRate", "mixType", "callSid")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class JambonzCallData(CallData):
    """jambonz adds the stream's sample rate and mix type from its first frame."""

    sample_rate: int = SAMPLE_RATE
    mix_type: str = "mono"
    account_sid: str | None = None


class JambonzProvider(BaseProvider):
    name = "jambonz"
    signature_headers = (SIGNATURE_HEADER,)
    webhook_secret_env = ("JAMBONZ_WEBHOOK_SECRET",)
    binds_call_id = True
    setup_hint = "jambonz application > Calling webhook (POST)"
    dialect = JambonzDialect
    subprotocols = JambonzDialect.subprotocols

    def webhook_verifier(self, secrets: Mapping[str, str]) -> JambonzVerifier | None:
        return JambonzVerifier.from_secret(secrets.get("JAMBONZ_WEBHOOK_SECRET"))

    def matches_webhook(self, fields: Mapping[str, str]) -> bool:
        return "call_sid" in fields and "application_sid" in fields

    def webhook_call_id(self, fields: Mapping[str, str]) -> str:
        return fields.get("call_sid", "")

    def answer(self, request: AnswerRequest) -> Answer:
        listen: dict[str, Any] = {
            "verb": "listen",
            "url": request.url,
            "sampleRate": SAMPLE_RATE,
            "mixType": "mono",
            "passDtmf": True,
            "bidirectionalAudio": {
                "enabled": True,
                "streaming": True,
                "sampleRate": SAMPLE_RATE,
            },
        }
        metadata = {"from_number": request.from_number, "to_number": request.to_number}
        metadata = {k: v for k, v in metadata.items() if v}
        if metadata:
            listen["metadata"] = metadata
        return Answer(json.dumps([listen, {"verb": "hangup"}]), "application/json")

    def busy(self, reason: str) -> Answer:
        decline = {"verb": "sip:decline", "status": 486, "reason": "Busy Here"}
        return Answer(json.dumps([decline]), "application/json")

    def detect_stream(self, message: Mapping[str, Any]) -> CallData | None:
        if not all(k in message for k in _PREAMBLE_KEYS) or "event" in message:
            return None
        call_sid = message.get("callSid")
        if not isinstance(call_sid, str) or not call_sid:
            return None
        rate = message.get("sampleRate")
        extras = {k: v for k, v in message.items() if k not in _PREAMBLE_KEYS}
        return JambonzCallData(
            stream_id=call_sid,
            call_id=call_sid,
            sample_rate=rate if isinstance(rate, int) else SAMPLE_RATE,
            mix_type=str(message.get("mixType") or "mono"),
            account_sid=_text(message.get("accountSid")),
            body=extras,
            **numbers(_text(message.get("from")), _text(message.get("to"))),
        )

    def serializer(
        self, call_data: CallData, env: Mapping[str, str], no_hang_up: NoHangUp
    ) -> FrameSerializer:
        from callpipe.serializers.jambonz import JambonzFrameSerializer

        rate = int(call_data.get("sample_rate", SAMPLE_RATE))
        account = call_data.get("account_sid") or env_value(env, "JAMBONZ_ACCOUNT_SID")
        api_key = env_value(env, "JAMBONZ_API_KEY")
        has_creds = bool(call_data.call_id and account and api_key)
        hang_up = no_hang_up(JambonzFrameSerializer, has_creds, "JAMBONZ_API_KEY")
        params = JambonzFrameSerializer.InputParams(jambonz_sample_rate=rate)
        if hang_up is not None:
            params = JambonzFrameSerializer.InputParams(
                jambonz_sample_rate=rate, auto_hang_up=False
            )
        return JambonzFrameSerializer(
            call_data.call_id,
            params=params,
            account_sid=account,
            api_key=api_key,
            base_url=env_value(env, "JAMBONZ_API_URL"),
        )


JAMBONZ = JambonzProvider()
