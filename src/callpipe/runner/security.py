"""Webhook signatures and one-time stream tokens: the runner is secure by default.

Two independent checks guard a call:

1. ``POST /`` (the provider's answer webhook) is verified with the provider's own signature
   scheme whenever its credentials are configured: Twilio ``X-Twilio-Signature`` (HMAC-SHA1 of the
   public URL plus the sorted form parameters), Telnyx ``telnyx-signature-ed25519`` over
   ``"{timestamp}|{body}"`` with a timestamp tolerance, Plivo ``X-Plivo-Signature-V3``
   (HMAC-SHA256 of URL, sorted parameters and nonce). The URL is the *public* one
   (``https://{proxy}{path}``): behind a tunnel or load balancer the local URL differs.
2. The answer document embeds a short-lived, single-use stream token (``wss://HOST/ws/<token>``).
   ``/ws`` refuses a connection whose token is missing, forged, expired, already used, or bound to
   another call. Tokens are HMAC-SHA256 signed with ``CALLPIPE_STREAM_SECRET`` so any worker or
   instance of a fleet validates any other's tokens. The used-token set is per process: a token
   replayed to *another* instance within its TTL is not caught by that set, which is acceptable
   because the token also binds the provider's call id (where the provider echoes it) and expires
   in seconds, and the provider connects exactly once.

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
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from callpipe.errors import ConfigurationError, MissingDependencyError, StreamTokenError

STREAM_SECRET_ENV = "CALLPIPE_STREAM_SECRET"
DEFAULT_TOKEN_TTL_SECS = 30.0
TELNYX_TOLERANCE_SECS = 300


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


TokenError = StreamTokenError
"""Why a stream token was refused (kept under its old name; see :mod:`callpipe.errors`)."""


@dataclass(frozen=True, slots=True)
class StreamClaims:
    """What a valid token says: its id, expiry, provider and (optionally) the call it is for."""

    jti: str
    exp: float
    provider: str
    call_id: str


class StreamTokens:
    """Issue and redeem one-time stream tokens (``payload.signature``, both base64url).

    ``redeem`` checks the signature, expiry, provider, call binding and single use. The used set
    holds ids until they expire, so it stays small (ids are pruned on every redeem).
    """

    def __init__(self, secret: bytes, *, ttl: float = DEFAULT_TOKEN_TTL_SECS) -> None:
        if len(secret) < 16:
            raise ConfigurationError(
                f"stream token secret must be at least 16 bytes (check {STREAM_SECRET_ENV})"
            )
        self._secret = secret
        self.ttl = ttl
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()

    def _sign(self, payload: str) -> str:
        return _b64url(hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, *, provider: str, call_id: str = "", now: float | None = None) -> str:
        now = time.time() if now is None else now
        claims = {"jti": secrets.token_hex(8), "exp": round(now + self.ttl, 3), "p": provider}
        if call_id:
            claims["c"] = call_id
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def verify(self, token: str, *, now: float | None = None) -> StreamClaims:
        """Check signature and expiry only (no single-use bookkeeping)."""
        now = time.time() if now is None else now
        payload, sep, signature = token.partition(".")
        if not sep or not hmac.compare_digest(signature, self._sign(payload)):
            raise TokenError("bad signature")
        try:
            claims = json.loads(_unb64url(payload))
            result = StreamClaims(
                jti=str(claims["jti"]),
                exp=float(claims["exp"]),
                provider=str(claims.get("p", "")),
                call_id=str(claims.get("c", "")),
            )
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise TokenError("malformed token") from exc
        if result.exp < now:
            raise TokenError("expired")
        return result

    def redeem(
        self,
        token: str | None,
        *,
        provider: str,
        call_id: str | None,
        now: float | None = None,
    ) -> StreamClaims:
        """Validate and consume ``token`` for this call; raises :class:`TokenError`."""
        if not token:
            raise TokenError("missing token")
        now = time.time() if now is None else now
        claims = self.verify(token, now=now)
        if claims.provider and provider and claims.provider != provider:
            raise TokenError(f"token is for {claims.provider}, stream is {provider}")
        if claims.call_id and claims.call_id != (call_id or ""):
            raise TokenError("token is bound to another call")
        with self._lock:
            for jti, exp in list(self._used.items()):
                if exp < now:
                    del self._used[jti]
            if claims.jti in self._used:
                raise TokenError("token already used")
            self._used[claims.jti] = claims.exp
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


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio: base64 HMAC-SHA1 of the URL followed by each ``key + value``, sorted by key."""
    data = url + "".join(k + v for k, v in sorted(params, key=lambda kv: kv[0]))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _twilio_url_variants(url: str) -> list[str]:
    """Twilio signs the URL as configured: with or without the default port."""
    parts = urlsplit(url)
    variants = [url]
    host = parts.hostname or ""
    default_port = 443 if parts.scheme == "https" else 80
    if parts.port is None:
        variants.append(urlunsplit(parts._replace(netloc=f"{host}:{default_port}")))
    elif parts.port == default_port:
        variants.append(urlunsplit(parts._replace(netloc=host)))
    return variants


