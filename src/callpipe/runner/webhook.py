"""``GET|POST /``: the provider's answer webhook, refused cheaply unless it is genuine.

The order is what keeps a hostile request cheap (all before any call work):

1. An announced body over :data:`MAX_WEBHOOK_BODY` is refused (413) without reading it; a body
   without a length is read only up to the cap.
2. Secure mode: the provider is one whose verification is configured (``-t``, or, without it,
   whichever configured provider's signature header the request carries). A request carrying no
   such header is refused (403) *before its body is read*, and so is any request when ``-x`` is
   not given: the signed URL is the public one from ``-x``, never rebuilt from ``Host`` or
   ``X-Forwarded-*``, which the sender writes.
3. The body is parsed (bounded, malformed input is just "no fields") and the signature checked.
4. Capacity and drain, then at most one stream token per call id (a replayed webhook gets the
   first token back, which is single-use), then the provider's answer document.

A provider that sends HTTP Basic credentials only once challenged (RFC 7235: Bandwidth) gets
``401`` with its ``WWW-Authenticate`` challenge instead of 403 in step 2 (and for wrong
credentials in step 3), when its verification is configured: otherwise it would never send them.

``--insecure`` (local mode) skips 2-3 and detects the provider from the request's shape.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from callpipe.errors import TokenStoreError
from callpipe.log import mask
from callpipe.providers import registry
from callpipe.providers.base import Provider, SignedWebhook
from callpipe.runner.answer import answer_document, busy_document
from callpipe.runner.calls import CALLS_REFUSED
from callpipe.runner.http_guard import log_safe
from callpipe.runner.local import root_advice
from callpipe.runner.security import public_url
from callpipe.runner.types import TELEPHONY_PROVIDERS

if TYPE_CHECKING:
    from callpipe.runner.app import RunnerState

logger = logging.getLogger(__name__)

MAX_WEBHOOK_BODY = 64 * 1024
"""Provider answer webhooks are 1-3 KB of form fields; 64 KiB leaves room and bounds parsing."""

SIGNATURE_HEADERS: dict[str, str] = {
    p.name: p.signature_headers[0] for p in registry.PROVIDERS if p.signature_headers
}
"""The header each verifiable provider signs with (in the order detection tries them)."""

BOUND_PROVIDERS = tuple(p.name for p in registry.PROVIDERS if p.binds_call_id)
"""Providers that echo the webhook's call id in their stream ``start`` (the token binds it)."""

_SAFE_HOST = re.compile(r"^[A-Za-z0-9.\-]{1,253}(:[0-9]{1,5})?$")

_Scalar = str | int | float | bool


class _TooLarge(Exception):
    pass


