"""Webhook signatures and one-time stream tokens: the runner is secure by default.

Two independent checks guard a call:

1. ``POST /`` (the provider's answer webhook) is accepted only for a provider whose verification
   is configured, and only when it passes: Twilio ``X-Twilio-Signature`` (exactly as Twilio's SDK:
   HMAC-SHA1 with the Auth Token, or HMAC-SHA256 with a webhook SharedKey when
   ``X-Twilio-Webhooks-Signature-Settings`` says so; JSON webhooks through ``bodySHA256``),
   Telnyx ``telnyx-signature-ed25519`` over ``"{timestamp}|{body}"`` with a timestamp tolerance,
   Plivo ``X-Plivo-Signature-V3`` (HMAC-SHA256 of URL, sorted parameters and nonce). The URL is
   the *public* one (``https://{proxy}{path}``, from ``-x``), never one built from request
   headers an attacker writes.
2. The answer document embeds a short-lived, single-use stream token (``wss://HOST/ws/<token>``).
   ``/ws`` refuses a connection whose token is missing, forged, expired, already used, or bound to
   another call. Tokens are HMAC-SHA256 signed with ``CALLPIPE_STREAM_SECRET`` so any worker or
   instance of a fleet validates any other's tokens; the call binding is an HMAC tag inside the
   token, not the call id itself. The used-token set and the one-token-per-call record live in a
   :mod:`~callpipe.runner.token_store` (per process, or fleet-wide in Redis).

Every comparison here is constant-time and total: hostile input (non-ASCII, oversized, malformed)
makes a check fail, never raise.

Ed25519 (Telnyx) needs PyNaCl, the ``telnyx`` extra; it is imported only when a Telnyx public key
is configured, and its absence then fails at start-up rather than skipping the check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

from callpipe.errors import ConfigurationError, StreamTokenError, TokenStoreError
from callpipe.providers.base import safe_equal
from callpipe.providers.plivo.signature import plivo_v3_signature, verify_plivo_v3
from callpipe.providers.telnyx.signature import TELNYX_TOLERANCE_SECS, TelnyxVerifier
from callpipe.providers.twilio.signature import (
    TWILIO_HMAC_SHA1,
    TWILIO_HMAC_SHA256,
    twilio_signature,
    twilio_signature_algorithm,
    verify_twilio,
)
from callpipe.runner.token_store import MemoryTokenStore, TokenStore

STREAM_SECRET_ENV = "CALLPIPE_STREAM_SECRET"
DEFAULT_TOKEN_TTL_SECS = 30.0
DEFAULT_REPLAY_WINDOW_SECS = 4 * 3600.0
"""How long a call's first token is remembered against replayed webhooks (Twilio and Plivo
sign no timestamp, so a captured webhook stays valid; calls rarely last longer)."""
MAX_TOKEN_CHARS = 512
BINDING_TAG_CHARS = 22
"""128 bits of HMAC-SHA256: the call binding inside a token."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


TokenError = StreamTokenError
"""Why a stream token was refused (kept under its old name; see :mod:`callpipe.errors`)."""


@dataclass(frozen=True, slots=True)
class StreamClaims:
    """What a valid token says: its id, expiry and provider.

    ``call_id`` is filled in by ``redeem`` once the call binding was checked (the token itself
    carries only ``binding``, an HMAC tag of the call id; empty for an unbound token).
    """

    jti: str
    exp: float
    provider: str
    call_id: str
    binding: str = ""


