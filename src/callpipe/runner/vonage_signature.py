"""Vonage signed webhooks: ``Authorization: Bearer <JWT>``, HS256 with the signature secret.

Vonage signs Voice API callbacks (when signed webhooks are on) with a JWT whose HMAC key is the
account's signature secret (``VONAGE_SIGNATURE_SECRET``); its ``payload_hash`` claim is the
SHA-256 hex digest of the body, which ties the token to this request. A token older than the
tolerance (``iat``) is refused too, so a captured callback cannot be replayed for long.
Needs PyJWT (the ``vonage`` extra). Every failure is just False: hostile input never raises.
"""

from __future__ import annotations

import hashlib
import time

from callpipe.runner.security import safe_equal

VONAGE_TOLERANCE_SECS = 300.0


def verify_vonage_jwt(
    secret: str,
    authorization: str | None,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: float = VONAGE_TOLERANCE_SECS,
) -> bool:
    """True when ``authorization`` is a Bearer JWT signed with ``secret`` for ``body``."""
    if not secret or not authorization:
        return False
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token or len(token) > 4096:
        return False
    try:
        import jwt

        claims = jwt.decode(
            token.strip(),
            secret,
            algorithms=["HS256"],
            options={"verify_exp": True, "require": ["iat"]},
        )
    except Exception:  # any malformed, mis-signed or expired token (or PyJWT missing)
        return False
    if not isinstance(claims, dict):
        return False
    iat = claims.get("iat")
    current = time.time() if now is None else now
    if not isinstance(iat, int | float) or abs(current - iat) > tolerance:
        return False
    expected = claims.get("payload_hash")
    if body and not isinstance(expected, str):
        return False
    if isinstance(expected, str):
        return safe_equal(expected.lower(), hashlib.sha256(body).hexdigest())
    return True
