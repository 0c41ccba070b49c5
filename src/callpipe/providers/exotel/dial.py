"""Exotel outbound dialing: ``POST /v1/Accounts/{sid}/Calls/connect.json``.

Basic auth (API key + token), form ``From`` (the number to call), ``CallerId`` (your ExoPhone),
``Url`` (the call-flow URL whose Voicebot applet points at the runner: Exotel cannot fetch the
runner directly), ``StatusCallback`` + ``StatusCallbackEvents[0..1]``, ``CustomField``. Exotel has
no answering-machine detection. The answer's ``Call.Sid`` is the call id; callbacks carry
``CallSid`` and ``Status``. With ``EXOTEL_WEBHOOK_AUTH`` the status URL carries those Basic
credentials (see :mod:`callpipe.providers.exotel.signature`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callpipe.errors import ConfigurationError
from callpipe.providers.exotel.signature import with_credentials
from callpipe.telephony.dial.types import (
    AmdResult,
    CreateCall,
    DialRequest,
    DialStatus,
    ProviderAccount,
    field_status,
    form_body,
)

HOST = "https://api.exotel.com"


class ExotelDialer:
    name = "exotel"
    host = HOST
    flow_url_hint: str | None = (
        "exotel dials need answer_url: the call flow URL whose Voicebot applet is us"
    )

    def create_call(self, account: ProviderAccount, req: DialRequest) -> CreateCall:
        sid = account.need("ACCOUNT_SID")
        if not req.answer_url:
            raise ConfigurationError(
                "Exotel dials need answer_url: your call flow's URL "
                "(http://my.exotel.com/{sid}/exoml/start_voice/{app_id}) with a Voicebot applet"
            )
        data: list[tuple[str, str]] = [
            ("From", req.to),
            ("CallerId", req.from_),
            ("Url", req.answer_url),
            ("TimeOut", str(req.ring_timeout)),
        ]
        if req.status_url:
            status_url = req.status_url
            auth_pair = account.values.get("WEBHOOK_AUTH")  # EXOTEL_WEBHOOK_AUTH
            if auth_pair:
                status_url = with_credentials(status_url, auth_pair)
            data += [
                ("StatusCallback", status_url),
                ("StatusCallbackEvents[0]", "answered"),
                ("StatusCallbackEvents[1]", "terminal"),
                ("StatusCallbackContentType", "application/json"),
            ]
        if req.metadata.get("dial_id"):
            data.append(("CustomField", str(req.metadata["dial_id"])))
        auth = (account.need("API_KEY"), account.need("API_TOKEN"))
        path = f"/v1/Accounts/{sid}/Calls/connect.json"
        return CreateCall("POST", path, form_body(data), auth=auth)

    def answer_call_id(self, body: Any) -> str:
        call = body.get("Call") if isinstance(body, dict) else None
        value = call.get("Sid") if isinstance(call, dict) else None
        return value if isinstance(value, str) else ""

    def callback_call_id(self, fields: Mapping[str, Any]) -> str:
        return str(fields.get("CallSid") or "")

    def callback_status(self, fields: Mapping[str, Any]) -> DialStatus | None:
        return field_status(fields, "Status")

    def callback_amd(self, fields: Mapping[str, Any]) -> AmdResult | None:
        return None  # Exotel has no answering-machine detection


EXOTEL_DIALER = ExotelDialer()
