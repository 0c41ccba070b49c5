"""Before the upgrade: which ``/ws`` requests may become WebSockets at all.

Everything here runs on the HTTP upgrade request, synchronously, before ``accept()``: a refusal
is an HTTP 403 with no WebSocket work (no handshake, no frames parsed, no timer). Three checks:

- **Origin (local mode).** Telephony providers send no ``Origin``; browsers always do. In local
  mode the bot runs with the developer's API keys and no token, so a page on another site must
  not be able to drive it: a request with an ``Origin`` is accepted only from the same origin as
  the server (the softphone page ``/phone``), on ``localhost``, an IP address or a configured
  host (so a DNS-rebound name cannot pass as same-origin).
- **Token shape.** A presented token must look like one (printable ASCII, bounded length) before
  any HMAC or JSON work.
- **One connection per token.** A valid token admits one upgrade per process (its id is claimed
  here until it expires), so one leaked token cannot fill the pool reserved for genuine calls.
"""

from __future__ import annotations

import ipaddress
import time
from urllib.parse import urlsplit

MAX_TOKEN_CHARS = 1024
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~=+/")


def plausible_token(token: str) -> bool:
    """Cheap shape check: base64url-ish ASCII of bounded length (refuse anything else unseen)."""
    return 0 < len(token) <= MAX_TOKEN_CHARS and all(c in _TOKEN_CHARS for c in token)


def bearer_token(authorization: str) -> str | None:
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None


def _not_rebindable(hostname: str) -> bool:
    """``localhost`` or an IP literal: names DNS rebinding cannot use (a rebinding attack needs
    the browser to think it is on the attacker's domain name, which then shows in ``Host``)."""
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(hostname.strip("[]"))
    except ValueError:
        return False
    return True


def origin_allowed(origin: str | None, host: str | None, trusted_hosts: tuple[str, ...]) -> bool:
    """True for no ``Origin`` (a provider, ``callpipe call``) or a same-origin browser page.

    Same origin means the ``Origin`` authority equals the ``Host`` header, and that host is
    ``localhost``, an IP address (e.g. the softphone opened from the LAN) or one of
    ``trusted_hosts`` (the bind host, the ``-x`` host).
    """
    if origin is None:
        return True
    if not host:
        return False
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    netloc = parts.hostname if port is None else f"{parts.hostname}:{port}"
    try:
        host_parts = urlsplit("//" + host)
        host_name = host_parts.hostname or ""
        host_netloc = host_name if host_parts.port is None else f"{host_name}:{host_parts.port}"
    except ValueError:
        return False
    if netloc.lower() != host_netloc.lower():
        return False
    return _not_rebindable(host_name) or host_name.lower() in {h.lower() for h in trusted_hosts}


class TokenClaims:
    """Token ids already admitted to an upgrade on this process, until they expire."""

    def __init__(self, limit: int = 100_000) -> None:
        self._claimed: dict[str, float] = {}
        self._limit = limit
        self._pruned_at = 0.0

    def __len__(self) -> int:
        return len(self._claimed)

    def claim(self, jti: str, exp: float, now: float | None = None) -> bool:
        """Claim ``jti`` (valid until ``exp``, epoch seconds); False if it was already claimed."""
        now = time.time() if now is None else now
        if now - self._pruned_at > 1.0 or len(self._claimed) >= self._limit:
            self._claimed = {j: e for j, e in self._claimed.items() if e >= now}
            self._pruned_at = now
        if jti in self._claimed or len(self._claimed) >= self._limit:
            return False
        self._claimed[jti] = exp
        return True
