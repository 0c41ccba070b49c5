"""Plivo outbound dialing: ``POST /v1/Account/{auth_id}/Call/``.

Basic auth, JSON ``from``, ``to``, ``answer_url``/``answer_method``, ``ring_url``, ``hangup_url``,
``machine_detection=true`` + ``machine_detection_url``. The answer (201) holds ``request_uuid``,
which Plivo repeats as ``RequestUUID`` in the answer webhook and callbacks; its AMD callback says
``Machine=true|false``.
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
    field_status,
)
from callpipe.telephony.plivo import DEFAULT_BASE_URL


class PlivoDialer:
    name = "plivo"
    host = DEFAULT_BASE_URL
    flow_url_hint: str | None = None

    def create_call(self, account: ProviderAccount, req: DialRequest) -> CreateCall:
        auth_id = account.need("AUTH_ID")
        if not req.answer_url:
            raise ConfigurationError("Plivo dials need answer_url")
        body: dict[str, Any] = {
            "from": req.from_.lstrip("+"),
            "to": req.to.lstrip("+"),
            "answer_url": req.answer_url,
            "answer_method": "POST",
            "ring_timeout": req.ring_timeout,
        }
        if req.status_url:
            body.update(
                ring_url=req.status_url,
                ring_method="POST",
                hangup_url=req.status_url,
                hangup_method="POST",
            )
        if req.machine_detection != "off":
            body.update(
                machine_detection="true",
                machine_detection_url=req.amd_url or req.status_url or "",
                machine_detection_method="POST",
            )
        path = f"/v1/Account/{auth_id}/Call/"
        return CreateCall("POST", path, {"json": body}, auth=(auth_id, account.need("AUTH_TOKEN")))

    def answer_call_id(self, body: Any) -> str:
        value = body.get("request_uuid") if isinstance(body, dict) else None
        if isinstance(value, list):  # bulk dials answer a list
            value = value[0] if value else None
        return value if isinstance(value, str) else ""

    def callback_call_id(self, fields: Mapping[str, Any]) -> str:
        return str(fields.get("RequestUUID") or fields.get("CallUUID") or "")

    def callback_status(self, fields: Mapping[str, Any]) -> DialStatus | None:
        return field_status(fields, "CallStatus")

    def callback_amd(self, fields: Mapping[str, Any]) -> AmdResult | None:
        machine = str(fields.get("Machine", "")).lower()
        if machine in ("true", "false"):
            return "machine_start" if machine == "true" else "human"
        return None


PLIVO_DIALER = PlivoDialer()
