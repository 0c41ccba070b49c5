"""What every streaming-over-HTTP LLM service shares: one request per turn, the response
framing, and the retry rule.

A request is retried (at most ``max_retries`` times) only while nothing of its answer has been
pushed yet: after the first token, a retry would make the bot say the start of its answer twice.
A provider's "retry after" (429/503) is honoured; network errors wait 0.2 s, except a first
failure that looks like a stale kept-alive connection, which is retried at once. What cannot be
retried becomes one ``ErrorFrame`` (fatal for rejected credentials) and an empty completion.

``retry_on_timeout`` (Pipecat's argument) adds one more case: a request that has pushed nothing
``retry_timeout_secs`` after it was sent is abandoned and sent again at once, once per
completion; the request sent again is watched no more, bounded only by the client's own
timeout. The same rule makes it safe: before the first output nothing has reached the caller.
This re-send is on top of ``max_retries``, which counts failed requests, not slow ones.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx

from callpipe.errors import CallpipeError, ConfigurationError, ServiceAuthError
from callpipe.frames.frames import LLMFullResponseEndFrame, LLMFullResponseStartFrame
from callpipe.processors.aggregators.llm_context import ChatContext, LLMContext
from callpipe.services._http import error_message, is_retryable, retry_after_secs
from callpipe.services.llm_service import LLMService, ToolCall
from callpipe.utils.http_pool import pooled_transport

logger = logging.getLogger(__name__)

_STALE_CONNECTION = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
"""What a request sent on a connection the server has just closed fails with."""

_T = TypeVar("_T")

DRAIN_SECS = 0.5
"""How long the rest of a response body may take once its last event has come."""


async def read_to_end(lines: AsyncIterator[str], handle: Callable[[str], Awaitable[bool]]) -> bool:
    """Give each line to ``handle`` until it returns True (the response is complete), then read
    on to the body's end, for at most :data:`DRAIN_SECS`, so the connection goes back to the
    pool: leaving a stream early closes it, and the next request would set up TCP and TLS
    again. A server that keeps the body open longer has its connection dropped. Returns
    whether ``handle`` saw the response complete."""
    done = False
    try:
        async with asyncio.timeout(None) as deadline:
            async for line in lines:
                if not done and await handle(line):
                    done = True
                    deadline.reschedule(asyncio.get_running_loop().time() + DRAIN_SECS)
    except TimeoutError:
        if not done:
            raise
    return done


async def request_once_more_if_stale(owner: object, send: Callable[[], Awaitable[_T]]) -> _T:
    """``send()``, sent again once if it met a pooled connection the server had closed; an
    HTTP failure (or a second stale connection) is raised as :class:`CallpipeError`."""
    for attempt in range(2):
        try:
            return await send()
        except _STALE_CONNECTION as exc:
            if attempt:
                raise CallpipeError(f"{owner}: request failed: {exc}") from exc
        except httpx.HTTPError as exc:
            raise CallpipeError(f"{owner}: request failed: {type(exc).__name__}: {exc}") from exc
    raise AssertionError("unreachable: the second attempt returns or raises")


def context_messages(
    context: ChatContext, llm: str, *, instruction: object = None
) -> list[dict[str, Any]]:
    """``context``'s messages for the API: with an ``LLMContext``, the ``llm``'s own messages
    are included (e.g. kept reasoning or thinking); an older context has none. A non-empty
    ``instruction`` (the service's system instruction) replaces the context's leading
    system/developer messages."""
    if isinstance(context, LLMContext):
        messages = context.messages_for_api(llm)
    else:
        messages = context.messages_for_api()
    if isinstance(instruction, str) and instruction:
        while messages and messages[0].get("role") in ("system", "developer"):
            messages.pop(0)
        messages.insert(0, {"role": "system", "content": instruction})
    return messages


class _StreamError(Exception):
    """The provider answered with an error (``status``), before or inside the stream."""

    def __init__(self, status: int, message: str, retry_in: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_in = retry_in


async def status_error(response: httpx.Response, source: str) -> _StreamError:
    """The :class:`_StreamError` for a streamed request that ``source`` answered with an error
    status (the body is read for its message), with a wait when a retry may help."""
    status = response.status_code
    message = error_message(status, await response.aread())
    retry_in = retry_after_secs(response, 0.5, 2.0) if is_retryable(status) else None
    return _StreamError(status, f"HTTP {status} from {source}: {message}", retry_in)


class StreamingHTTPLLMService(LLMService):
    """Base of the OpenAI-compatible and Gemini services (see the module docstring).

    Subclasses build the request body and stream one attempt; this class runs the turn.
    """

    _max_retries: int = 1
    _base_url: str = ""
    _retry_on_timeout: bool = False
    _retry_timeout_secs: float | None = 5.0

    def stream_event(self, data: str) -> dict[str, Any] | None:
        """One server-sent event's data as a JSON object; None for one to skip (malformed, not
        an object). An event carrying ``error`` raises :class:`_StreamError`."""
        try:
            chunk = json.loads(data)
        except ValueError:
            logger.warning("%s: skipping a malformed stream line", self)
            return None
        if not isinstance(chunk, dict):
            return None
        if "error" in chunk:
            raise _StreamError(500, f"error in stream: {error_message(500, data.encode())}")
        return chunk

    def _init_retry_on_timeout(
        self, retry_timeout_secs: float | None, retry_on_timeout: bool | None
    ) -> None:
        """Keep Pipecat's ``retry_timeout_secs`` / ``retry_on_timeout`` (module docstring)."""
        if retry_timeout_secs is not None and retry_timeout_secs <= 0:
            raise ConfigurationError(
                f"{type(self).__name__}: retry_timeout_secs must be positive or None, "
                f"not {retry_timeout_secs}"
            )
        self._retry_timeout_secs = retry_timeout_secs
        self._retry_on_timeout = bool(retry_on_timeout)

    def build_request(self, context: ChatContext) -> dict[str, Any]:
        """The request body for ``context``."""
        raise NotImplementedError

    def _ensure_client(self) -> None:
        """Create the HTTP client if the service has none yet."""
        raise NotImplementedError

    async def _stream_once(self, body: dict[str, Any], produced: list[bool]) -> list[ToolCall]:
        """One attempt: push the answer as it streams (set ``produced[0]`` at the first output);
        return the tool calls asked for. Raises :class:`_StreamError` or ``httpx.HTTPError``."""
        raise NotImplementedError

    def _is_auth_error(self, exc: _StreamError) -> bool:
        """True when retrying cannot help: the provider refused the credentials."""
        return exc.status in (401, 403)

    def _inference_error(self, status: int, content: bytes, source: str) -> CallpipeError:
        """What :meth:`run_inference` raises when ``source`` answered with an error status:
        ``ServiceAuthError`` when the credentials were refused."""
        error = f"{self}: HTTP {status} from {source}: {error_message(status, content)}"
        if self._is_auth_error(_StreamError(status, error)):
            return ServiceAuthError(error)
        return CallpipeError(error)

    async def _first_output(self, produced: list[bool]) -> None:
        """Mark the attempt as having pushed something (no retry from now on) and stop the
        time-to-first-byte measure, the first time only."""
        if not produced[0]:
            produced[0] = True
            await self.stop_ttfb_metrics()

    async def run_completion(self, context: ChatContext) -> list[ToolCall]:
        await self.wait_ready()
        self._ensure_client()
        body = self.build_request(context)
        await self._completion_started()
        await self.push_frame(LLMFullResponseStartFrame())
        try:
            return await self._stream_with_retry(body)
        finally:
            task = asyncio.current_task()
            if task is None or not task.cancelling():
                await self.end_thought()
                await self._completion_ended()
                await self.push_frame(LLMFullResponseEndFrame())
            self._in_thought = False

    async def _stream_watched(
        self, body: dict[str, Any], produced: list[bool], limit: float
    ) -> list[ToolCall] | None:
        """:meth:`_stream_once`, abandoned if it has pushed nothing after ``limit`` seconds
        (then None). The watch only looks at ``produced``, so a slow answer that has begun is
        never cut."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(None) as deadline:

                def check() -> None:
                    if not produced[0]:
                        deadline.reschedule(loop.time())

                watch = loop.call_later(limit, check)
                try:
                    return await self._stream_once(body, produced)
                finally:
                    watch.cancel()
        except TimeoutError:
            if not deadline.expired():
                raise
            return None

    async def _stream_with_retry(self, body: dict[str, Any]) -> list[ToolCall]:
        attempt = 0
        watch = self._retry_timeout_secs if self._retry_on_timeout else None
        while True:
            produced = [False]
            try:
                if watch is None:
                    return await self._stream_once(body, produced)
                calls = await self._stream_watched(body, produced, watch)
                if calls is not None:
                    return calls
                logger.info("%s: no output after %.2fs; sending the request again", self, watch)
                watch = None
                continue
            except _StreamError as exc:
                if exc.retry_in is not None and attempt < self._max_retries and not produced[0]:
                    attempt += 1
                    logger.warning("%s: %s; retrying in %.2fs", self, exc, exc.retry_in)
                    await asyncio.sleep(exc.retry_in)
                    continue
                fatal = self._is_auth_error(exc)
                reason = "auth" if fatal else ("rate_limit" if exc.status == 429 else "http")
                await self.report_error(f"{self}: {exc}", fatal=fatal, reason=reason)
                return []
            except httpx.HTTPError as exc:
                if isinstance(exc, httpx.TimeoutException):
                    await self._call_event_handler("on_completion_timeout")
                if attempt < self._max_retries and not produced[0]:
                    attempt += 1
                    if attempt == 1 and isinstance(exc, _STALE_CONNECTION):
                        # Most often a kept-alive connection the server closed just as the
                        # request went out: normal, and a fresh connection is what cures it.
                        logger.info("%s: %s: %s; retrying now", self, type(exc).__name__, exc)
                    else:
                        logger.warning("%s: %s: %s; retrying", self, type(exc).__name__, exc)
                        await asyncio.sleep(0.2)
                    continue
                await self.report_error(
                    f"{self}: request to {self._base_url} failed: {type(exc).__name__}: {exc}",
                    reason="network",
                )
                return []
            finally:
                self.reset_ttfb_metrics()


class PooledHTTPLLMService(StreamingHTTPLLMService):
    """A streaming service with its own pooled httpx client to ``_base_url`` (Anthropic,
    Gemini): made at start, where a warm-up request sets up the connection, or at the first
    request; closed at disconnect."""

    _client: httpx.AsyncClient | None = None
    _timeout: float = 30.0
    _warmup: bool = True

    def _client_headers(self) -> dict[str, str]:
        """The headers sent with every request (the credentials)."""
        raise NotImplementedError

    def _make_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self._base_url,
            headers=self._client_headers(),
            timeout=httpx.Timeout(self._timeout, connect=5.0),
            transport=pooled_transport(),
        )

    def _ensure_client(self) -> None:
        if self._client is None:
            self._client = self._make_client()

    async def _open_client(self, warmup_path: str) -> httpx.Response | None:
        """A new client; with ``warmup``, the answer to ``GET warmup_path`` (None when the
        request failed: the first turn will try again)."""
        self._client = self._make_client()
        if not self._warmup:
            return None
        try:
            return await self._client.get(warmup_path, timeout=5.0)
        except httpx.HTTPError as exc:
            logger.debug("%s: warm-up request failed: %s", self, exc)
            return None

    async def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
