"""Outbound routes: ``POST /calls`` (dial), ``GET /calls/{dial_id}``, ``POST /calls/status``.

``POST /calls`` places a call whose answer webhook is this runner (``https://{-x}/``), so the
callee meets the bot, with ``metadata`` handed to ``bot()`` in ``runner_args.body``. It needs
``CALLPIPE_API_KEY`` as a bearer credential, always (a dial spends money and rings a person),
and ``-x`` (the provider must reach us). It refuses with 503 at capacity or while draining.

A client may choose the ``dial_id``: the request is then idempotent (the same id never places a
second call), which lets a campaign interrupted mid-request resume without ringing anyone twice.

``POST /calls/status`` takes the providers' progress and AMD callbacks. They are checked exactly
like the answer webhook (same signatures, same public URL rule, same body cap, the same 401
challenge for Bandwidth's Basic credentials); in local mode
(``--insecure``) nothing is verified. Vonage's signed webhooks are verified like the others
when ``VONAGE_SIGNATURE_SECRET`` is set (:mod:`callpipe.providers.vonage.signature`). Exotel
signs nothing: its callbacks are checked for the Basic credentials of ``EXOTEL_WEBHOOK_AUTH``
(:mod:`callpipe.providers.exotel.signature`), else accepted in local mode only.

The dial records are the :class:`~callpipe.runner.dials.DialBook`'s: per process, or shared by
a fleet through Redis, in which case any process may take any of these requests.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from callpipe.errors import (
    CallControlError,
    ConfigurationError,
    MissingDependencyError,
    TokenStoreError,
)
from callpipe.log import mask_number
from callpipe.providers import registry
from callpipe.runner.calls import CALLS_REFUSED
from callpipe.runner.dials import DIALS_PLACED, DialBook
from callpipe.runner.http_guard import api_key_refusal
from callpipe.runner.webhook import (
    MAX_WEBHOOK_BODY,
    _announced_too_large,
    _candidates,
    _params,
    _read_body,
    _TooLarge,
    _verify,
    auth_challenge,
    challenged,
    detect_provider,
)
from callpipe.telephony.dial.client import place_call
from callpipe.telephony.dial.types import CallHandle, Dialer, DialRequest, ProviderAccount

if TYPE_CHECKING:
    from callpipe.runner.app import RunnerState

logger = logging.getLogger(__name__)

STATUS_PATH = "/calls/status"
_DIAL_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_MACHINE_DETECTION = ("off", "enable", "detect_end")


@dataclass
class OutboundConfig:
    """Where dials go: provider credentials (environment by default) and REST roots (tests)."""

    accounts: dict[str, ProviderAccount] = field(default_factory=dict)
    base_urls: dict[str, str] = field(default_factory=dict)
    transport: httpx.AsyncBaseTransport | None = None

    def account(self, provider: str) -> ProviderAccount:
        return self.accounts.get(provider) or ProviderAccount.from_env(provider)


def _bad(error: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status)


def add_outbound_routes(app: FastAPI, state: RunnerState) -> None:
    """Add the dial and callback routes; ``state.dials`` is the :class:`DialBook`."""
    outbound = OutboundConfig()
    app.state.outbound = outbound

    @app.post("/calls")
    async def create_call(request: Request) -> JSONResponse:
        refusal = api_key_refusal(request, state.credentials.api_key, route="POST /calls")
        if refusal is not None:
            CALLS_REFUSED.inc(stage="dial", reason="api key")
            logger.warning("POST /calls refused (%d): no valid API key", refusal.status_code)
            return refusal
        if not state.config.proxy:
            return _bad("dialing needs the runner's public host: start it with -x HOST")
        if _announced_too_large(request, MAX_WEBHOOK_BODY):
            return _bad("body too large", 413)
        try:
            payload = json.loads(await _read_body(request, MAX_WEBHOOK_BODY) or b"{}")
        except (_TooLarge, ValueError, RecursionError):
            return _bad("expected a JSON object with to, from and provider")
        req = _dial_request(payload, state)
        if isinstance(req, str):
            return _bad(req)
        dialer, dial_req = req
        provider = dialer.name
        dial_id = payload.get("dial_id") or uuid.uuid4().hex
        if not isinstance(dial_id, str) or not _DIAL_ID.match(dial_id):
            return _bad("dial_id must be 8-64 letters, digits, '-' or '_'")
        book = state.dials
        try:
            existing = await book.get(dial_id)
            if existing is not None:
                return _idempotent(existing, await book.is_pending(dial_id))
            if not await book.reserve(dial_id, provider, dial_req.to):
                # Another request (on any process of the fleet) holds this id: never ring twice.
                found = await book.get(dial_id)
                return _idempotent(found, found is None or await book.is_pending(dial_id), dial_id)
            reason = state.calls.refusal_reason()
            limit = state.calls.max_calls
            if reason is None and limit is not None:
                # Dials still ringing will each want a call slot when answered: count them too
                # (this one included: it is reserved already, so racing requests see it).
                if state.calls.active + await book.outstanding() > limit:
                    reason = "at capacity"
            if reason is not None:
                await book.release(dial_id)
                CALLS_REFUSED.inc(stage="dial", reason=reason)
                return JSONResponse(
                    {"error": reason}, status_code=503, headers={"Retry-After": "1"}
                )
        except TokenStoreError as exc:
            logger.warning("POST /calls refused (503): %s", exc)
            return JSONResponse(
                {"error": "dial store unavailable"}, status_code=503, headers={"Retry-After": "1"}
            )
        placed = False
        try:
            handle = await place_call(
                outbound.account(provider),
                dial_req,
                dialer=dialer,
                base_url=outbound.base_urls.get(provider),
                transport=outbound.transport,
                dial_id=dial_id,
            )
            placed = True
        except (ConfigurationError, MissingDependencyError) as exc:
            DIALS_PLACED.inc(provider=provider, outcome="config")
            return _bad(str(exc), 500)
        except CallControlError as exc:
            DIALS_PLACED.inc(provider=provider, outcome="refused")
            logger.warning("dial to %s failed: %s", mask_number(dial_req.to), exc)
            return _bad(str(exc), 502)
        finally:
            if not placed:
                with contextlib.suppress(TokenStoreError):
                    await book.release(dial_id)
        DIALS_PLACED.inc(provider=provider, outcome="placed")
        try:
            await book.add(handle)
        except TokenStoreError as exc:
            # The call is real and ringing: say so, but its callbacks and stream will not match.
            logger.warning("dial %s placed but not recorded: %s", dial_id, exc)
        return JSONResponse(handle.as_dict(), status_code=201)

    @app.get("/calls/{dial_id}")
    async def get_call(request: Request, dial_id: str) -> JSONResponse:
        refusal = api_key_refusal(request, state.credentials.api_key, route="GET /calls")
        if refusal is not None:
            return refusal
        try:
            handle = await state.dials.get(dial_id)
        except TokenStoreError as exc:
            logger.warning("GET /calls: %s", exc)
            return _bad("dial store unavailable", 503)
        if handle is None:
            return _bad("no such dial", 404)
        return JSONResponse({**handle.as_dict(), "history": handle.history})

    @app.post(STATUS_PATH)
    async def status_callback(request: Request) -> Response:
        return await _handle_callback(state, outbound, request)


def _idempotent(handle: CallHandle | None, pending: bool, dial_id: str = "") -> JSONResponse:
    """The answer to a repeated dial id: the first dial (still being placed, or placed)."""
    if handle is None or pending:
        body = {"dial_id": handle.dial_id if handle else dial_id, "status": "initiated"}
        return JSONResponse(body, status_code=200)
    return JSONResponse(handle.as_dict(), status_code=200)


def _dial_request(payload: Any, state: RunnerState) -> tuple[Dialer, DialRequest] | str:
    """The validated dial (with the provider's dialer), or why the request is refused."""
    if not isinstance(payload, dict):
        return "expected a JSON object with to, from and provider"
    provider = payload.get("provider") or state.config.transport
    to, from_ = payload.get("to"), payload.get("from")
    dialer = registry.dialer(provider) if isinstance(provider, str) else None
    if dialer is None:
        return f"provider must be one of {', '.join(d.name for d in registry.dialers())}"
    if not (isinstance(to, str) and to and isinstance(from_, str) and from_):
        return "to and from are required strings"
    metadata = payload.get("metadata") or {}
    if not isinstance(metadata, dict):
        return "metadata must be a JSON object"
    amd = payload.get("machine_detection", "off")
    if amd not in _MACHINE_DETECTION:
        return f"machine_detection must be one of {', '.join(_MACHINE_DETECTION)}"
    base = f"https://{state.config.proxy}"
    # Most providers fetch the runner itself; some only a call flow of theirs that leads here.
    hint = dialer.flow_url_hint
    answer_url = payload.get("answer_url") if hint is not None else f"{base}/"
    if not isinstance(answer_url, str) or not answer_url:
        return hint or "answer_url must be a URL"
    return dialer, DialRequest(
        to=to,
        from_=from_,
        answer_url=answer_url,
        status_url=base + STATUS_PATH,
        machine_detection=amd,
        metadata=metadata,
    )


async def _handle_callback(
    state: RunnerState, outbound: OutboundConfig, request: Request
) -> Response:
    """Verify a status/AMD callback like the answer webhook, then apply it to its dial."""
    book: DialBook = state.dials
    if _announced_too_large(request, MAX_WEBHOOK_BODY):
        return _bad("body too large", 413)
    candidates: list[str] = []
    if state.secure:
        if not state.config.proxy:
            return _bad("callbacks need the public host: start the runner with -x HOST", 403)
        candidates, why = _candidates(state, request)
        if not candidates:
            challenge = auth_challenge(state)
            if challenge is not None:
                return challenged(challenge, "callback")
            CALLS_REFUSED.inc(stage="callback", reason="unsigned")
            logger.warning("status callback refused (403): %s", why)
            return _bad("invalid signature", 403)
    try:
        body = await _read_body(request, MAX_WEBHOOK_BODY)
    except _TooLarge:
        return _bad("body too large", 413)
    params = _params(request, body)
    fields = dict(params)
    provider: str | None = None
    if state.secure:
        provider = next((p for p in candidates if _verify(state, p, request, body, params)), None)
        if provider is None:
            challenge = auth_challenge(state, candidates)
            if challenge is not None:
                return challenged(challenge, "callback", refused="/".join(candidates))
            CALLS_REFUSED.inc(stage="callback", reason="bad signature")
            logger.warning("status callback refused (403): bad %s signature", "/".join(candidates))
            return _bad("invalid signature", 403)
    try:
        if provider is None:  # local mode: nothing verified
            provider = await _unverified_provider(book, request, fields)
        if provider is None:
            return _bad("unrecognised callback")
        await book.on_callback(provider, fields)
    except TokenStoreError as exc:
        # 503: the provider may retry later; the dial record was not changed.
        logger.warning("status callback deferred (503): %s", exc)
        return _bad("dial store unavailable", 503)
    return Response(status_code=204)


async def _unverified_provider(
    book: DialBook, request: Request, fields: dict[str, str]
) -> str | None:
    """Local mode: the provider we dialed this call id with, else one guessed from the shape."""
    for dialer in registry.dialers():
        if await book.find(dialer.name, dialer.callback_call_id(fields)) is not None:
            return dialer.name
    return detect_provider(request, fields)
