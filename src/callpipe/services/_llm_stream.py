"""What every streaming-over-HTTP LLM service shares: one request per turn, the response
framing, and the retry rule.

A request is retried (at most ``max_retries`` times) only while nothing of its answer has been
pushed yet: after the first token, a retry would make the bot say the start of its answer twice.
A provider's "retry after" (429/503) is honoured; network errors wait 0.2 s, except a first
failure that looks like a stale kept-alive connection, which is retried at once. What cannot be
retried becomes one ``ErrorFrame`` (fatal for rejected credentials) and an empty completion.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from callpipe.frames.frames import LLMFullResponseEndFrame, LLMFullResponseStartFrame
from callpipe.processors.aggregators.llm_context import ChatContext
from callpipe.services.llm_service import LLMService, ToolCall

logger = logging.getLogger(__name__)

_STALE_CONNECTION = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
"""What a request sent on a connection the server has just closed fails with."""


class _StreamError(Exception):
    """The provider answered with an error (``status``), before or inside the stream."""

    def __init__(self, status: int, message: str, retry_in: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_in = retry_in


class StreamingHTTPLLMService(LLMService):
    """Base of the OpenAI-compatible and Gemini services (see the module docstring).

    Subclasses build the request body and stream one attempt; this class runs the turn.
    """

    _max_retries: int = 1
    _base_url: str = ""

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

    async def run_completion(self, context: ChatContext) -> list[ToolCall]:
        await self.wait_ready()
        self._ensure_client()
        body = self.build_request(context)
        await self.push_frame(LLMFullResponseStartFrame())
        try:
            return await self._stream_with_retry(body)
        finally:
            task = asyncio.current_task()
            if task is None or not task.cancelling():
                await self.push_frame(LLMFullResponseEndFrame())

    async def _stream_with_retry(self, body: dict[str, Any]) -> list[ToolCall]:
        attempt = 0
        while True:
            produced = [False]
            try:
                return await self._stream_once(body, produced)
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
