"""DialBook: matching a dial to its stream, status transitions, events and waiting."""

from __future__ import annotations

import asyncio

from callpipe.runner.dials import DialBook, DialEvent
from callpipe.telephony.dial.types import CallHandle


def handle(provider: str = "twilio", call_id: str = "CA1", dial_id: str = "d1") -> CallHandle:
    return CallHandle(provider, call_id, dial_id, "+15551234567", metadata={"name": "Ada"})


async def test_token_match_is_single_use_and_call_id_is_the_fallback() -> None:
    book = DialBook()
    await book.add(handle())
    assert await book.on_answer("twilio", {"CallSid": "CA1"}, "CA1", "tok") is not None
    assert await book.for_stream("twilio", "tok", None) is not None
    assert await book.for_stream("twilio", "tok", None) is None  # token used
    assert await book.for_stream("twilio", None, "CA1") is not None  # local mode: by call id
    assert await book.on_answer("twilio", {"CallSid": "CAother"}, "CAother", "t2") is None


async def test_plivo_request_uuid_maps_to_the_streams_call_uuid() -> None:
    book = DialBook()
    await book.add(handle("plivo", "req-1"))
    await book.on_answer("plivo", {"RequestUUID": "req-1", "CallUUID": "call-9"}, "call-9", None)
    found = await book.for_stream("plivo", None, "call-9")
    assert found is not None and found.dial_id == "d1"


async def test_terminal_status_is_final_late_progress_ignored_and_events_fire() -> None:
    book = DialBook()
    events: list[DialEvent] = []
    book.add_listener(events.append)
    book.add_listener(lambda e: 1 / 0)  # a broken listener does not stop the others
    h = handle()
    await book.add(h)
    await book.on_callback("twilio", {"CallSid": "CA1", "CallStatus": "in-progress"})
    await book.on_callback("twilio", {"CallSid": "CA1", "CallStatus": "ringing"})  # late
    await book.on_callback("twilio", {"CallSid": "CA1", "CallStatus": "busy"})
    await book.on_callback("twilio", {"CallSid": "CA1", "CallStatus": "completed"})  # after end
    assert h.status == "busy" and h.done
    assert [(e.kind, e.value) for e in events] == [("status", "answered"), ("status", "busy")]


async def test_a_dial_id_is_reserved_once_and_released_on_failure() -> None:
    book = DialBook()
    assert await book.reserve("d1", "twilio", "+1555")
    assert not await book.reserve("d1", "twilio", "+1555")
    assert await book.is_pending("d1") and await book.outstanding() == 1
    await book.release("d1")
    assert await book.get("d1") is None and await book.outstanding() == 0
    assert await book.reserve("d1", "twilio", "+1555")
    await book.add(handle())
    assert not await book.is_pending("d1") and await book.outstanding() == 1
    await book.on_callback("twilio", {"CallSid": "CA1", "CallStatus": "completed"})
    assert await book.outstanding() == 0


async def test_wait_done_returns_when_the_call_ends() -> None:
    book = DialBook()
    h = handle()
    await book.add(h)
    waiter = asyncio.create_task(book.wait_done("d1"))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await book.on_callback("twilio", {"CallSid": "CA1", "CallStatus": "completed"})
    done = await asyncio.wait_for(waiter, 1)
    assert done is h and h.status == "completed"


async def test_records_expire() -> None:
    book = DialBook(ttl=0.0)
    await book.add(handle(dial_id="old"))
    await book.add(handle(call_id="CA2", dial_id="new"))
    assert await book.get("old") is None and await book.find("twilio", "CA1") is None
