"""Bandwidth call control through its Voice API v2 (``https://voice.bandwidth.com/api/v2``).

- Hang-up: ``POST /accounts/{accountId}/calls/{callId}`` with JSON ``{"state": "completed"}``.
  A call that is gone answers 404 ("no longer active") or 409 ("cannot be modified in its current
  state", e.g. recently ended): both mean it is already over.
- Transfer: ``PUT /accounts/{accountId}/calls/{callId}/bxml`` replaces the call's BXML with
  ``<StopStream>`` (the bot's stream ends) and ``<Transfer>`` to a ``<PhoneNumber>`` or
  ``<SipUri>``.
- DTMF: none. Bandwidth plays keys with the ``<SendDtmf>`` verb only, i.e. by replacing the
  BXML the call is running; ``send_dtmf`` returns False so the transport plays in-band tones.

Authentication is OAuth 2.0 client credentials (Bandwidth's API credentials, a client id and
secret): :class:`BandwidthOAuth` fetches a bearer token from
``https://api.bandwidth.com/api/v1/oauth2/token`` (``grant_type=client_credentials``, the client
id and secret as HTTP Basic), keeps it until a minute before it expires (shared by every call of
the process with the same credentials) and fetches a new one once if the API refuses it with 401.
Legacy API users (a username and password sent as HTTP Basic, deprecated by Bandwidth) still
work with ``username``/``password``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable, Generator
from typing import Any
from xml.sax.saxutils import escape

import httpx

from callpipe.errors import CallControlError, ConfigurationError
from callpipe.telephony.base import (
    HttpCallControl,
    RetryPolicy,
    http_reason,
    is_sip_uri,
    validate_transfer_target,
)

VOICE_API_URL = "https://voice.bandwidth.com/api/v2"
OAUTH_TOKEN_URL = "https://api.bandwidth.com/api/v1/oauth2/token"
STREAM_NAME = "callpipe"
"""The ``name`` of the ``<StartStream>`` the runner's answer opens (``<StopStream>`` names it)."""

REFRESH_MARGIN_SECS = 60.0
"""A cached token is replaced this long before Bandwidth says it expires."""

_SAFE_ID = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")


def is_safe_id(value: object) -> bool:
    """A Bandwidth account or call id usable as one URL path segment (RFC 3986 unreserved
    characters only: a hostile id can never add a path, query or fragment to a REST request)."""
    return isinstance(value, str) and _SAFE_ID.match(value) is not None


def _need_safe_id(value: str, what: str) -> str:
    if not is_safe_id(value):
        raise ConfigurationError(
            f"invalid Bandwidth {what} {value[:40]!r}: letters, digits, '.', '_', '~' and '-' only"
        )
    return value


