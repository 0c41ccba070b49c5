"""Twilio call control: hang up or transfer a live call through the Calls resource.

Twilio's REST API has no "send DTMF" for a call that is running a bidirectional Media Stream
(updating the call with ``<Play digits>`` would end the stream), so ``send_dtmf`` returns False
and the transport plays in-band tones instead.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

import httpx

from callpipe.errors import CallControlError, ConfigurationError
from callpipe.telephony.base import (
    HttpCallControl,
    RetryPolicy,
    http_reason,
    is_sip_uri,
    validate_transfer_target,
)

DEFAULT_BASE_URL = "https://api.twilio.com"


def twilio_api_root(
    region: str | None = None, edge: str | None = None, base_url: str | None = None
) -> str:
    """The REST root: ``base_url`` if given, else the regional edge host, else the global one."""
    if base_url:
        return base_url.rstrip("/")
    if region or edge:
        if not (region and edge):
            raise ConfigurationError(
                "Twilio region and edge must be given together (e.g. region='au1', "
                "edge='sydney'), or pass base_url"
            )
        return f"https://api.{edge}.{region}.twilio.com"
    return DEFAULT_BASE_URL


def twilio_credentials(
    account_sid: str | None,
    auth_token: str | None,
    api_key_sid: str | None,
    api_key_secret: str | None,
) -> tuple[str, str] | None:
    """The Basic-auth pair: an API key if given, else the account SID and auth token."""
    if auth_token and (api_key_sid or api_key_secret):
        raise ConfigurationError(
            "pass either auth_token or api_key_sid + api_key_secret for Twilio, not both"
        )
    if bool(api_key_sid) != bool(api_key_secret):
        raise ConfigurationError("Twilio api_key_sid and api_key_secret must be given together")
    if api_key_sid and api_key_secret:
        return (api_key_sid, api_key_secret)
    if account_sid and auth_token:
        return (account_sid, auth_token)
    return None


def dial_twiml(target: str) -> str:
    """TwiML that dials ``target`` (a number, or a SIP URI via ``<Sip>``)."""
    target = validate_transfer_target(target)
    noun = f"<Sip>{escape(target)}</Sip>" if is_sip_uri(target) else escape(target)
    return f"<Response><Dial>{noun}</Dial></Response>"


class TwilioCallControl(HttpCallControl):
    """Call control for one Twilio call (``CA…``)."""

    provider = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        call_sid: str,
        auth_token: str | None = None,
        api_key_sid: str | None = None,
        api_key_secret: str | None = None,
        region: str | None = None,
        edge: str | None = None,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        auth = twilio_credentials(account_sid, auth_token, api_key_sid, api_key_secret)
        if auth is None:
            raise ConfigurationError(
                "Twilio call control needs auth_token or api_key_sid + api_key_secret"
            )
        super().__init__(
            base_url=twilio_api_root(region, edge, base_url),
            call_id=call_sid,
            auth=auth,
            retry=retry,
            transport=transport,
        )
        self.account_sid = account_sid
        self._call_path = f"/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json"

    @property
    def call_url(self) -> str:
        return self.base_url + self._call_path

    def _hang_up_request(self) -> tuple[str, str, dict[str, Any]]:
        return "POST", self._call_path, {"data": {"Status": "completed"}}

    def _already_ended(self, response: httpx.Response) -> bool:
        # 404 (error 20404): the call resource is gone. Updating a finished call to "completed"
        # is also refused with 400 / 21220 ("call is not in-progress").
        if response.status_code == 404:
            return True
        return response.status_code == 400 and _error_code(response) == 21220

    async def transfer(self, target: str) -> None:
        twiml = dial_twiml(target)
        response = await self.request("POST", self._call_path, data={"Twiml": twiml})
        if not response.is_success:
            reason = http_reason(response)
            raise CallControlError(
                f"{self.provider} transfer of call {self.log_id} failed: {reason}", reason=reason
            )

    async def send_dtmf(self, digits: str) -> bool:
        return False


def _error_code(response: httpx.Response) -> int | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, int) else None
