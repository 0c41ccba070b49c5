"""Exotel webhook authentication: HTTP Basic credentials you choose, on the applet's URL.

Exotel signs no request. What it documents for its Voicebot applet is IP allow-listing (through
its support) or Basic auth written into the endpoint URL (``wss://USER:PASSWORD@host/path``,
sent as ``Authorization: Basic base64(USER:PASSWORD)``). callpipe takes the same credentials for
the dynamic endpoint (``https://USER:PASSWORD@host/``, the runner's answer URL) and for status
callbacks (the dialer writes them into ``StatusCallback``) from ``EXOTEL_WEBHOOK_AUTH``
(``USER:PASSWORD``, or a bare ``PASSWORD`` for the user ``callpipe``). That Exotel sends URL
credentials on those HTTPS requests too is what HTTP clients do with such URLs, not something
its documentation states: check it on your account (a refused request is logged) or keep the
IP allow-list. Unlike a signature this is a bearer secret: it proves knowledge of the password,
not the integrity of the body, and only HTTPS keeps it private. Every failure is just False:
hostile input never raises.
"""

from __future__ import annotations

import base64
import binascii

from callpipe.providers.base import SignedWebhook, safe_equal

SIGNATURE_HEADER = "authorization"
SECRET_ENV = "EXOTEL_WEBHOOK_AUTH"
MAX_HEADER_CHARS = 1024
DEFAULT_USER = "callpipe"


def basic_credentials(header: str | None) -> str | None:
    """``user:password`` from an ``Authorization: Basic`` header, or None."""
    if not header or len(header) > MAX_HEADER_CHARS:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        return base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def credential_pair(configured: str) -> str:
    """``USER:PASSWORD`` as configured; a bare ``PASSWORD`` gets the user name ``callpipe``."""
    return configured if ":" in configured else f"{DEFAULT_USER}:{configured}"


class ExotelVerifier:
    """Accepts a request whose Basic credentials equal the configured ``USER:PASSWORD``."""

    def __init__(self, credentials: str) -> None:
        self._credentials = credential_pair(credentials)

    def verify(self, request: SignedWebhook) -> bool:
        given = basic_credentials(request.headers.get(SIGNATURE_HEADER))
        return given is not None and safe_equal(given, self._credentials)


def with_credentials(url: str, credentials: str) -> str:
    """``url`` with ``credentials`` as its userinfo (``https://USER:PASSWORD@host/...``)."""
    from urllib.parse import quote, urlsplit, urlunsplit

    parts = urlsplit(url)
    user, _, password = credential_pair(credentials).partition(":")
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.netloc}"
    return urlunsplit(parts._replace(netloc=netloc))
