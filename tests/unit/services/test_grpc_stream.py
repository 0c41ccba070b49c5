"""The request stream and end-of-call drain the gRPC streaming recognizers share."""

from __future__ import annotations

import asyncio

from callpipe.services._grpc_stream import (
    GrpcStreamSTTService,
    RequestStream,
    close_streams,
    drain_streams,
)


async def _collect(stream: RequestStream, into: list[object]) -> None:
    async for request in stream.iterate():
        into.append(request)


async def test_half_close_ends_the_requests_once_after_those_queued() -> None:
    stream = RequestStream("config")
    stream.requests.put_nowait("audio")
    stream.half_close()
    stream.half_close()
    sent: list[object] = []
    await _collect(stream, sent)
    assert sent == ["config", "audio"]
    assert stream.closing and stream.requests.empty()


async def test_drain_half_closes_the_current_stream_and_waits_for_every_reader() -> None:
    current, retiring = RequestStream("a"), RequestStream("b")
    seen: list[object] = []
    current.reader = asyncio.create_task(_collect(current, seen))
    retiring.half_close()
    retiring.reader = asyncio.create_task(_collect(retiring, seen))
    await drain_streams(current, {retiring}, 1.0, "svc")
    assert current.closing
    assert current.reader.done() and retiring.reader.done()
    assert sorted(map(str, seen)) == ["a", "b"]


async def test_drain_gives_up_after_the_wait_and_leaves_the_reader_running() -> None:
    current = RequestStream("a")
    current.reader = asyncio.create_task(asyncio.sleep(10))
    await drain_streams(current, (), 0.01, "svc")
    assert not current.reader.done()
    current.reader.cancel()


async def test_close_half_closes_every_stream_and_stops_its_reader() -> None:
    streams = [RequestStream("a"), RequestStream("b")]
    for stream in streams:
        stream.reader = asyncio.create_task(asyncio.sleep(10))
    await close_streams([streams[0], None, streams[1]])
    assert all(s.closing for s in streams)
    assert all(s.reader is not None and s.reader.cancelled() for s in streams)


class _Recognizer(GrpcStreamSTTService[RequestStream]):
    reconnect_delay_secs = 0.0

    def __init__(self) -> None:
        super().__init__()
        self.reported: list[str] = []

    async def send_audio(self, audio: bytes) -> bool:
        return True

    async def report_error(self, message: str, *, fatal: bool = False, reason: str = "") -> None:
        self.reported.append(reason)


async def test_a_replaced_stream_is_kept_until_done_unless_it_failed() -> None:
    service = _Recognizer()
    alive, failed = RequestStream("a"), RequestStream("b")
    failed.failed = True
    service._retire(alive)
    service._retire(failed)
    service._retire(None)
    assert service._retiring == {alive} and alive.closing and not failed.closing


async def test_failures_in_a_row_past_the_budget_are_reported_once_over() -> None:
    service = _Recognizer()
    streams = [RequestStream(str(n)) for n in range(4)]
    allowed = [await service._retry_allowed(stream, "UNAVAILABLE") for stream in streams]
    assert allowed == [True, True, True, False]
    assert service.reported == ["disconnected"]


class _Listener:
    """A StreamListener noting what it was told, in order."""

    def __init__(self) -> None:
        self.told: list[tuple[str, ...]] = []

    async def socket_connected(self) -> None:
        self.told.append(("connected",))

    async def socket_disconnected(self) -> None:
        self.told.append(("disconnected",))

    async def socket_connection_error(self, error: str) -> None:
        self.told.append(("error", error))


async def test_a_stream_tells_its_listener_once_of_each_change() -> None:
    listener = _Listener()
    stream = RequestStream("config", listener=listener)
    await stream.ended()  # never established: nothing to tell
    await stream.established()
    await stream.ended()
    await stream.ended()
    await stream.connection_failed("refused")
    await stream.connection_failed("refused again")
    assert listener.told == [("connected",), ("disconnected",), ("error", "refused")]
    assert not stream.up


async def test_a_retry_is_a_connection_error_only_if_the_server_never_answered() -> None:
    service = _Recognizer()
    listener = _Listener()
    unanswered, answered, quiet = (RequestStream(n, listener=listener) for n in "abc")
    answered.answered = True
    assert await service._retry_allowed(unanswered, "UNAVAILABLE: down")
    assert await service._retry_allowed(answered, "UNAVAILABLE: dropped")  # a drop: no error
    assert await service._retry_allowed(quiet, "OK: the server ended it", quiet=True)
    assert listener.told == [("error", f"{service}: could not open a stream: UNAVAILABLE: down")]
    # Past the budget the failure is reported, and told as the stream's one connection error.
    last = RequestStream("d", listener=listener)
    last.answered = True
    assert not await service._retry_allowed(last, "UNAVAILABLE: gone")
    message = f"{service}: the stream failed 4 times in a row: UNAVAILABLE: gone"
    assert listener.told[-1] == ("error", message) and len(listener.told) == 2
    assert service.reported == ["disconnected"]