class _TokenCache:
    """Bearer tokens by (token URL, client id, secret digest): one per credential, per process."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}

    def get(self, key: tuple[str, str, str], now: float) -> str | None:
        found = self._tokens.get(key)
        if found is None or found[1] <= now:
            return None
        return found[0]

    def put(self, key: tuple[str, str, str], token: str, expires_at: float) -> None:
        self._tokens[key] = (token, expires_at)

    def drop(self, key: tuple[str, str, str], token: str) -> None:
        found = self._tokens.get(key)
        if found is not None and found[0] == token:
            del self._tokens[key]


TOKENS = _TokenCache()


class BandwidthOAuth(httpx.Auth):
    """``Authorization: Bearer`` from Bandwidth's OAuth 2.0 client-credentials grant.

    The token request goes through the same client (and transport) as the API request. A token
    endpoint that refuses the credentials (4xx) or answers without a token raises
    :class:`~callpipe.errors.CallControlError` naming its answer; a 5xx from it is returned as
    the response, so the caller's retry policy applies.
    """

    requires_response_body = True

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        token_url: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        cache: _TokenCache | None = None,
    ) -> None:
        if not client_id or not client_secret:
            raise ConfigurationError("Bandwidth OAuth needs a client id and a client secret")
        self._token_url = token_url or OAUTH_TOKEN_URL
        raw = f"{client_id}:{client_secret}".encode()
        self._basic = "Basic " + base64.b64encode(raw).decode("ascii")
        digest = hashlib.sha256(client_secret.encode("utf-8", "surrogatepass")).hexdigest()
        self._key = (self._token_url, client_id, digest)
        self._clock = clock
        self._cache = TOKENS if cache is None else cache

    @property
    def token_url(self) -> str:
        return self._token_url

    def _token_request(self) -> httpx.Request:
        return httpx.Request(
            "POST",
            self._token_url,
            headers={
                "Authorization": self._basic,
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            content=b"grant_type=client_credentials",
        )

    def _store(self, response: httpx.Response) -> str:
        """The token in a 2xx token answer (cached); raises ``CallControlError`` otherwise."""
        if not response.is_success:
            reason = f"OAuth token refused: {http_reason(response)}"
            raise CallControlError(f"bandwidth {reason}", reason=reason)
        try:
            body = json.loads(response.content)
        except (ValueError, RecursionError):
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            reason = "OAuth token answer without access_token"
            raise CallControlError(f"bandwidth {reason}", reason=reason)
        expires_in = body.get("expires_in") if isinstance(body, dict) else None
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 300.0
        expires_at = self._clock() + max(0.0, lifetime - REFRESH_MARGIN_SECS)
        self._cache.put(self._key, token, expires_at)
        return token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._cache.get(self._key, self._clock())
        cached = token is not None
        if token is None:
            answer = yield self._token_request()
            if answer.status_code >= 500:
                return  # the token endpoint's 5xx is the answer: the caller retries
            token = self._store(answer)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401 or not cached:
            return
        # A cached token the API no longer takes (revoked, clock skew): one fresh try.
        self._cache.drop(self._key, token)
        answer = yield self._token_request()
        if answer.status_code >= 500:
            return
        request.headers["Authorization"] = f"Bearer {self._store(answer)}"
        yield request


def bandwidth_auth(
    *,
    client_id: str | None = None,
    client_secret: str | None = None,
    username: str | None = None,
    password: str | None = None,
    token_url: str | None = None,
) -> httpx.Auth | tuple[str, str] | None:
    """OAuth client credentials if given, else a legacy API user's Basic auth, else None."""
    if client_id and client_secret:
        return BandwidthOAuth(client_id, client_secret, token_url=token_url)
    if username and password:
        return (username, password)
    return None


def transfer_bxml(target: str, stream_name: str = STREAM_NAME) -> str:
    """BXML that ends the bot's stream and transfers the call to ``target`` (number or SIP)."""
    target = validate_transfer_target(target)
    noun = "SipUri" if is_sip_uri(target) else "PhoneNumber"
    name = escape(stream_name, {'"': "&quot;"})
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n'
        f'  <StopStream name="{name}"/>\n'
        f"  <Transfer>\n    <{noun}>{escape(target)}</{noun}>\n  </Transfer>\n"
        "</Response>"
    )


class BandwidthCallControl(HttpCallControl):
    """Call control for one Bandwidth call (``c-…`` call id) of one account."""

    provider = "bandwidth"

    def __init__(
        self,
        *,
        account_id: str,
        call_id: str,
        client_id: str | None = None,
        client_secret: str | None = None,
        username: str | None = None,
        password: str | None = None,
        base_url: str | None = None,
        token_url: str | None = None,
        stream_name: str = STREAM_NAME,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        auth = bandwidth_auth(
            client_id=client_id,
            client_secret=client_secret,
            username=username,
            password=password,
            token_url=token_url,
        )
        if auth is None:
            raise ConfigurationError(
                "Bandwidth call control needs client_id + client_secret (API credentials) "
                "or username + password (a legacy API user)"
            )
        super().__init__(
            base_url=base_url or VOICE_API_URL,
            call_id=_need_safe_id(call_id, "call id"),
            auth=auth,
            headers={"Accept": "application/json"},
            retry=retry,
            transport=transport,
        )
        self.account_id = _need_safe_id(account_id, "account id")
        self.stream_name = stream_name
        self._call_path = f"/accounts/{self.account_id}/calls/{self.call_id}"

    @property
    def call_url(self) -> str:
        return self.base_url + self._call_path

    def _private_ids(self) -> tuple[str, ...]:
        return (self.call_id, self.account_id)

    def _hang_up_request(self) -> tuple[str, str, dict[str, Any]]:
        return "POST", self._call_path, {"json": {"state": "completed"}}

    def _already_ended(self, response: httpx.Response) -> bool:
        # 404: "the call-id is no longer active"; 409: "cannot be modified in its current
        # state", such as a recently ended call (a call being streamed was answered long ago).
        return response.status_code in (404, 409)

    async def transfer(self, target: str) -> None:
        bxml = transfer_bxml(target, self.stream_name)
        await self.request_ok(
            "PUT",
            self._call_path + "/bxml",
            content=bxml.encode("utf-8"),
            headers={"Content-Type": "application/xml; charset=utf-8"},
        )

    async def send_dtmf(self, digits: str) -> bool:
        return False
