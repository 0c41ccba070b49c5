"""Each provider's "create a call" request, built sans-I/O from a :class:`DialRequest`.

The REST sequences (method, path, auth, body):

- Twilio: ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json``, Basic auth (account SID + auth
  token, or API key), form ``To``, ``From``, ``Url`` + ``Method=POST`` (or inline ``Twiml``),
  ``StatusCallback`` + one ``StatusCallbackEvent`` per event, ``MachineDetection`` (``Enable`` or
  ``DetectMessageEnd``) with ``AsyncAmd=true`` + ``AsyncAmdStatusCallback``. Answer: ``sid``.
- Telnyx (TeXML, so the runner's TeXML answer applies unchanged): ``POST
  /v2/texml/Accounts/{account_sid}/Calls``, Bearer API key, JSON ``ApplicationSid``, ``To``,
  ``From``, ``Url``, ``StatusCallback``, ``MachineDetection``/``AsyncAmd``/
  ``AsyncAmdStatusCallback`` (the same names as Twilio's). Answer: ``call_sid``.
- Plivo: ``POST /v1/Account/{auth_id}/Call/``, Basic auth, JSON ``from``, ``to``,
  ``answer_url``/``answer_method``, ``ring_url``, ``hangup_url``, ``machine_detection=true`` +
  ``machine_detection_url``. Answer (201): ``request_uuid``, which Plivo repeats as
  ``RequestUUID`` in the answer webhook.
- Vonage: ``POST /v1/calls``, ``Authorization: Bearer <JWT>`` (RS256, signed with the
  application's private key: :mod:`callpipe.telephony.dial.vonage_jwt`), JSON ``to``/``from``
  endpoints, ``answer_url``/``answer_method``, ``event_url``, ``advanced_machine_detection``.
  Answer (201): ``uuid``.
- Exotel: ``POST /v1/Accounts/{sid}/Calls/connect``, Basic auth (API key + token), form
  ``From`` (the number to call), ``CallerId`` (your ExoPhone), ``Url`` (the call-flow URL whose
  Voicebot applet points at the runner), ``StatusCallback`` + ``StatusCallbackEvents[0..1]``,
  ``CustomField``. Exotel has no answering-machine detection. Answer: ``Call.Sid``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from callpipe.errors import ConfigurationError
from callpipe.telephony.dial.types import DialRequest

DIAL_PROVIDERS = ("twilio", "telnyx", "plivo", "vonage", "exotel")

DEFAULT_HOSTS = {
    "twilio": "https://api.twilio.com",
    "telnyx": "https://api.telnyx.com",
    "plivo": "https://api.plivo.com",
    "vonage": "https://api.nexmo.com",
    "exotel": "https://api.exotel.com",
}


@dataclass(frozen=True, slots=True)
class CreateCall:
    """One HTTP request: method, path under the provider's host, httpx keyword arguments."""

    method: str
    path: str
    kwargs: dict[str, Any]
    auth: tuple[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProviderAccount:
    """The credentials one provider's dial needs (see :meth:`from_env` for the variable names)."""

    provider: str
    values: Mapping[str, str]
    bearer: Callable[[], str] | None = None
    """Vonage: makes a fresh JWT for each request."""

    def need(self, name: str) -> str:
        value = self.values.get(name)
        if not value:
            raise ConfigurationError(f"dialing with {self.provider} needs {name}")
        return value

    @classmethod
    def from_env(cls, provider: str, env: Mapping[str, str] | None = None) -> ProviderAccount:
        """Read ``provider``'s credentials from the environment.

        Twilio ``TWILIO_ACCOUNT_SID`` + ``TWILIO_AUTH_TOKEN`` (or ``TWILIO_API_KEY_SID`` +
        ``TWILIO_API_KEY_SECRET``); Telnyx ``TELNYX_API_KEY``, ``TELNYX_ACCOUNT_SID``,
        ``TELNYX_APPLICATION_SID``; Plivo ``PLIVO_AUTH_ID`` + ``PLIVO_AUTH_TOKEN``; Vonage
        ``VONAGE_APPLICATION_ID`` + ``VONAGE_PRIVATE_KEY`` (PEM text or a file path); Exotel
        ``EXOTEL_API_KEY``, ``EXOTEL_API_TOKEN``, ``EXOTEL_ACCOUNT_SID``.
        """
        env = os.environ if env is None else env
        prefix = provider.upper() + "_"
        values = {k[len(prefix) :]: v for k, v in env.items() if k.startswith(prefix) and v}
        bearer: Callable[[], str] | None = None
        if provider == "vonage" and values.get("APPLICATION_ID") and values.get("PRIVATE_KEY"):
            from callpipe.telephony.dial.vonage_jwt import VonageJwt

            bearer = VonageJwt(values["APPLICATION_ID"], values["PRIVATE_KEY"])
        return cls(provider, values, bearer)


def _twilio_like_fields(req: DialRequest, *, inline_twiml: bool) -> dict[str, Any]:
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


def _form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """httpx keyword arguments for a form body with repeated keys (``data=`` takes a dict)."""
    return {
        "content": urlencode(pairs).encode("ascii"),
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    }


def build_create_call(account: ProviderAccount, req: DialRequest) -> CreateCall:
    """The provider's create-call request for ``req`` (raises ``ConfigurationError``)."""
    provider = account.provider
    if provider == "twilio":
        sid = account.need("ACCOUNT_SID")
        if account.values.get("API_KEY_SID"):
            auth = (account.values["API_KEY_SID"], account.need("API_KEY_SECRET"))
        else:
            auth = (sid, account.need("AUTH_TOKEN"))
        form = _twilio_like_fields(req, inline_twiml=True)
        data: list[tuple[str, str]] = [(k, str(v)) for k, v in form.items()]
        if req.status_url:
            data += [
                ("StatusCallbackEvent", e)
                for e in ("initiated", "ringing", "answered", "completed")
            ]
        path = f"/2010-04-01/Accounts/{sid}/Calls.json"
        return CreateCall("POST", path, _form(data), auth=auth)
    if provider == "telnyx":
        body = _twilio_like_fields(req, inline_twiml=False)
        body["ApplicationSid"] = account.need("APPLICATION_SID")
        if req.status_url:
            body["StatusCallbackEvent"] = "initiated ringing answered completed"
        path = f"/v2/texml/Accounts/{account.need('ACCOUNT_SID')}/Calls"
        headers = {"Authorization": f"Bearer {account.need('API_KEY')}"}
        return CreateCall("POST", path, {"json": body}, headers=headers)
    if provider == "plivo":
        auth_id = account.need("AUTH_ID")
        if not req.answer_url:
            raise ConfigurationError("Plivo dials need answer_url")
        pbody: dict[str, Any] = {
            "from": req.from_.lstrip("+"),
            "to": req.to.lstrip("+"),
            "answer_url": req.answer_url,
            "answer_method": "POST",
            "ring_timeout": req.ring_timeout,
        }
        if req.status_url:
            pbody.update(
                ring_url=req.status_url,
                ring_method="POST",
                hangup_url=req.status_url,
                hangup_method="POST",
            )
        if req.machine_detection != "off":
            pbody.update(
                machine_detection="true",
                machine_detection_url=req.amd_url or req.status_url or "",
                machine_detection_method="POST",
            )
        path = f"/v1/Account/{auth_id}/Call/"
        return CreateCall("POST", path, {"json": pbody}, auth=(auth_id, account.need("AUTH_TOKEN")))
    if provider == "vonage":
        if account.bearer is None:
            raise ConfigurationError(
                "dialing with vonage needs VONAGE_APPLICATION_ID and VONAGE_PRIVATE_KEY"
            )
        if not req.answer_url:
            raise ConfigurationError("Vonage dials need answer_url")
        vbody: dict[str, Any] = {
            "to": [{"type": "phone", "number": req.to.lstrip("+")}],
            "from": {"type": "phone", "number": req.from_.lstrip("+")},
            "answer_url": [req.answer_url],
            "answer_method": "POST",
            "ringing_timer": req.ring_timeout,
        }
        if req.status_url:
            vbody.update(event_url=[req.status_url], event_method="POST")
        if req.machine_detection != "off":
            mode = "detect_beep" if req.machine_detection == "detect_end" else "detect"
            vbody["advanced_machine_detection"] = {"behavior": "continue", "mode": mode}
        headers = {"Authorization": f"Bearer {account.bearer()}"}
        return CreateCall("POST", "/v1/calls", {"json": vbody}, headers=headers)
    if provider == "exotel":
        sid = account.need("ACCOUNT_SID")
        if not req.answer_url:
            raise ConfigurationError(
                "Exotel dials need answer_url: your call flow's URL "
                "(http://my.exotel.com/{sid}/exoml/start_voice/{app_id}) with a Voicebot applet"
            )
        edata: list[tuple[str, str]] = [
            ("From", req.to),
            ("CallerId", req.from_),
            ("Url", req.answer_url),
            ("TimeOut", str(req.ring_timeout)),
        ]
        if req.status_url:
            edata += [
                ("StatusCallback", req.status_url),
                ("StatusCallbackEvents[0]", "answered"),
                ("StatusCallbackEvents[1]", "terminal"),
                ("StatusCallbackContentType", "application/json"),
            ]
        if req.metadata.get("dial_id"):
            edata.append(("CustomField", str(req.metadata["dial_id"])))
        auth = (account.need("API_KEY"), account.need("API_TOKEN"))
        path = f"/v1/Accounts/{sid}/Calls/connect.json"
        return CreateCall("POST", path, _form(edata), auth=auth)
    raise ConfigurationError(f"unknown dial provider {provider!r}: use one of {DIAL_PROVIDERS}")


def parse_call_id(provider: str, body: Any) -> str:
    """The provider's id of the created call from its JSON answer ('' if absent)."""
    if not isinstance(body, dict):
        return ""
    if provider == "twilio":
        value = body.get("sid")
    elif provider == "telnyx":
        data = body.get("data") if isinstance(body.get("data"), dict) else body
        value = data.get("call_sid") or data.get("sid") if isinstance(data, dict) else None
    elif provider == "plivo":
        value = body.get("request_uuid")
        if isinstance(value, list):  # bulk dials answer a list
            value = value[0] if value else None
    elif provider == "vonage":
        value = body.get("uuid")
    elif provider == "exotel":
        call = body.get("Call")
        value = call.get("Sid") if isinstance(call, dict) else None
    else:
        value = None
    return value if isinstance(value, str) else ""


def dumps_metadata(metadata: Mapping[str, Any]) -> str:
    """Metadata as the runner hands it over (JSON, so it round-trips through ``runner_args``)."""
    return json.dumps(dict(metadata), separators=(",", ":"), sort_keys=True)
