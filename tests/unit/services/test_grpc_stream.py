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
    allowed = [await service._retry_allowed("UNAVAILABLE") for _ in range(4)]
    assert allowed == [True, True, True, False]
    assert service.reported == ["disconnected"]