def _refuse(status: int, error: str, reason: str, message: str, *args: object) -> Response:
    CALLS_REFUSED.inc(stage="webhook", reason=reason)
    logger.warning("webhook refused (%d): " + message, status, *args)
    return JSONResponse({"error": error}, status_code=status)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, read only up to ``limit`` bytes (raises :class:`_TooLarge` past it)."""
    if request.method != "POST":
        return b""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _announced_too_large(request: Request, limit: int) -> bool:
    length = request.headers.get("content-length")
    if length is None:
        return False
    return not length.isdigit() or len(length) > 12 or int(length) > limit


def _is_form(request: Request, body: bytes) -> bool:
    ctype = request.headers.get("content-type", "").lower()
    return not body or ctype.startswith("application/x-www-form-urlencoded")


def _params(request: Request, body: bytes) -> list[tuple[str, str]]:
    """Form fields of a POST (or a JSON object's scalar fields, and those of its objects one
    level down as ``parent.child``), else the query parameters."""
    if request.method != "POST" or not body:
        return list(request.query_params.multi_items())
    if _is_form(request, body):
        return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    if "json" in request.headers.get("content-type", "").lower():
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return []
        if isinstance(data, dict):
            fields = [(str(k), str(v)) for k, v in data.items() if isinstance(v, _Scalar)]
            for key, value in data.items():
                if isinstance(value, dict):
                    fields += [
                        (f"{key}.{k}", str(v)) for k, v in value.items() if isinstance(v, _Scalar)
                    ]
            return fields
    return []


def configured_providers(state: RunnerState) -> list[str]:
    """Providers whose webhook verification is configured (the only ones accepted when secure)."""
    return list(state.verifiers)


def _signed_by(provider: Provider, request: Request) -> bool:
    return any(h in request.headers for h in provider.signature_headers)


def _candidates(state: RunnerState, request: Request) -> tuple[list[str], str]:
    """Providers this request may be verified as, from its headers alone (before the body)."""
    configured = configured_providers(state)
    forced = registry.get(state.config.transport)
    if forced is not None:
        if forced.name not in configured:
            return [], f"no webhook verification is configured for {forced.name}"
        wanted = [forced.name]
    else:
        if not configured:
            return [], "no provider webhook secret is configured"
        wanted = configured
    present = [name for name in wanted if _signed_by(registry.require(name), request)]
    if not present:
        return [], f"unsigned (expected a {'/'.join(wanted)} signature)"
    return present, ""


def auth_challenge(state: RunnerState, providers: list[str] | None = None) -> str | None:
    """The ``WWW-Authenticate`` challenge owed to a webhook that failed authentication: that of
    a configured provider (among ``providers``, else those this runner accepts) which sends its
    HTTP Basic credentials only once challenged; None when no such provider applies."""
    if providers is None:
        forced = registry.get(state.config.transport)
        providers = [forced.name] if forced is not None else configured_providers(state)
    for name in providers:
        provider = registry.get(name)
        if provider is not None and name in state.verifiers and provider.auth_challenge:
            return provider.auth_challenge
    return None


def challenged(challenge: str, stage: str, *, refused: str | None = None) -> Response:
    """``401`` with ``challenge``: a first unauthenticated request is the normal start of the
    exchange (DEBUG); wrong credentials (``refused``: the providers tried) are a refusal."""
    if refused is None:
        # Counted, so unsigned traffic (a scanner, a misconfigured provider) stays visible.
        CALLS_REFUSED.inc(stage=stage, reason="challenged")
        logger.debug("%s challenged (401): no credentials yet", stage)
    else:
        CALLS_REFUSED.inc(stage=stage, reason="bad signature")
        logger.warning("%s refused (401): bad %s credentials", stage, refused)
    return JSONResponse(
        {"error": "authentication required"},
        status_code=401,
        headers={"WWW-Authenticate": challenge},
    )


def _verify(
    state: RunnerState,
    provider: str,
    request: Request,
    body: bytes,
    params: list[tuple[str, str]],
) -> bool:
    verifier = state.verifiers.get(provider)
    if verifier is None:
        return False
    proxy = state.config.proxy or ""
    # The path as sent (still percent-encoded): what the provider signed.
    raw_path = request.scope.get("raw_path") or b""
    path = raw_path.decode("latin-1") if raw_path else request.url.path
    is_form = _is_form(request, body)
    signed = SignedWebhook(
        method=request.method,
        url=public_url(proxy, path, request.url.query, ""),
        headers=request.headers,
        body=body,
        form=params if request.method == "POST" and is_form else [],
        is_form=is_form,
    )
    return verifier.verify(signed)


def detect_provider(request: Request, fields: dict[str, str]) -> str | None:
    """Local mode only: guess the provider from the request's shape (nothing is verified)."""
    provider = registry.detect_webhook(request.headers, fields)
    return provider.name if provider is not None else None


def _call_id(provider: str, fields: dict[str, str]) -> str:
    found = registry.get(provider)
    return found.webhook_call_id(fields) if found is not None else ""


def _stream_host(state: RunnerState, request: Request) -> str:
    """``-x`` when given. Local mode only: the ``Host`` the client used, if it is a plain host."""
    config = state.config
    if config.proxy:
        return config.proxy
    host = request.headers.get("host", "")
    return host if _SAFE_HOST.match(host) else f"{config.host}:{config.port}"


