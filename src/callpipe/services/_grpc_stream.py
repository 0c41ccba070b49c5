"""What the gRPC streaming recognizers (Google STT, NVIDIA Riva STT) share: one bidi call fed
from a queue, and the drain and close of a service's calls at the end of a conversation.

A :class:`RequestStream` is one ``StreamingRecognize`` call seen from our side: the requests
waiting to go (the first is the configuration), the task reading its responses, and whether we
half-closed it or it failed. The services subclass it for what they track per call, and
subclass :class:`GrpcStreamSTTService` for the streams a service holds and its retry budget.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any, Generic, TypeVar

from callpipe.processors.base_object import cancel_and_wait
from callpipe.services.stt_service import StreamingSTTService

logger = logging.getLogger(__name__)


class RequestStream:
    """One bidi call's requests (``None`` ends them) and its reader task."""

    def __init__(self, first: Any) -> None:
        self.requests: asyncio.Queue[Any] = asyncio.Queue()
        self.requests.put_nowait(first)
        self.first = first
        """The request that opened the call (its configuration)."""
        self.reader: asyncio.Task[None] | None = None
        self.closing = False
        """Half-closed by the service: its end is expected."""
        self.failed = False
        """Ended by an error or by the server; audio waits for another call."""

    async def iterate(self) -> AsyncIterator[Any]:
        """The requests, for the gRPC call, until ``None`` is queued."""
        while (request := await self.requests.get()) is not None:
            yield request

    def half_close(self) -> None:
        """No more requests: the server sends its last results and ends the call."""
        if not self.closing:
            self.closing = True
            self.requests.put_nowait(None)


async def drain_streams(
    current: RequestStream | None,
    retiring: Iterable[RequestStream],
    wait_secs: float,
    owner: object,
) -> None:
    """Half-close ``current`` and wait (at most ``wait_secs`` seconds) for it and the ``retiring``
    calls to deliver their last results; a call still open then is left to the caller."""
    streams = [s for s in (current, *retiring) if s is not None]
    readers = [s.reader for s in streams if s.reader is not None]
    if current is not None:
        current.half_close()
    try:
        async with asyncio.timeout(wait_secs):
            await asyncio.gather(*(asyncio.shield(r) for r in readers))
    except TimeoutError:
        logger.warning("%s: no end of the stream within %.1f s", owner, wait_secs)


async def close_streams(streams: Iterable[RequestStream | None]) -> None:
    """Half-close each call and cancel its reader (waiting until it has stopped)."""
    for stream in streams:
        if stream is not None:
            stream.half_close()
            await cancel_and_wait(stream.reader)


_S = TypeVar("_S", bound=RequestStream)


class GrpcStreamSTTService(StreamingSTTService, Generic[_S]):
    """A recognizer on one gRPC bidi stream at a time: the current stream, those replaced and
    still returning results, and the count of failures in a row."""

    end_timeout_secs = 2.0
    """At the end of the call, how long the server may take to return the last results."""

    max_reconnects = 3
    """Stream failures in a row (server or network errors) retried before one is reported."""

    reconnect_delay_secs = 0.5
    """Wait before reopening, times the failures in a row less one."""

    max_resend_secs = 10.0
    """Audio since the last final result kept for sending again to a reopened stream."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._stream: _S | None = None
        self._retiring: set[_S] = set()
        """Streams replaced and half-closed, returning their last results."""
        self._failures = 0

    def _retire(self, old: _S | None) -> None:
        """A new stream took over from ``old``: unless it failed, it is half-closed and kept
        until its last results are in."""
        if old is not None and not old.failed:
            old.half_close()
            self._retiring.add(old)

    async def _close_streams(self) -> None:
        """Every stream closed and its reader stopped (at disconnect)."""
        streams = [self._stream, *self._retiring]
        self._stream, self._retiring = None, set()
        await close_streams(streams)

    async def _retry_allowed(self, said: str) -> bool:
        """Count one more failure in a row; past :attr:`max_reconnects` it is reported (and
        False returned)."""
        self._failures += 1
        if self._failures > self.max_reconnects:
            await self.report_error(
                f"{self}: the stream failed {self._failures} times in a row: {said}",
                reason="disconnected",
            )
            return False
        return True

    async def _back_off(self) -> None:
        """Wait before reopening: longer with each failure in a row."""
        await asyncio.sleep(self.reconnect_delay_secs * (self._failures - 1))
