"""Vonage Voice API call control: hang up, transfer and play DTMF into a call leg.

``PUT /v1/calls/{uuid}`` with ``{"action": "hangup"}`` or ``{"action": "transfer",
"destination": {"type": "ncco", "ncco": [...]}}``, and ``PUT /v1/calls/{uuid}/dtmf`` with
``{"digits": "..."}`` (0-9, ``*``, ``#``, and ``p`` for a 0.5 s pause: callpipe's ``w`` becomes
``p``, ``W`` ``pp``; keys A-D go in-band). Authentication is a Bearer application JWT, a fresh one
per request (``bearer()``, e.g. :class:`callpipe.providers.vonage.jwt.VonageJwt`). DTMF through
the API leaves the call's WebSocket running, so it is preferred over in-band tones.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import httpx

from callpipe.telephony.base import (
    HttpCallControl,
    RetryPolicy,
    is_sip_uri,
    validate_dtmf_digits,
    validate_transfer_target,
)

DEFAULT_BASE_URL = "https://api.nexmo.com"

_PAUSES = {"w": "p", "W": "pp"}


class _FreshBearer(httpx.Auth):
    """A new JWT on every request (and every retry): Vonage refuses replayed tokens."""

    def __init__(self, bearer: Callable[[], str]) -> None:
        self._bearer = bearer

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._bearer()}"
        yield request


def vonage_dtmf_digits(digits: str) -> str | None:
    """callpipe's digits in Vonage's alphabet; None for keys A-D, which the API cannot send."""
    digits = validate_dtmf_digits(digits)
    if any(c in "ABCDabcd" for c in digits):
        return None
    return "".join(_PAUSES.get(c, c) for c in digits)


def vonage_endpoint(target: str) -> dict[str, str]:
    """The NCCO ``connect`` endpoint for a number (digits, no ``+``) or a SIP URI."""
    target = validate_transfer_target(target)
    if is_sip_uri(target):
        return {"type": "sip", "uri": target}
    return {"type": "phone", "number": target.lstrip("+")}


class VonageCallControl(HttpCallControl):
    """Call control for one Vonage call leg (its ``uuid``)."""

    provider = "vonage"

    def __init__(
        self,
        *,
        call_uuid: str,
        bearer: Callable[[], str],
        base_url: str | None = None,
        transfer_from: str | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url or DEFAULT_BASE_URL,
            call_id=call_uuid,
            auth=_FreshBearer(bearer),
            headers={"Accept": "application/json"},
            retry=retry,
            transport=transport,
        )
        self._call_path = f"/v1/calls/{call_uuid}"
        # A connect needs a caller id: one of your Vonage numbers, or any number linked to
        # the application (``randomFromNumber``) when none is given.
        self._from: dict[str, Any] = (
            {"from": transfer_from.lstrip("+")} if transfer_from else {"randomFromNumber": True}
        )

    def _hang_up_request(self) -> tuple[str, str, dict[str, Any]]:
        return "PUT", self._call_path, {"json": {"action": "hangup"}}

    async def transfer(self, target: str) -> None:
        ncco = [{"action": "connect", "endpoint": [vonage_endpoint(target)], **self._from}]
        body = {"action": "transfer", "destination": {"type": "ncco", "ncco": ncco}}
        await self.request_ok("PUT", self._call_path, json=body)

    async def send_dtmf(self, digits: str) -> bool:
        keys = vonage_dtmf_digits(digits)
        if keys is None:
            return False  # A-D: the transport plays in-band tones
        await self.request_ok("PUT", self._call_path + "/dtmf", json={"digits": keys})
        return True
