"""Telnyx outbound dialing through TeXML, so the runner's TeXML answer applies unchanged.

``POST /v2/texml/Accounts/{account_sid}/Calls``, Bearer API key, JSON ``ApplicationSid``, ``To``,
``From``, ``Url``, ``StatusCallback``, ``MachineDetection``/``AsyncAmd``/``AsyncAmdStatusCallback``
(Twilio's names). The answer's ``call_sid`` is the call id; callbacks read as Twilio's.
"""

from __future__ import annotations

from typing import Any

from callpipe.providers.twilio.dial import STATUS_EVENTS, TwilioStyleCallbacks, twilio_like_fields
from callpipe.telephony.dial.types import CreateCall, DialRequest, ProviderAccount
from callpipe.telephony.telnyx import DEFAULT_BASE_URL


class TelnyxDialer(TwilioStyleCallbacks):
    name = "telnyx"
    host = DEFAULT_BASE_URL

    def create_call(self, account: ProviderAccount, req: DialRequest) -> CreateCall:
        body = twilio_like_fields(req, inline_twiml=False)
        body["ApplicationSid"] = account.need("APPLICATION_SID")
        if req.status_url:
            body["StatusCallbackEvent"] = " ".join(STATUS_EVENTS)
        path = f"/v2/texml/Accounts/{account.need('ACCOUNT_SID')}/Calls"
        headers = {"Authorization": f"Bearer {account.need('API_KEY')}"}
        return CreateCall("POST", path, {"json": body}, headers=headers)

    def answer_call_id(self, body: Any) -> str:
        if not isinstance(body, dict):
            return ""
        data = body.get("data") if isinstance(body.get("data"), dict) else body
        value = data.get("call_sid") or data.get("sid") if isinstance(data, dict) else None
        return value if isinstance(value, str) else ""


TELNYX_DIALER = TelnyxDialer()
