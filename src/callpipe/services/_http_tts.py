"""The base of TTS services that POST each sentence and read the audio as the body streams in.

One request per sentence, through a client on the event loop's shared connection pool
(:mod:`callpipe.utils.http_pool`), so a call's next sentence usually finds a warm connection.
:meth:`HTTPStreamTTSService.stream_speech` sends a request and hands the open response to the
service's reader, which turns the body into audio (and word timing) for the reply.

- A 429 or 5xx answer, or a connection failure, before any audio came is retried once (a
  ``Retry-After`` is honoured up to a second); later ones are reported as a non-fatal
  ``ErrorFrame`` and the sentence is skipped: what of it was not heard is not recorded as
  spoken (with word timing, the words whose audio came still are).
- A 401 or 403 (or what :meth:`HTTPStreamTTSService.rejects_credentials` says is one) is a
  rejected key: a fatal ``ErrorFrame`` (the call ends), and no further requests are made.
- Audio at another rate than the call's is resampled per reply; at the end of each answer
  the resampler's held-back tail is sent, so a sentence's text never leaves before its audio.
- An interruption cancels the frame being processed, which leaves the ``async with`` of the
  streaming response: the response is closed at once and the provider stops sending.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import httpx

from callpipe.services._http import error_message, is_retryable, retry_after_secs
from callpipe.services.tts_service import TTSService
from callpipe.utils.http_pool import pooled_transport

logger = logging.getLogger(__name__)

Reader = Callable[[httpx.Response, str], Awaitable[None]]
"""Reads one 200 response's body for a context: ``await reader(response, context_id)``."""


async def json_lines(response: httpx.Response, owner: object) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects of a newline-delimited streamed answer, as they arrive.

    Blank lines are passed over; a line that is not a JSON object is logged as a warning
    (naming ``owner``, the service) and passed over too.
    """
    async for line in response.aiter_lines():
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if isinstance(message, dict):
            yield message
        else:
            logger.warning("%s: skipping a line that is not a JSON object: %.80s", owner, line)


class HTTPStreamTTSService(TTSService):
    """TTS over one streamed HTTP request per sentence (see the module docstring)."""

    key_hint = "Check the API key."
    """Added to the message of a rejected key (e.g. ``"Check api_key / CARTESIA_API_KEY."``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._base_url = ""
        self._headers: dict[str, str] = {}
        self._timeout_secs = 30.0
        self._client: httpx.AsyncClient | None = None
        self._key_rejected = False

    def configure_http(
        self, base_url: str, headers: Mapping[str, str], *, timeout_secs: float = 30.0
    ) -> None:
        """The API's origin, the headers of every request and the read timeout."""
        self._base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self._timeout_secs = timeout_secs

    @property
    def base_url(self) -> str:
        return self._base_url

    def _http(self) -> httpx.AsyncClient:
        """The client, made on first use (also when the service is driven without ``start``)."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self._base_url,
                headers=self._headers,
                timeout=httpx.Timeout(self._timeout_secs, connect=5.0),
                transport=pooled_transport(),
            )
        return self._client

    async def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def rejects_credentials(self, status: int, body: bytes) -> bool:
        """True when an error answer means the key was refused (401 and 403 here; a provider
        answering a bad key otherwise, e.g. Google's 400 ``API_KEY_INVALID``, says so)."""
        return status in (401, 403)

    def retryable(self, response: httpx.Response, body: bytes) -> bool:
        """True when an error answer is worth one more try (a 429 or 5xx here; a provider
        that signals throttling otherwise, e.g. Polly's 400 ``ThrottlingException``, says so)."""
        return is_retryable(response.status_code)

    async def stream_speech(
        self,
        context_id: str,
        path: str,
        body: dict[str, Any] | bytes,
        read: Reader,
        *,
        params: Mapping[str, str] | None = None,
    ) -> bool:
        """POST ``body`` (JSON, or bytes sent as they are) to ``path`` and let ``read`` take
        the streamed answer.

        Returns True when the whole answer was read, False when the request failed (already
        reported) or was not made because the key was rejected earlier; then the sentence is
        marked failed (:meth:`~TTSService.sentence_failed`), so what of it was not heard does
        not reach the context as spoken.
        """
        if self._key_rejected:
            self.sentence_failed(context_id)
            return False
        ctx = self._contexts.get(context_id)
        before = ctx.audio_secs if ctx is not None else 0.0
        for attempt in range(2):
            last = attempt == 1
            try:
                raw = body if isinstance(body, bytes) else None
                async with self._http().stream(
                    "POST",
                    path,
                    json=None if raw is not None else body,
                    content=raw,
                    params=dict(params or {}),
                ) as response:
                    if response.status_code == 200:
                        await read(response, context_id)
                        self.sentence_audio_done(context_id)
                        return True
                    status = response.status_code
                    content = await response.aread()
                    message = error_message(status, content)
                    if not last and self.retryable(response, content):
                        logger.warning("%s: HTTP %d (%s); retrying once", self, status, message)
                        await asyncio.sleep(retry_after_secs(response, 0.25, 1.0))
                        continue
            except httpx.HTTPError as exc:
                got_audio = ctx is not None and ctx.audio_secs > before
                if not last and not got_audio:
                    logger.info("%s: speech request failed (%s); retrying once", self, exc)
                    continue
                self.sentence_failed(context_id)
                await self.report_error(
                    f"{self}: speech request failed: {type(exc).__name__}: {exc}",
                    reason="network",
                )
                return False
            self.sentence_failed(context_id)
            fatal = self.rejects_credentials(status, content)
            if fatal:
                self._key_rejected = True
                message = f"{message.rstrip('.')}. {self.key_hint}"
            await self.report_error(
                f"{self}: HTTP {status} from {self._base_url}{path}: {message}",
                fatal=fatal,
                reason="auth" if fatal else "http",
            )
            return False
        return False
