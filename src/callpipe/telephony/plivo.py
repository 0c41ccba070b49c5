"""Plivo call control: hang up, transfer and send DTMF through the Call resource.

Plivo transfers a call by fetching new XML from a URL (``aleg_url``), not by taking inline XML.
``transfer(target)`` therefore accepts either that URL itself, or a number/SIP URI when the client
was given ``transfer_url`` — an endpoint of yours that answers with a ``<Dial>`` to the ``target``
query parameter it receives.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx

from callpipe.errors import ConfigurationError
from callpipe.telephony.base import (
    HttpCallControl,
    RetryPolicy,
    validate_dtmf_digits,
    validate_transfer_target,
)

DEFAULT_BASE_URL = "https://api.plivo.com"


class PlivoCallControl(HttpCallControl):
    """Call control for one Plivo call (``call_uuid``)."""

    provider = "plivo"

    def __init__(
        self,
        *,
        auth_id: str,
        auth_token: str,
        call_uuid: str,
        base_url: str | None = None,
        transfer_url: str | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url or DEFAULT_BASE_URL,
            call_id=call_uuid,
            auth=(auth_id, auth_token),
            retry=retry,
            transport=transport,
        )
        self._call_path = f"/v1/Account/{auth_id}/Call/{call_uuid}/"
        self._transfer_url = transfer_url

    def _hang_up_request(self) -> tuple[str, str, dict[str, Any]]:
        return "DELETE", self._call_path, {}

    def transfer_xml_url(self, target: str) -> str:
        """The ``aleg_url`` Plivo fetches for a transfer to ``target``."""
        if target.startswith(("https://", "http://")):
            return target
        target = validate_transfer_target(target)
        if not self._transfer_url:
            raise ConfigurationError(
                "Plivo transfers fetch XML from a URL: pass that URL as the target, or give "
                "PlivoCallControl a transfer_url that answers with <Dial> for ?target=..."
            )
        sep = "&" if "?" in self._transfer_url else "?"
        return self._transfer_url + sep + urlencode({"target": target})

    async def transfer(self, target: str) -> None:
        body = {"legs": "aleg", "aleg_url": self.transfer_xml_url(target), "aleg_method": "POST"}
        await self.request_ok("POST", self._call_path, json=body)

    async def send_dtmf(self, digits: str) -> bool:
        body = {"digits": validate_dtmf_digits(digits), "leg": "aleg"}
        await self.request_ok("POST", self._call_path + "DTMF/", json=body)
        return True
