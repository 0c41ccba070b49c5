"""``dial()``: place one outbound call through a provider's REST API.

Creating a call is not idempotent, so unlike call control (:mod:`callpipe.telephony.base`) a
create request is retried only when it certainly never reached the provider (the connection
could not be opened); a timeout or a 5xx after sending is reported, never retried, so one
``dial()`` never rings a person twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import httpx

from callpipe.errors import CallControlError
from callpipe.log import mask_number, redact_numbers
from callpipe.telephony.dial.types import (
    CallHandle,
    CreateCall,
    Dialer,
    DialRequest,
    MachineDetection,
    ProviderAccount,
    dialer_for,
)
from callpipe.utils.tls import shared_ssl_context

logger = logging.getLogger(__name__)

CONNECT_RETRIES = 2


def build_create_call(
    account: ProviderAccount, req: DialRequest, dialer: Dialer | None = None
) -> CreateCall:
    """The provider's create-call request for ``req`` (raises ``ConfigurationError``)."""
    return (dialer or dialer_for(account.provider)).create_call(account, req)


async def place_call(
    account: ProviderAccount,
    req: DialRequest,
    *,
    dialer: Dialer | None = None,
    base_url: str | None = None,
    request_timeout: float = 10.0,
    transport: httpx.AsyncBaseTransport | None = None,
    dial_id: str | None = None,
) -> CallHandle:
    """Send ``req`` with ``account``; a :class:`CallHandle` or ``CallControlError``.

    ``dialer`` is the provider's :class:`Dialer` (``Provider.dialer``); by default the one
    registered under ``account.provider``.
    """
    dialer = dialer or dialer_for(account.provider)
    spec = dialer.create_call(account, req)
    root = (base_url or dialer.host).rstrip("/")
    async with httpx.AsyncClient(
        base_url=root,
        auth=spec.auth,
        headers=spec.headers,
        timeout=httpx.Timeout(request_timeout, connect=min(3.0, request_timeout)),
        transport=transport,
        verify=shared_ssl_context(),
    ) as client:
        response: httpx.Response | None = None
        for attempt in range(CONNECT_RETRIES + 1):
            try:
                response = await client.request(spec.method, spec.path, **spec.kwargs)
                break
            except httpx.ConnectError as exc:
                if attempt == CONNECT_RETRIES:
                    raise CallControlError(
                        f"{account.provider} dial: cannot connect ({exc})"
                    ) from None
                await asyncio.sleep(0.1 * 2**attempt)
            except httpx.TransportError as exc:
                raise CallControlError(
                    f"{account.provider} dial: no answer ({type(exc).__name__}); "
                    "not retried, the call may have been placed"
                ) from None
    assert response is not None
    if not response.is_success:
        raise CallControlError(
            f"{account.provider} dial refused: HTTP {response.status_code} "
            f"{redact_numbers(response.text[:200])}"
        )
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    call_id = dialer.answer_call_id(body)
    if not call_id:
        raise CallControlError(f"{account.provider} dial: no call id in the answer")
    logger.info("%s dial to %s placed", account.provider, mask_number(req.to))
    return CallHandle(
        provider=account.provider,
        call_id=call_id,
        dial_id=dial_id or uuid.uuid4().hex,
        to=req.to,
        metadata=dict(req.metadata),
    )


async def dial(
    to: str,
    from_: str,
    *,
    provider: str | Dialer,
    answer_url: str | None = None,
    twiml: str | None = None,
    status_url: str | None = None,
    amd_url: str | None = None,
    machine_detection: MachineDetection = "off",
    metadata: Mapping[str, Any] | None = None,
    account: ProviderAccount | None = None,
    base_url: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> CallHandle:
    """Place a call to ``to`` from ``from_`` (credentials from the environment by default).

    ``provider`` is a provider's :class:`Dialer` (``registry.require(name).dialer``) or its
    name, looked up among the dialers :mod:`callpipe.providers.registry` registers on import.

    Point ``answer_url`` at the runner (``https://HOST/``) so the callee is connected to the
    bot; to have ``metadata`` reach the bot's ``runner_args``, dial through the runner's
    ``POST /calls`` (or register the handle with its :class:`~callpipe.runner.dials.DialBook`).
    """
    req = DialRequest(
        to=to,
        from_=from_,
        answer_url=answer_url,
        twiml=twiml,
        status_url=status_url,
        amd_url=amd_url,
        machine_detection=machine_detection,
        metadata=dict(metadata or {}),
    )
    dialer = dialer_for(provider)
    account = account or ProviderAccount.from_env(dialer.name)
    return await place_call(account, req, dialer=dialer, base_url=base_url, transport=transport)
