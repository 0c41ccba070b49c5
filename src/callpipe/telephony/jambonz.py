"""jambonz call control through its REST API: end a live call.

``PUT {base}/v1/Accounts/{account_sid}/Calls/{call_sid}`` with ``{"call_status": "completed"}``,
Bearer auth with an account API key; jambonz answers 204. The base is ``https://jambonz.cloud/api``
for the hosted platform, or a self-hosted API server. The runner's ``listen`` answer is followed
by ``hangup``, so closing the stream also ends the call; the REST hang-up covers a stalled peer.
jambonz's REST API has no blind transfer to a number here and no DTMF (in-band tones are sent).
"""

from __future__ import annotations

from typing import Any

import httpx

from callpipe.errors import CallControlError
from callpipe.telephony.base import HttpCallControl, RetryPolicy

DEFAULT_BASE_URL = "https://jambonz.cloud/api"


class JambonzCallControl(HttpCallControl):
    """Call control for one jambonz call (``call_sid``) of one account."""

    provider = "jambonz"

    def __init__(
        self,
        *,
        account_sid: str,
        call_sid: str,
        api_key: str,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url or DEFAULT_BASE_URL,
            call_id=call_sid,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            retry=retry,
            transport=transport,
        )
        self._call_path = f"/v1/Accounts/{account_sid}/Calls/{call_sid}"

    def _hang_up_request(self) -> tuple[str, str, dict[str, Any]]:
        return "PUT", self._call_path, {"json": {"call_status": "completed"}}

    async def transfer(self, target: str) -> None:
        raise CallControlError("jambonz call control here cannot transfer; use a dial verb")

    async def send_dtmf(self, digits: str) -> bool:
        return False