class StreamTokens:
    """Issue and redeem one-time stream tokens (``payload.signature``, both base64url).

    The payload says the token's id, expiry and provider, and, for a token bound to a call, a
    *binding tag*: an HMAC of the call id under the same secret. The call id itself is not in
    the token, so whoever holds a token can neither read which call it is for nor choose one:
    ``redeem`` recomputes the tag from the call id in the provider's ``start`` message.

    :meth:`verify` needs only the token (signature, expiry; no single-use bookkeeping): it can
    run before the WebSocket upgrade is accepted. :meth:`redeem_async` adds the call binding
    and single use through the token store (fleet-wide with Redis); :meth:`issue_for_call`
    mints at most one token per call id. ``redeem`` is the synchronous in-process form.
    """

    def __init__(
        self,
        secret: bytes,
        *,
        ttl: float = DEFAULT_TOKEN_TTL_SECS,
        store: TokenStore | None = None,
        replay_window: float = DEFAULT_REPLAY_WINDOW_SECS,
    ) -> None:
        if len(secret) < 16:
            raise ConfigurationError(
                f"stream token secret must be at least 16 bytes (check {STREAM_SECRET_ENV})"
            )
        self._secret = secret
        self.ttl = ttl
        self.replay_window = max(replay_window, ttl)
        self._local = MemoryTokenStore()
        self.store: TokenStore = store if store is not None else self._local

    def _mac(self, data: bytes) -> str:
        return _b64url(hmac.new(self._secret, data, hashlib.sha256).digest())

    def _sign(self, payload: str) -> str:
        return self._mac(payload.encode("ascii"))

    def _binding(self, jti: str, call_id: str) -> str:
        data = b"call\x00" + jti.encode() + b"\x00" + call_id.encode("utf-8", "surrogatepass")
        return self._mac(data)[:BINDING_TAG_CHARS]

    def issue(self, *, provider: str, call_id: str = "", now: float | None = None) -> str:
        now = time.time() if now is None else now
        jti = secrets.token_hex(8)
        claims: dict[str, Any] = {"jti": jti, "exp": round(now + self.ttl, 3), "p": provider}
        if call_id:
            claims["b"] = self._binding(jti, call_id)
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    async def issue_for_call(self, *, provider: str, call_id: str, bind: bool) -> str:
        """The stream token for this call's webhook: minted once per call id.

        A replayed or retried webhook for the same call gets the token minted the first time
        (useless once redeemed or expired), never a fresh one. Raises
        :class:`~callpipe.runner.token_store.TokenStoreError` when the shared store is down.
        """
        token = self.issue(provider=provider, call_id=call_id if bind else "")
        if not call_id:
            return token
        digest = hashlib.sha256(f"{provider}\x00{call_id}".encode("utf-8", "surrogatepass"))
        existing = await self.store.add_if_absent(
            "mint:" + digest.hexdigest()[:32], token, self.replay_window
        )
        return token if existing is None else existing

    def verify(self, token: str, *, now: float | None = None) -> StreamClaims:
        """Check signature and expiry only (no single-use bookkeeping, no call binding).

        Never raises anything but :class:`TokenError`, whatever ``token`` holds.
        """
        now = time.time() if now is None else now
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise TokenError("malformed token")
        if not token.isascii():
            raise TokenError("bad signature")
        payload, sep, signature = token.partition(".")
        if not sep or not hmac.compare_digest(signature, self._sign(payload)):
            raise TokenError("bad signature")
        try:
            claims = json.loads(_unb64url(payload))
            if not isinstance(claims, dict):
                raise TypeError("claims are not an object")
            result = StreamClaims(
                jti=str(claims["jti"]),
                exp=float(claims["exp"]),
                provider=str(claims.get("p", "")),
                call_id="",
                binding=str(claims.get("b", "")),
            )
        except (ValueError, KeyError, TypeError, binascii.Error, RecursionError) as exc:
            raise TokenError("malformed token") from exc
        if not result.exp >= now:  # also refuses NaN
            raise TokenError("expired")
        return result

    def _check_call(
        self, token: str | None, provider: str, call_id: str | None, now: float
    ) -> StreamClaims:
        if not token:
            raise TokenError("missing token")
        claims = self.verify(token, now=now)
        if claims.provider and provider and claims.provider != provider:
            raise TokenError(f"token is for {claims.provider}, stream is {provider}")
        if claims.binding:
            expected = self._binding(claims.jti, call_id or "")
            if not safe_equal(claims.binding, expected):
                raise TokenError("token is bound to another call")
            claims = replace(claims, call_id=call_id or "")
        return claims

    async def redeem_async(
        self,
        token: str | None,
        *,
        provider: str,
        call_id: str | None,
        now: float | None = None,
    ) -> StreamClaims:
        """Validate and consume ``token`` for this call (fleet-wide with a shared store).

        Raises :class:`TokenError` (also when the shared store cannot be reached: fail closed).
        """
        now = time.time() if now is None else now
        claims = self._check_call(token, provider, call_id, now)
        try:
            taken = await self.store.add_if_absent(
                "used:" + claims.jti, "1", claims.exp - now + 1.0
            )
        except TokenStoreError as exc:
            raise TokenError(str(exc)) from exc
        if taken is not None:
            raise TokenError("token already used")
        return claims

    def redeem(
        self,
        token: str | None,
        *,
        provider: str,
        call_id: str | None,
        now: float | None = None,
    ) -> StreamClaims:
        """Synchronous :meth:`redeem_async` for an in-process store; raises :class:`TokenError`."""
        now = time.time() if now is None else now
        claims = self._check_call(token, provider, call_id, now)
        store = self.store if isinstance(self.store, MemoryTokenStore) else self._local
        if store.add_if_absent_sync("used:" + claims.jti, "1", claims.exp - now + 1.0):
            raise TokenError("token already used")
        return claims


def stream_secret_from_env(*, generate: bool = True) -> bytes | None:
    """``CALLPIPE_STREAM_SECRET`` (any string ≥ 16 chars), or a fresh random one if allowed."""
    value = os.environ.get(STREAM_SECRET_ENV)
    if value:
        return value.encode()
    return secrets.token_bytes(32) if generate else None


# --------------------------------------------------------------------------- webhook signatures


def public_url(proxy: str | None, path: str, query: str, fallback: str) -> str:
    """The URL the provider signed: ``https://{proxy}{path}?{query}`` behind a proxy."""
    if not proxy:
        return fallback
    url = f"https://{proxy}{path}"
    return f"{url}?{query}" if query else url


__all__ = [
    "TELNYX_TOLERANCE_SECS",
    "TWILIO_HMAC_SHA1",
    "TWILIO_HMAC_SHA256",
    "StreamTokens",
    "TelnyxVerifier",
    "plivo_v3_signature",
    "public_url",
    "safe_equal",
    "twilio_signature",
    "twilio_signature_algorithm",
    "verify_plivo_v3",
    "verify_twilio",
]
"""The provider signature functions live with their providers (``callpipe.providers.*``); they
are re-exported here, where the runner's security documentation and older imports find them."""
