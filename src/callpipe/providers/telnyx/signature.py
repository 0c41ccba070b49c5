"""Telnyx webhook signatures: Ed25519 over ``"{timestamp}|{body}"`` with a timestamp tolerance.

Needs PyNaCl (the ``telnyx`` extra); it is imported only when a Telnyx public key is configured,
and its absence then fails at start-up rather than skipping the check.
"""

from __future__ import annotations

import base64
import binascii
import time

from callpipe.errors import ConfigurationError, MissingDependencyError

TELNYX_TOLERANCE_SECS = 300


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
            if not timestamp.isascii() or abs(now - int(timestamp)) > self._tolerance:
                return False
            signature = base64.b64decode(signature_b64, validate=True)
        except (ValueError, binascii.Error):
            return False
        try:
            self._key.verify(timestamp.encode() + b"|" + body, signature)
        except (BadSignatureError, ValueError):
            return False
        return True