async def handle_answer(state: RunnerState, request: Request) -> Response:
    """The answer webhook (see the module docstring for the order of checks)."""
    config = state.config
    if _announced_too_large(request, MAX_WEBHOOK_BODY):
        return _refuse(
            413, "body too large", "too large", "announced body over %d bytes", MAX_WEBHOOK_BODY
        )
    candidates: list[str] = []
    if state.secure:
        if not config.proxy:
            return _refuse(
                403,
                "webhooks need the public host: start the runner with -x HOST",
                "no proxy",
                "no -x given, so the signed URL is unknown (pass -x HOST)",
            )
        candidates, why = _candidates(state, request)
        if not candidates:
            challenge = auth_challenge(state)
            if challenge is not None:
                return challenged(challenge, "webhook")
            return _refuse(403, "invalid signature", "unsigned", "%s", why)
    try:
        body = await _read_body(request, MAX_WEBHOOK_BODY)
    except _TooLarge:
        return _refuse(413, "body too large", "too large", "body over %d bytes", MAX_WEBHOOK_BODY)
    except ClientDisconnect:  # gone mid-body: nobody to answer, nothing to log above DEBUG
        CALLS_REFUSED.inc(stage="webhook", reason="disconnect")
        logger.debug("webhook: client disconnected while sending its body")
        return Response(status_code=400)
    params = _params(request, body)
    fields = dict(params)
    if state.secure:
        provider = next((p for p in candidates if _verify(state, p, request, body, params)), None)
        if provider is None:
            challenge = auth_challenge(state, candidates)
            if challenge is not None:
                return challenged(challenge, "webhook", refused="/".join(candidates))
            return _refuse(
                403, "invalid signature", "bad signature", "bad %s signature", "/".join(candidates)
            )
    else:
        forced = config.transport if config.transport in TELEPHONY_PROVIDERS else None
        provider = forced or detect_provider(request, fields)
        if provider is None:
            local = config.insecure and config.proxy is None
            return JSONResponse(
                root_advice(local=local, host=config.host, port=config.port), status_code=400
            )
    reason = state.calls.refusal_reason()
    if reason is not None:
        return _busy(provider, reason)
    call_id = _call_id(provider, fields)
    token = None
    if state.secure:
        if not call_id:  # every provider sends one; without it "one stream per call" cannot hold
            return _refuse(
                400, "no call id", "no call id", "signed %s webhook without a call id", provider
            )
        try:
            token = await state.tokens.issue_for_call(
                provider=provider, call_id=call_id, bind=provider in BOUND_PROVIDERS
            )
        except TokenStoreError as exc:
            logger.warning("%s webhook: %s; refusing the call", provider, exc)
            return _busy(provider, "token store unavailable", status=503)
    logger.info("%s webhook: answering call %s", provider, log_safe(mask(call_id) or "-"))
    try:
        await state.dials.on_answer(provider, fields, call_id, token)
    except TokenStoreError as exc:  # a dialed call would meet the bot without its metadata
        logger.warning("%s webhook: %s; refusing the call", provider, exc)
        return _busy(provider, "dial store unavailable", status=503)
    doc = answer_document(
        provider,
        _stream_host(state, request),
        token=token,
        from_number=fields.get("From") or fields.get("CallFrom") or fields.get("from") or "",
        to_number=fields.get("To") or fields.get("CallTo") or fields.get("to") or "",
        call_id=call_id,
    )
    return Response(doc.body, status_code=doc.status_code, media_type=doc.media_type)


def _busy(provider: str, reason: str, *, status: int | None = None) -> Response:
    CALLS_REFUSED.inc(stage="webhook", reason=reason)
    logger.info("%s webhook: refusing a call (%s)", provider, reason)
    doc = busy_document(provider, reason)
    if reason == "draining" or status == 503:
        # This instance cannot take it: 503 lets a load balancer (or the provider's fallback
        # URL) send the call elsewhere; the body still rejects it if nobody retries.
        headers = {"Retry-After": "1"}
        return Response(doc.body, status_code=503, media_type=doc.media_type, headers=headers)
    return Response(doc.body, status_code=doc.status_code, media_type=doc.media_type)
