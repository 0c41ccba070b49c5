"""Provider call control (hang-up, transfer, DTMF) over REST, kept apart from the wire codec.

Serializers are sans-I/O; anything that talks HTTP lives here. ``CallControl`` is the interface the
transport and bots use; ``HttpCallControl`` is the shared plumbing: one lazily created
``httpx.AsyncClient`` per call (the WebSocket transport closes it with ``aclose()`` when the call
is cleaned up; a later request opens a new one), an overall deadline per operation, bounded
retries on connection errors and 5xx answers, and an idempotent, single-flight ``hang_up``. Log
lines and error messages name the call by its masked id (request paths carry the raw one, so they
are masked too).
"""

from __future__ import annotations

import asyncio
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from callpipe.errors import CallControlError, ConfigurationError
from callpipe.log import mask
from callpipe.utils.http_pool import pooled_transport

logger = logging.getLogger(__name__)

_DTMF_DIGITS = re.compile(r"^[0-9*#A-Da-dwW]+$")
_PHONE_NUMBER = re.compile(r"^\+?[0-9]{2,20}$")


def validate_dtmf_digits(digits: str) -> str:
    """Digits a provider DTMF API accepts: 0-9, *, #, A-D, and ``w``/``W`` pauses."""
    if not _DTMF_DIGITS.match(digits):
        raise ConfigurationError(f"invalid DTMF digits {digits!r}: use 0-9, *, #, A-D, w or W")
    return digits


def http_reason(response: httpx.Response) -> str:
    """``HTTP <status> <start of the body>`` on one line, for logs and ``CallControlError``."""
    return " ".join(f"HTTP {response.status_code} {response.text[:200]}".split())


def is_sip_uri(target: str) -> bool:
    return target.lower().startswith(("sip:", "sips:"))


def validate_transfer_target(target: str) -> str:
    """A transfer target is an E.164-style number or a ``sip:``/``sips:`` URI."""
    target = target.strip()
    if is_sip_uri(target) and len(target) > 4 and not any(c in target for c in " <>\"'"):
        return target
    if _PHONE_NUMBER.match(target.replace(" ", "").replace("-", "")):
        return target.replace(" ", "").replace("-", "")
    raise ConfigurationError(
        f"invalid transfer target {target!r}: expected a phone number (+15551234567) "
        "or a SIP URI (sip:agent@example.com)"
    )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard a call-control request tries.

    ``timeout`` bounds the whole operation including retries, so a hanging provider can never
    hold a call's teardown longer than that. ``retries`` extra attempts are made after
    connection errors, timeouts of one attempt, and 5xx answers, waiting ``backoff * 2**n``.
    """

    timeout: float = 5.0
    retries: int = 2
    backoff: float = 0.2


class CallControl(ABC):
    """Provider-independent call control for one call."""

    @abstractmethod
    async def hang_up(self) -> bool:
        """End the call. Idempotent: True if it ended now or was already over; never raises."""

    @abstractmethod
    async def transfer(self, target: str) -> None:
        """Transfer the call to a phone number or SIP URI; raises ``CallControlError``."""

    @abstractmethod
    async def send_dtmf(self, digits: str) -> bool:
        """Play DTMF into the call. False when the provider API cannot (play in-band tones)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release the HTTP client."""


class HttpCallControl(CallControl):
    """Shared HTTP plumbing of the provider clients."""

    provider = "provider"

    def __init__(
        self,
        *,
        base_url: str,
        call_id: str,
        auth: httpx.Auth | tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.call_id = call_id
        self.log_id = mask(call_id) or "-"
        self._auth = auth
        self._headers = dict(headers or {})
        self._retry = retry or RetryPolicy()
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._hangup_lock = asyncio.Lock()
        self._hung_up = False

    # ------------------------------------------------------------------ subclass hooks

    @abstractmethod
    def _hang_up_request(self) -> tuple[str, str, dict[str, Any]]:
        """(method, path, httpx request kwargs) of the hang-up request."""

    def _already_ended(self, response: httpx.Response) -> bool:
        """True if a non-2xx answer means the call is already over: the call resource is
        gone (404) for most providers; those with their own "call ended" answer override."""
        return response.status_code == 404

    def _private_ids(self) -> tuple[str, ...]:
        """Ids that appear in request paths and must not reach a log line unmasked."""
        return (self.call_id,)

    def redact(self, text: str) -> str:
        """``text`` (a request path, an error message) with this call's ids masked."""
        for value in self._private_ids():
            if value:
                masked = mask(value) or "-"
                text = text.replace(value, masked).replace(quote(value, safe=""), masked)
        return text

    # ------------------------------------------------------------------ CallControl

    async def hang_up(self) -> bool:
        async with self._hangup_lock:
            if self._hung_up:
                return True
            method, path, kwargs = self._hang_up_request()
            # A provider refusing or not answering a hang-up is an expected event: one WARNING
            # with its reason, no traceback, and the call named by its masked id.
            try:
                response = await self.request(method, path, **kwargs)
            except CallControlError as exc:
                logger.warning(
                    "%s hang-up of call %s failed: %s", self.provider, self.log_id, exc.reason
                )
                return False
            if response.is_success:
                logger.info("%s call %s hung up", self.provider, self.log_id)
            elif self._already_ended(response):
                logger.debug("%s call %s was already over", self.provider, self.log_id)
            else:
                logger.warning(
                    "%s hang-up of call %s refused: %s",
                    self.provider,
                    self.log_id,
                    http_reason(response),
                )
                return False
            self._hung_up = True
            return True

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # ------------------------------------------------------------------ plumbing

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            timeout = httpx.Timeout(self._retry.timeout, connect=min(2.0, self._retry.timeout))
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                auth=self._auth,
                headers=self._headers,
                timeout=timeout,
                transport=self._transport or pooled_transport(),
            )
        return self._client

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request with retries; returns the final response (any status).

        Raises ``CallControlError`` when no answer arrived within the deadline, after the retries
        on connection errors, or when 5xx answers persisted.
        """
        client = self._get_client()
        policy = self._retry
        last_error = "no attempt made"
        shown = self.redact(path)
        try:
            async with asyncio.timeout(policy.timeout):
                for attempt in range(policy.retries + 1):
                    if attempt:
                        await asyncio.sleep(policy.backoff * 2 ** (attempt - 1))
                    try:
                        response = await client.request(method, path, **kwargs)
                    except httpx.TransportError as exc:
                        last_error = f"{type(exc).__name__}: {exc}"
                        logger.debug(
                            "%s %s %s attempt %d: %s",
                            self.provider,
                            method,
                            shown,
                            attempt + 1,
                            last_error,
                        )
                        continue
                    if response.status_code < 500:
                        return response
                    last_error = http_reason(response)
                    logger.debug(
                        "%s %s %s attempt %d: %s",
                        self.provider,
                        method,
                        shown,
                        attempt + 1,
                        last_error,
                    )
        except TimeoutError:
            reason = f"no answer within {policy.timeout:g} s"
            raise CallControlError(
                f"{self.provider} {method} {shown}: {reason}", reason=reason
            ) from None
        reason = f"failed after {policy.retries + 1} attempts ({last_error})"
        raise CallControlError(f"{self.provider} {method} {shown}: {reason}", reason=reason)

    async def request_ok(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Like ``request`` but a non-2xx final answer is a ``CallControlError`` too."""
        response = await self.request(method, path, **kwargs)
        if not response.is_success:
            reason = http_reason(response)
            message = f"{self.provider} {method} {self.redact(path)}: {reason}"
            raise CallControlError(message, reason=reason)
        return response
