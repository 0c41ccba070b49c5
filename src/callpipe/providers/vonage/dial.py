"""Vonage outbound dialing: ``POST /v1/calls`` with an application JWT.

``Authorization: Bearer <JWT>`` (RS256, signed with the application's private key:
:mod:`callpipe.providers.vonage.jwt`), JSON ``to``/``from`` phone endpoints,
``answer_url``/``answer_method``, ``event_url``, ``advanced_machine_detection``. The answer (201)
holds ``uuid``; events carry ``uuid`` and ``status``, AMD verdicts as ``status`` human/machine
or an advanced-detection ``sub_state``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from callpipe.errors import ConfigurationError
from callpipe.telephony.dial.types import (
    AmdResult,
    CreateCall,
    DialRequest,
    DialStatus,
    ProviderAccount,
    normalize_status,
)

HOST = "https://api.nexmo.com"

_AMD_WORDS: dict[str, AmdResult] = {
    "human": "human",
    "machine": "machine_start",
    "beep_start": "machine_end_beep",
    "beep_timeout": "machine_end_silence",
}


class VonageDialer:
    name = "vonage"
    host = HOST
    flow_url_hint: str | None = None

    def _bearer(self, account: ProviderAccount) -> Callable[[], str]:
        if account.bearer is not None:
            return account.bearer
        app_id, key = account.values.get("APPLICATION_ID"), account.values.get("PRIVATE_KEY")
        if not (app_id and key):
            raise ConfigurationError(
                "dialing with vonage needs VONAGE_APPLICATION_ID and VONAGE_PRIVATE_KEY"
            )
        from callpipe.providers.vonage.jwt import VonageJwt

        return VonageJwt(app_id, key)

    def create_call(self, account: ProviderAccount, req: DialRequest) -> CreateCall:
        bearer = self._bearer(account)
        if not req.answer_url:
            raise ConfigurationError("Vonage dials need answer_url")
        body: dict[str, Any] = {
            "to": [{"type": "phone", "number": req.to.lstrip("+")}],
            "from": {"type": "phone", "number": req.from_.lstrip("+")},
            "answer_url": [req.answer_url],
            "answer_method": "POST",
            "ringing_timer": req.ring_timeout,
        }
        if req.status_url:
            body.update(event_url=[req.status_url], event_method="POST")
        if req.machine_detection != "off":
            mode = "detect_beep" if req.machine_detection == "detect_end" else "detect"
            body["advanced_machine_detection"] = {"behavior": "continue", "mode": mode}
        headers = {"Authorization": f"Bearer {bearer()}"}
        return CreateCall("POST", "/v1/calls", {"json": body}, headers=headers)

    def answer_call_id(self, body: Any) -> str:
        value = body.get("uuid") if isinstance(body, dict) else None
        return value if isinstance(value, str) else ""

    def callback_call_id(self, fields: Mapping[str, Any]) -> str:
        return str(fields.get("uuid") or "")

    def callback_status(self, fields: Mapping[str, Any]) -> DialStatus | None:
        word = fields.get("status")
        if not isinstance(word, str) or word.lower() in ("human", "machine"):
            return None  # an AMD verdict, not a call status
        return normalize_status(word)

    def callback_amd(self, fields: Mapping[str, Any]) -> AmdResult | None:
        sub = str(fields.get("sub_state", "")).lower()
        if sub in _AMD_WORDS:
            return _AMD_WORDS[sub]
        status = str(fields.get("status", "")).lower()
        return _AMD_WORDS.get(status) if status in ("human", "machine") else None


VONAGE_DIALER = VonageDialer()
