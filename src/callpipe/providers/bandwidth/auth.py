"""Bandwidth webhook authentication: the voice application's callback username and password.

Bandwidth signs no webhook. What it documents is HTTP Basic authentication with credentials set
on the voice application (its *callback* username and password, or ``username``/``password`` on
a call created through the API), following RFC 7235: Bandwidth first sends the webhook *without*
an ``Authorization`` header and expects ``401`` with a ``WWW-Authenticate`` challenge; only then
does it send the request again with the credentials. A webhook answered 403 (or 401 without the
challenge) is never retried, so the runner answers an unauthenticated request with
:data:`CHALLENGE` when Bandwidth's verification is configured.

callpipe takes the credentials from ``BANDWIDTH_CALLBACK_AUTH`` (``USERNAME:PASSWORD``, or a bare
``PASSWORD`` for the username ``callpipe``) and compares both parts in constant time. Unlike a
signature this is a bearer secret: it proves knowledge of the password, not the integrity of the
body, and only HTTPS keeps it private. Never raises on hostile input.
"""

from __future__ import annotations

from callpipe.providers.asterisk.auth import basic_credentials
from callpipe.providers.base import SignedWebhook, safe_equal

AUTH_ENV = "BANDWIDTH_CALLBACK_AUTH"
AUTH_HEADER = "authorization"
DEFAULT_USERNAME = "callpipe"
"""The username when ``BANDWIDTH_CALLBACK_AUTH`` holds only a password."""
CHALLENGE = 'Basic realm="callpipe"'
"""What an unauthenticated Bandwidth webhook is answered with (401 ``WWW-Authenticate``)."""


def credential_pair(configured: str) -> tuple[str, str]:
    """``(username, password)`` as configured; a bare password gets the username ``callpipe``."""
    username, sep, password = configured.partition(":")
    return (username, password) if sep else (DEFAULT_USERNAME, configured)


class BandwidthVerifier:
    """Accepts a request whose HTTP Basic credentials are the configured ones."""

    def __init__(self, credentials: str) -> None:
        self._username, self._password = credential_pair(credentials)

    @property
    def configured(self) -> bool:
        return bool(self._username and self._password)

    @property
    def username(self) -> str:
        return self._username

    @property
    def password(self) -> str:
        return self._password

    def verify(self, request: SignedWebhook) -> bool:
        given = basic_credentials(request.headers.get(AUTH_HEADER))
        if given is None or not self.configured:
            return False
        same_user = safe_equal(given[0], self._username)
        same_password = safe_equal(given[1], self._password)
        return same_user and same_password
