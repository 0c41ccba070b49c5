"""Twilio outbound dialing: ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json``.

Basic auth (account SID + auth token, or an API key), form ``To``, ``From``, ``Url`` +
``Method=POST`` (or inline ``Twiml``), ``StatusCallback`` + one ``StatusCallbackEvent`` per
event, ``MachineDetection`` (``Enable`` or ``DetectMessageEnd``) with ``AsyncAmd=true`` +
``AsyncAmdStatusCallback``. The answer's ``sid`` is the call id; callbacks carry ``CallSid``,
``CallStatus`` and ``AnsweredBy``. Telnyx's TeXML dial reuses the same field names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callpipe.errors import ConfigurationError
from callpipe.telephony.dial.types import (
    AmdResult,
    CreateCall,
    DialRequest,
    DialStatus,
    ProviderAccount,
    answered_by,
    field_status,
    form_body,
)
from callpipe.telephony.twilio import DEFAULT_BASE_URL

STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")


def twilio_like_fields(req: DialRequest, *, inline_twiml: bool) -> dict[str, Any]:
    """The create-call fields Twilio and Telnyx TeXML share (same names, same meaning)."""
    fields: dict[str, Any] = {"To": req.to, "From": req.from_, "Timeout": str(req.ring_timeout)}
    if req.twiml and inline_twiml:
        fields["Twiml"] = req.twiml
    elif req.answer_url:
        fields.update(Url=req.answer_url, Method="POST")
    else:
        raise ConfigurationError("dial needs answer_url (or inline twiml for Twilio)")
    if req.status_url:
        fields["StatusCallback"] = req.status_url
        fields["StatusCallbackMethod"] = "POST"
    if req.machine_detection != "off":
        fields["MachineDetection"] = (
            "DetectMessageEnd" if req.machine_detection == "detect_end" else "Enable"
        )
        if req.async_amd:
            fields["AsyncAmd"] = "true"
            fields["AsyncAmdStatusCallback"] = req.amd_url or req.status_url or ""
            fields["AsyncAmdStatusCallbackMethod"] = "POST"
    return fields


class TwilioStyleCallbacks:
    """Callbacks with ``CallSid``, ``CallStatus`` and ``AnsweredBy`` (Twilio, Telnyx TeXML)."""

    flow_url_hint: str | None = None

    def callback_call_id(self, fields: Mapping[str, Any]) -> str:
        return str(fields.get("CallSid") or "")

    def callback_status(self, fields: Mapping[str, Any]) -> DialStatus | None:
        return field_status(fields, "CallStatus")

    def callback_amd(self, fields: Mapping[str, Any]) -> AmdResult | None:
        return answered_by(fields)


class TwilioDialer(TwilioStyleCallbacks):
    name = "twilio"
    host = DEFAULT_BASE_URL

    def create_call(self, account: ProviderAccount, req: DialRequest) -> CreateCall:
        sid = account.need("ACCOUNT_SID")
        if account.values.get("API_KEY_SID"):
            auth = (account.values["API_KEY_SID"], account.need("API_KEY_SECRET"))
        else:
            auth = (sid, account.need("AUTH_TOKEN"))
        form = twilio_like_fields(req, inline_twiml=True)
        data: list[tuple[str, str]] = [(k, str(v)) for k, v in form.items()]
        if req.status_url:
            data += [("StatusCallbackEvent", e) for e in STATUS_EVENTS]
        path = f"/2010-04-01/Accounts/{sid}/Calls.json"
        return CreateCall("POST", path, form_body(data), auth=auth)

    def answer_call_id(self, body: Any) -> str:
        value = body.get("sid") if isinstance(body, dict) else None
        return value if isinstance(value, str) else ""


TWILIO_DIALER = TwilioDialer()
