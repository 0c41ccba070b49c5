"""What the gRPC streaming recognizers (Google STT, NVIDIA Riva STT) share: one bidi call fed
from a queue, and the drain and close of a service's calls at the end of a conversation.

A :class:`RequestStream` is one ``StreamingRecognize`` call seen from our side: the requests
waiting to go (the first is the configuration), the task reading its responses, and whether we
half-closed it or it failed. The services subclass it for what they track per call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

from callpipe.processors.base_object import cancel_and_wait

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
