"""Vonage signed webhooks: ``Authorization: Bearer <JWT>``, HS256 with the signature secret.

Vonage signs its Voice API webhooks (answer and event; on by default for Voice applications)
with a JWT whose HMAC-SHA256 key is the account's *signature secret* (dashboard > API settings;
``VONAGE_SIGNATURE_SECRET`` here). Its claims carry ``iat`` (a token older than the tolerance is
refused, so a captured webhook is not replayable for long), ``api_key`` and ``payload_hash``: the
SHA-256 hex digest of the payload, which ties the token to this request's content. Vonage's
documentation defines the payload as the request body of a POST, and for a GET (the default
answer method) as the query parameters turned into a JSON object in their order, written without
whitespace. A request with a payload but no ``payload_hash`` is refused: the signature alone
would then vouch for nothing but "Vonage sent something in the last five minutes".

Needs PyJWT (the ``vonage`` extra). Every failure is just False: hostile input never raises.
"""

from __future__ import annotations

import hashlib
import json
import time
from urllib.parse import parse_qsl, urlsplit

from callpipe.providers.base import SignedWebhook, TimedSecretVerifier, safe_equal

SIGNATURE_HEADER = "authorization"
SECRET_ENV = "VONAGE_SIGNATURE_SECRET"
TOLERANCE_SECS = 300.0
MAX_TOKEN_CHARS = 4096


def _claims(secret: str, token: str) -> dict[str, object] | None:
    try:
        import jwt

        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"verify_exp": True, "require": ["iat"]},
        )
    except Exception:  # any malformed, mis-signed or expired token (or PyJWT missing)
        return None
    return claims if isinstance(claims, dict) else None


def payload_digests(method: str, url: str, body: bytes) -> list[str]:
    """The SHA-256 hex digests a genuine ``payload_hash`` may equal for this request.

    POST: the raw body, and the body's JSON re-written compactly (the same object, should the
    sender's spacing differ). GET: the query parameters as a compact JSON object in their order.
    """
    digests: list[str] = []
    if method.upper() == "POST" and body:
        digests.append(hashlib.sha256(body).hexdigest())
        try:
            compact = json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False)
        except (ValueError, RecursionError):
            return digests
        digests.append(hashlib.sha256(compact.encode("utf-8", "surrogatepass")).hexdigest())
        return digests
    query = urlsplit(url).query
    if query:
        params = dict(parse_qsl(query, keep_blank_values=True))
        compact = json.dumps(params, separators=(",", ":"), ensure_ascii=False)
        digests.append(hashlib.sha256(compact.encode("utf-8", "surrogatepass")).hexdigest())
    return digests


def verify_vonage_jwt(
    secret: str,
    authorization: str | None,
    body: bytes,
    *,
    method: str = "POST",
    url: str = "",
    now: float | None = None,
    tolerance: float = TOLERANCE_SECS,
) -> bool:
    """True when ``authorization`` is a Bearer JWT signed with ``secret`` for this payload."""
    if not secret or not authorization or len(authorization) > MAX_TOKEN_CHARS + 16:
        return False
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
        return False
    claims = _claims(secret, token)
    if claims is None:
        return False
    iat = claims.get("iat")
    current = time.time() if now is None else now
    if not isinstance(iat, int | float) or abs(current - iat) > tolerance:
        return False
    expected = claims.get("payload_hash")
    digests = payload_digests(method, url, body)
    if not isinstance(expected, str):
        return not digests  # no payload, nothing to bind
    return any(safe_equal(expected.lower(), digest) for digest in digests)


class VonageVerifier(TimedSecretVerifier):
    """Checks a Vonage webhook's JWT against the signature secret (see the module docstring)."""

    default_tolerance = TOLERANCE_SECS

    def verify(self, request: SignedWebhook) -> bool:
        return verify_vonage_jwt(
            self._secret,
            request.headers.get(SIGNATURE_HEADER),
            request.body,
            method=request.method,
            url=request.url,
            now=self._clock(),
            tolerance=self._tolerance,
        )
