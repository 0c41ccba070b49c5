"""What the gRPC streaming recognizers (Google STT, NVIDIA Riva STT) share: one bidi call fed
from a queue, and the drain and close of a service's calls at the end of a conversation.

A :class:`RequestStream` is one ``StreamingRecognize`` call seen from our side: the requests
waiting to go (the first is the configuration), the task reading its responses, and whether we
half-closed it or it failed. The services subclass it for what they track per call, and
subclass :class:`GrpcStreamSTTService` for the streams a service holds and its retry budget.

Connection events (Pipecat 1.14's ``on_connected``, ``on_disconnected``,
``on_connection_error``): each stream tells its :class:`StreamListener` (the service) when its
call is established, when it ends, and when connecting failed, the way a
:class:`~callpipe.services.websocket_service.ProviderWebsocket` tells its ``ConnectionListener``.
gRPC has no handshake answer: a call is established once its channel is connected and the call
has started on it (``wait_for_connection``), and a server that refuses the call says so with
its status, before any result. So a stream whose call could not be established, or that the
server ended with an error before it sent anything, is a connection error, and so is one the
service gives up on (a refused key or configuration, or too many failures in a row); each
stream is one at most once. A stream the server ends quietly (Google's ``ABORTED`` after a
silence, a plain end), or one that fails after it answered and is reopened, is only a
disconnection (and the next stream a connection), like a dropped socket reconnected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any, Generic, Protocol, TypeVar

from callpipe.processors.base_object import cancel_and_wait
from callpipe.services.stt_service import StreamingSTTService

logger = logging.getLogger(__name__)


class StreamListener(Protocol):
    """Told when a service's streams are established, end or fail to connect (see the module
    docstring): the service itself (:class:`~callpipe.services.ai_service.AIService`'s
    ``socket_*`` methods, which count the open streams and fire the events in a task). Each call
    must return promptly: it runs on the stream's reader."""

    async def socket_connected(self) -> None: ...

    async def socket_disconnected(self) -> None: ...

    async def socket_connection_error(self, error: str) -> None: ...


class RequestStream:
    """One bidi call's requests (``None`` ends them), its reader task, and what its
    ``listener`` was told of it."""

    def __init__(self, first: Any, *, listener: StreamListener | None = None) -> None:
        self.requests: asyncio.Queue[Any] = asyncio.Queue()
        self.requests.put_nowait(first)
        self.first = first
        """The request that opened the call (its configuration)."""
        self.reader: asyncio.Task[None] | None = None
        self.closing = False
        """Half-closed by the service: its end is expected."""
        self.failed = False
        """Ended by an error or by the server; audio waits for another call."""
        self.listener = listener
        self.up = False
        """Its call is established and has not ended (the listener was told)."""
        self.answered = False
        """The server sent a response on it (then an error is a drop, not a refusal)."""
        self._told_error = False

    async def iterate(self) -> AsyncIterator[Any]:
        """The requests, for the gRPC call, until ``None`` is queued."""
        while (request := await self.requests.get()) is not None:
            yield request

    def half_close(self) -> None:
        """No more requests: the server sends its last results and ends the call."""
        if not self.closing:
            self.closing = True
            self.requests.put_nowait(None)

    async def established(self) -> None:
        """Its call is established: the listener is told (the reader calls it once)."""
        if not self.up:
            self.up = True
            if self.listener is not None:
                await self.listener.socket_connected()

    async def ended(self) -> None:
        """Its call is over, however it ended (the reader calls it as it stops, cancelled
        too): the listener is told, if it was told of the call's start; a second call is a
        no-op."""
        if self.up:
            self.up = False
            if self.listener is not None:
                await self.listener.socket_disconnected()

    async def connection_failed(self, error: str) -> None:
        """Connecting it failed (see the module docstring): the listener is told ``error``,
        once per stream."""
        if not self._told_error:
            self._told_error = True
            if self.listener is not None:
                await self.listener.socket_connection_error(error)


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

    async def _retry_allowed(self, stream: _S, said: str, *, quiet: bool = False) -> bool:
        """Count one more failure in a row of ``stream`` (it ended with ``said``); past
        :attr:`max_reconnects` it is reported, as a connection error too (and False returned).
        A stream retried that failed before the server answered it could not be opened: a
        connection error as well, unless it ended ``quiet`` (the server ended it, no error)."""
        self._failures += 1
        if self._failures > self.max_reconnects:
            message = f"{self}: the stream failed {self._failures} times in a row: {said}"
            await stream.connection_failed(message)
            await self.report_error(message, reason="disconnected")
            return False
        if not stream.answered and not quiet:
            await stream.connection_failed(f"{self}: could not open a stream: {said}")
        return True

    async def _back_off(self) -> None:
        """Wait before reopening: longer with each failure in a row."""
        await asyncio.sleep(self.reconnect_delay_secs * (self._failures - 1))
