"""Telnyx Call Control: hang up, transfer and send DTMF via ``/v2/calls/{id}/actions/...``.

Every command carries a ``command_id``, the same across retries of one command, so Telnyx drops
duplicates when a retry follows a request that did arrive.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from callpipe.telephony.base import (
    HttpCallControl,
    RetryPolicy,
    validate_dtmf_digits,
    validate_transfer_target,
)

DEFAULT_BASE_URL = "https://api.telnyx.com"

# Telnyx answers 422 with this error code when the call has already ended.
_CALL_ENDED = "90018"


class TelnyxCallControl(HttpCallControl):
    """Call control for one Telnyx call (``call_control_id``)."""

    provider = "telnyx"

    def __init__(
        self,
        *,
        call_control_id: str,
        api_key: str,
        base_url: str | None = None,
        dtmf_duration_ms: int = 250,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url or DEFAULT_BASE_URL,
            call_id=call_control_id,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            retry=retry,
            transport=transport,
        )
        self._dtmf_duration_ms = dtmf_duration_ms
        self._hangup_command_id = str(uuid.uuid4())

    def _action(self, name: str) -> str:
        return f"/v2/calls/{self.call_id}/actions/{name}"

    def _hang_up_request(self) -> tuple[str, str, dict[str, Any]]:
        return "POST", self._action("hangup"), {"json": {"command_id": self._hangup_command_id}}

    def _already_ended(self, response: httpx.Response) -> bool:
        if response.status_code == 404:
            return True
        if response.status_code != 422:
            return False
        try:
            errors = response.json().get("errors", [])
        except (ValueError, AttributeError):
            return False
        return any(isinstance(e, dict) and str(e.get("code")) == _CALL_ENDED for e in errors)

    async def transfer(self, target: str) -> None:
        body = {"to": validate_transfer_target(target), "command_id": str(uuid.uuid4())}
        await self.request_ok("POST", self._action("transfer"), json=body)

    async def send_dtmf(self, digits: str) -> bool:
        body = {
            "digits": validate_dtmf_digits(digits),
            "duration_millis": self._dtmf_duration_ms,
            "command_id": str(uuid.uuid4()),
        }
        await self.request_ok("POST", self._action("send_dtmf"), json=body)
        return True
