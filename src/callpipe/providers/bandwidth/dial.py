"""Bandwidth outbound dialing: ``POST /accounts/{accountId}/calls`` on the Voice API v2.

Authenticated like call control (:mod:`callpipe.telephony.bandwidth`): OAuth 2.0 client
credentials (``BANDWIDTH_CLIENT_ID`` + ``BANDWIDTH_CLIENT_SECRET``), or a legacy API user
(``BANDWIDTH_USERNAME`` + ``BANDWIDTH_PASSWORD``). JSON ``to``, ``from``, ``applicationId``
(``BANDWIDTH_APPLICATION_ID``), ``answerUrl`` + ``answerMethod`` (the runner, which answers the
``answer`` event with the stream's BXML), ``disconnectUrl`` (the ``disconnect`` event with its
``cause``), ``callTimeout``, and ``machineDetection`` (``mode`` async, ``callbackUrl``,
``delayResult`` for ``detect_end``). With ``BANDWIDTH_CALLBACK_AUTH`` set, the call's webhooks
carry those credentials (``username``/``password``) so the runner can check them. The answer
(201) holds ``callId``, which every callback repeats.

Bandwidth has no "ringing" or "answered" progress callback: the ``answer`` event *is* the answer
webhook (``POST /``), so ``/calls/status`` sees the ``disconnect`` (terminal) and the
``machineDetectionComplete`` events. Its AMD result is ``human`` or ``answering-machine`` (with
``delayResult``, sent once the greeting is over), or ``silence``/``timeout``/``error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from callpipe.errors import ConfigurationError
from callpipe.providers.bandwidth.auth import credential_pair
from callpipe.telephony.bandwidth import VOICE_API_URL, bandwidth_auth, is_safe_id
from callpipe.telephony.dial.types import (
    AmdResult,
    CreateCall,
    DialRequest,
    DialStatus,
    ProviderAccount,
)

_DISCONNECT_CAUSES: dict[str, DialStatus] = {
    "hangup": "completed",
    "busy": "busy",
    "timeout": "no-answer",
    "cancel": "canceled",
    "rejected": "failed",
}
"""``disconnect`` causes Bandwidth documents; any other cause (``callback-error``,
``invalid-bxml``, ``application-error``, ``account-limit``, ``error``, ...) reads as failed."""

_AMD_RESULTS: dict[str, AmdResult] = {
    "human": "human",
    "answering-machine": "machine_start",
    "silence": "unknown",
    "timeout": "unknown",
    "error": "unknown",
}


def _auth(account: ProviderAccount) -> httpx.Auth | tuple[str, str]:
    values = account.values
    auth = bandwidth_auth(
        client_id=values.get("CLIENT_ID"),
        client_secret=values.get("CLIENT_SECRET"),
        username=values.get("USERNAME"),
        password=values.get("PASSWORD"),
        token_url=values.get("OAUTH_URL"),
    )
    if auth is None:
        raise ConfigurationError(
            "dialing with bandwidth needs BANDWIDTH_CLIENT_ID and BANDWIDTH_CLIENT_SECRET "
            "(API credentials; or BANDWIDTH_USERNAME and BANDWIDTH_PASSWORD of an API user)"
        )
    return auth


class BandwidthDialer:
    name = "bandwidth"
    host = VOICE_API_URL
    flow_url_hint: str | None = None

    def create_call(self, account: ProviderAccount, req: DialRequest) -> CreateCall:
        account_id = account.need("ACCOUNT_ID")
        if not is_safe_id(account_id):
            raise ConfigurationError("BANDWIDTH_ACCOUNT_ID is not a Bandwidth account id")
        application_id = account.need("APPLICATION_ID")
        if not req.answer_url:
            raise ConfigurationError("Bandwidth dials need answer_url")
        auth = _auth(account)
        body: dict[str, Any] = {
            "to": req.to,
            "from": req.from_,
            "applicationId": application_id,
            "answerUrl": req.answer_url,
            "answerMethod": "POST",
            "callTimeout": req.ring_timeout,
        }
        if req.status_url:
            body.update(disconnectUrl=req.status_url, disconnectMethod="POST")
        creds = account.values.get("CALLBACK_AUTH")
        callback_auth: dict[str, str] = {}
        if creds:
            username, password = credential_pair(creds)
            callback_auth = {"username": username, "password": password}
            body.update(callback_auth)
        if req.machine_detection != "off":
            detection: dict[str, Any] = {
                "mode": "async" if req.async_amd else "sync",
                "delayResult": req.machine_detection == "detect_end",
            }
            callback = req.amd_url or req.status_url
            if callback and req.async_amd:
                detection.update(callbackUrl=callback, callbackMethod="POST", **callback_auth)
            body["machineDetection"] = detection
        path = f"/accounts/{account_id}/calls"
        return CreateCall("POST", path, {"json": body}, auth=auth)

    def answer_call_id(self, body: Any) -> str:
        value = body.get("callId") if isinstance(body, dict) else None
        return value if isinstance(value, str) else ""

    def callback_call_id(self, fields: Mapping[str, Any]) -> str:
        value = fields.get("callId")
        return value if isinstance(value, str) else ""

    def callback_status(self, fields: Mapping[str, Any]) -> DialStatus | None:
        event = fields.get("eventType")
        if event == "answer":
            return "answered"
        if event != "disconnect":
            return None
        cause = fields.get("cause")
        word = cause.strip().lower() if isinstance(cause, str) else ""
        return _DISCONNECT_CAUSES.get(word, "failed")

    def callback_amd(self, fields: Mapping[str, Any]) -> AmdResult | None:
        # The result is an object ``{"value": ..., "duration": ...}`` in Bandwidth's API
        # definition (the runner flattens it to ``machineDetectionResult.value``) and a plain
        # string in its older webhook examples: both are read.
        value = fields.get("machineDetectionResult.value") or fields.get("machineDetectionResult")
        if not isinstance(value, str) or not value:
            return None
        return _AMD_RESULTS.get(value.strip().lower(), "unknown")


BANDWIDTH_DIALER = BandwidthDialer()
