"""jambonz webhook signatures: ``Jambonz-Signature: t=<unix time>,v1=<hex>``.

The signature is the hex HMAC-SHA256 of ``"{t}.{raw body}"`` keyed with the account's webhook
secret; several ``v1`` values may be present (secret rotation). A timestamp outside the
tolerance is refused, so a captured webhook cannot be replayed later. Never raises.
"""

from __future__ import annotations

import hashlib
import hmac

from callpipe.providers.base import SignedWebhook, TimedSecretVerifier, safe_equal

SIGNATURE_HEADER = "jambonz-signature"
TOLERANCE_SECS = 300
MAX_SIGNATURES = 8


def jambonz_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``timestamp + "." + body``."""
    key = secret.encode("utf-8", "surrogatepass")
    return hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def parse_header(header: str) -> tuple[str, list[str]] | None:
    """``(timestamp, [v1 signatures])`` from the header, or None when it is malformed."""
    timestamp, signatures = "", []
    for part in header.split(",")[: MAX_SIGNATURES + 1]:
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    if not (timestamp.isascii() and timestamp.isdigit() and 0 < len(timestamp) <= 12):
        return None
    return (timestamp, signatures) if signatures else None


class JambonzVerifier(TimedSecretVerifier):
    """Checks ``Jambonz-Signature`` against the webhook secret, within a time tolerance."""

    default_tolerance = TOLERANCE_SECS

    def verify(self, request: SignedWebhook) -> bool:
        header = request.headers.get(SIGNATURE_HEADER)
        parsed = parse_header(header) if header else None
        if parsed is None or not self._secret:
            return False
        timestamp, signatures = parsed
        if abs(self._clock() - int(timestamp)) > self._tolerance:
            return False
        expected = jambonz_signature(self._secret, timestamp, request.body)
        return any(safe_equal(expected, s) for s in signatures)
