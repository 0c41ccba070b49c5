"""Vonage Voice API credentials: a short-lived RS256 JWT signed with the application's key.

Needs PyJWT with cryptography (the ``vonage`` extra). A fresh token per request (``iat`` now,
``exp`` 15 minutes on, a random ``jti``), as Vonage rejects replayed or stale ones.
"""

from __future__ import annotations

import os
import time
import uuid

from callpipe.errors import MissingDependencyError

TOKEN_LIFETIME_SECS = 900


class VonageJwt:
    """Callable returning a new application JWT each time."""

    def __init__(self, application_id: str, private_key: str) -> None:
        try:
            import jwt  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise MissingDependencyError("PyJWT", "vonage") from exc
        if "BEGIN" not in private_key and os.path.exists(private_key):
            with open(private_key, encoding="utf-8") as fh:
                private_key = fh.read()
        self.application_id = application_id
        self._key = private_key

    def __call__(self) -> str:
        import jwt

        now = int(time.time())
        claims = {
            "application_id": self.application_id,
            "iat": now,
            "exp": now + TOKEN_LIFETIME_SECS,
            "jti": str(uuid.uuid4()),
        }
        return str(jwt.encode(claims, self._key, algorithm="RS256"))
