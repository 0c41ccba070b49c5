"""Every call's end is accounted for: exactly one structured ``call ended`` line per call.

The line (logger ``callpipe.calls``) carries, as ``extra`` fields, the masked call id, the
provider, the duration, the reason — caller hung up, bot ended, timeout, error — and the counts
of packets in and out, malformed messages and barge-in interruptions.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from callpipe.testing.virtual_calls import virtual_time

from .helpers import BotConfig, BotServer, Caller, LogCapture, capture_logs, serve, tone

pytestmark = pytest.mark.integration

FIELDS = (
    "call_id",
    "provider",
    "duration_secs",
    "end_reason",
    "packets_in",
    "packets_out",
    "malformed",
    "interruptions",
)


def _ends(logs: LogCapture) -> dict[str, logging.LogRecord]:
    by_call: dict[str, logging.LogRecord] = {}
    for record in logs.call_ends():
        call_id = record.call_id  # type: ignore[attr-defined]
        assert call_id not in by_call, f"two call-end lines for {call_id}"
        by_call[call_id] = record
        for name in FIELDS:
            assert hasattr(record, name), name
    return by_call


async def test_each_way_a_call_ends_is_logged_once_with_its_reason_and_counts() -> None:
    server = BotServer()
    with capture_logs() as logs:
        async with serve(server.app) as addr:

            async def call(n: int, ending: str) -> None:
                caller = Caller(f"ws://{addr}/ws", n)
                await caller.connect()
                await caller.send_silence(0.2)
                # Let at least five echoed packets come back before the call ends: on a loaded
                # host the echo can lag the caller's 0.2 s, and the count below is of packets
                # that were sent, not of time passed.
                await caller.wait_media(5)
                await caller.send_raw("not json")
                if ending == "stop":
                    await caller.stop()
                elif ending == "bot":
                    await caller.press("0")
                elif ending == "error":
                    await caller.press("6")
                elif ending == "abort":
                    caller.abort()
                    return
                if ending != "close":  # the server ends these calls
                    await asyncio.wait_for(caller.closed.wait(), 5)
                await caller.close()

            endings = ["stop", "close", "abort", "bot", "error"]
            await asyncio.gather(*(call(i + 1, e) for i, e in enumerate(endings)))
            await server.wait_calls(len(endings))
    ends = _ends(logs)
    reasons = {r.call_id[-2:]: r.end_reason for r in ends.values()}  # type: ignore[attr-defined]
    assert reasons == {
        "01": "caller hung up (provider stopped the stream)",
        "02": "caller hung up (remote closed)",
        "03": "caller hung up (remote closed)",
        "04": "bot ended",
        "05": "error",
    }
    for record in ends.values():
        assert record.provider == "twilio"  # type: ignore[attr-defined]
        assert record.packets_in >= 9  # type: ignore[attr-defined]
        assert record.packets_out >= 5  # type: ignore[attr-defined]
        assert record.malformed == 1  # type: ignore[attr-defined]
        # Timed from the bot's start, which a loaded host can put most of the caller's 0.2 s
        # of audio after the connect: measured (not 0), and not the whole test.
        assert 0.0 < record.duration_secs < 5  # type: ignore[attr-defined]
        assert "…" in record.call_id  # type: ignore[attr-defined]


@virtual_time
async def test_an_idle_call_ends_with_a_timeout_reason() -> None:
    server = BotServer(BotConfig(echo=False, idle_timeout_secs=0.4))
    with capture_logs() as logs:
        async with serve(server.app) as addr, Caller(f"ws://{addr}/ws") as caller:
            await asyncio.wait_for(caller.closed.wait(), 5)
            assert caller.close_code == 1000
    (end,) = _ends(logs).values()
    assert end.end_reason == "timeout (idle)"  # type: ignore[attr-defined]


@virtual_time
async def test_a_barge_in_is_counted_as_an_interruption() -> None:
    server = BotServer(BotConfig(echo=False, vad=True, greeting_secs=2.0))
    with capture_logs() as logs:
        async with serve(server.app) as addr, Caller(f"ws://{addr}/ws") as caller:
            await caller.send_silence(0.5)
            await caller.send_audio(tone(0.4, amp=12000))
            await caller.send_silence(0.4)
            assert caller.events("clear")
        await server.wait_calls(1)
    (end,) = _ends(logs).values()
    assert end.interruptions == 1  # type: ignore[attr-defined]