def verify_twilio(
    auth_token: str, url: str, params: list[tuple[str, str]], signature: str | None
) -> bool:
    if not signature:
        return False
    return any(
        hmac.compare_digest(twilio_signature(auth_token, u, params), signature)
        for u in _twilio_url_variants(url)
    )


def plivo_v3_signature(
    auth_token: str, method: str, url: str, params: Mapping[str, str | list[str]], nonce: str
) -> str:
    """Plivo V3: base64 HMAC-SHA256 of ``base + "." + nonce``.

    For GET the base is the URL with query and parameters merged as a sorted query string; for
    POST it is the URL (query sorted, then ``?``) followed by the sorted ``key + value`` of the
    form parameters, with a ``.`` between a non-empty query and the parameters.
    """
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    query: dict[str, list[str]] = {}
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        query.setdefault(k, []).append(v)

    def sorted_query(items: Mapping[str, str | list[str]]) -> str:
        out = []
        for key in sorted(items):
            value = items[key]
            values = sorted(value) if isinstance(value, list) else [value]
            out.append("&".join(f"{key}={v}" for v in values))
        return "&".join(out)

    if method.upper() == "GET":
        merged: dict[str, str | list[str]] = {**params, **query}
        q = sorted_query(merged)
        data = f"{base}?{q}" if q else base
    else:
        q = sorted_query(query)
        data = base
        if q or params:
            data += "?" + q
        if q and params:
            data += "."
        for key in sorted(params):
            value = params[key]
            values = sorted(value) if isinstance(value, list) else [value]
            data += "".join(f"{key}{v}" for v in values)
    message = f"{data}.{nonce}".encode()
    digest = hmac.new(auth_token.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_plivo_v3(
    auth_token: str,
    method: str,
    url: str,
    params: Mapping[str, str | list[str]],
    nonce: str | None,
    signature_header: str | None,
) -> bool:
    if not nonce or not signature_header:
        return False
    expected = plivo_v3_signature(auth_token, method, url, params, nonce)
    return any(hmac.compare_digest(expected, s.strip()) for s in signature_header.split(","))


class TelnyxVerifier:
    """Ed25519 verification of Telnyx webhooks with a timestamp tolerance."""

    def __init__(self, public_key_b64: str, *, tolerance: float = TELNYX_TOLERANCE_SECS) -> None:
        try:
            from nacl.signing import VerifyKey
        except ImportError as exc:
            raise MissingDependencyError("PyNaCl (Telnyx webhook verification)", "telnyx") from exc
        try:
            key = base64.b64decode(public_key_b64, validate=True)
        except binascii.Error as exc:
            raise ConfigurationError("TELNYX_PUBLIC_KEY is not valid base64") from exc
        if len(key) != 32:
            raise ConfigurationError("TELNYX_PUBLIC_KEY must be a 32-byte Ed25519 key in base64")
        self._key = VerifyKey(key)
        self._tolerance = tolerance

    def verify(
        self,
        body: bytes,
        signature_b64: str | None,
        timestamp: str | None,
        *,
        now: float | None = None,
    ) -> bool:
        from nacl.exceptions import BadSignatureError

        if not signature_b64 or not timestamp:
            return False
        now = time.time() if now is None else now
        try:
            if abs(now - int(timestamp)) > self._tolerance:
                return False
            signature = base64.b64decode(signature_b64, validate=True)
        except (ValueError, binascii.Error):
            return False
        try:
            self._key.verify(timestamp.encode() + b"|" + body, signature)
        except (BadSignatureError, ValueError):
            return False
        return True
