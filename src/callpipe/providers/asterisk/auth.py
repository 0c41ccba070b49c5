"""HTTP Basic credentials for Asterisk: what ``websocket_client.conf`` sends on the upgrade.

Asterisk signs nothing, but its WebSocket client sends ``username``/``password`` from
``websocket_client.conf`` as ``Authorization: Basic ...`` when it connects. callpipe takes them
from ``ASTERISK_WS_AUTH`` (``username:password``, or a bare password for the username
``asterisk``) and checks them, in constant time, on the media
stream's upgrade and on ``POST /`` (where an ARI application asks for a one-time stream token).
Never raises on hostile input.
"""

from __future__ import annotations

import base64
import binascii

from callpipe.providers.base import SignedWebhook, safe_equal

AUTH_ENV = "ASTERISK_WS_AUTH"
AUTH_HEADER = "authorization"
MAX_HEADER_CHARS = 1024
DEFAULT_USERNAME = "asterisk"
"""The username when ``ASTERISK_WS_AUTH`` holds only a password."""


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``(username, password)`` of a ``Basic`` Authorization header, or None."""
    if not header or len(header) > MAX_HEADER_CHARS or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


def basic_header(username: str, password: str) -> str:
    """The header Asterisk sends for these credentials (for tests and clients)."""
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


class BasicAuthVerifier:
    """Accepts requests carrying the configured ``username:password`` as HTTP Basic auth."""

    def __init__(self, credentials: str) -> None:
        username, sep, password = credentials.partition(":")
        if not sep:  # a bare password: the username is the default one
            username, password = DEFAULT_USERNAME, credentials
        self._username = username
        self._password = password

    @property
    def configured(self) -> bool:
        return bool(self._username and self._password)

    def verify(self, request: SignedWebhook) -> bool:
        given = basic_credentials(request.headers.get(AUTH_HEADER))
        if given is None or not self.configured:
            return False
        # Both compared (no early exit on the name), each in constant time.
        same_user = safe_equal(given[0], self._username)
        same_password = safe_equal(given[1], self._password)
        return same_user and same_password
