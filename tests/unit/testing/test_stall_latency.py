"""Under a simulated network stall, bot audio the stall held back is not the bot's answer.

A bot that is still talking (and never answers) when the caller stops inside a stall: today's
mistake was to credit its stale audio, released in a burst when the stall ends, as a reply
with a plausible latency.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from websockets.asyncio.server import ServerConnection, serve

from callpipe.audio import g711
from callpipe.testing.simulator.call import NetworkFaults, SimulatedCall
from callpipe.testing.virtual_calls import virtual_time

from .fake_bot import tone

TALK_SECS = 3.4
"""The bot streams speech in real time for this long after the handshake, then stays silent."""


@asynccontextmanager
async def talking_bot() -> AsyncIterator[str]:
    """Streams 20 ms of voiced audio every 20 ms for TALK_SECS, never answers anything."""

    async def handler(ws: ServerConnection) -> None:
        start = json.loads(await ws.recv())
        while start.get("event") != "start":
            start = json.loads(await ws.recv())
        sid = start["streamSid"]
        payload = base64.b64encode(g711.pcm_to_ulaw(tone(0.02))).decode()
        packet = json.dumps({"event": "media", "streamSid": sid, "media": {"payload": payload}})
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        n = 0
        while n * 0.02 < TALK_SECS:
            await asyncio.sleep(max(0.0, t0 + n * 0.02 - loop.time()))
            await ws.send(packet)
            n += 1
        async for _ in ws:  # listen until the caller hangs up
            pass

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws"


@virtual_time
async def test_stalled_stale_audio_is_not_a_reply() -> None:
    faults = NetworkFaults(stall_at=2.9, stall_secs=1.0)  # caller stops at ~3.0, inside it
    async with talking_bot() as url:
        call = SimulatedCall(url, "twilio", faults=faults)
        async with call:
            await call.pause(1.5)
            await call.say(tone(1.5))
            await call.pause(1.6)  # past the stall and the bot's last (stale) audio
    result = call.result()
    turns = result.turns()
    assert len(turns) == 1
    assert 2.9 <= turns[0].caller_end < 3.3
    # Audio arrived after the caller stopped (the stalled burst at ~3.9 s) ...
    assert any(a > turns[0].caller_end + 0.5 for a in result.voiced_arrivals)
    # ... but all of it left the bot before the bot could have heard the caller stop.
    assert turns[0].bot_start is None
    assert result.latencies() == []


@virtual_time
async def test_audio_after_the_stall_still_counts() -> None:
    """Without a stall over the caller's end, audio after it is credited as before."""
    async with talking_bot() as url:
        call = SimulatedCall(url, "twilio", faults=NetworkFaults(stall_at=0.5, stall_secs=0.5))
        async with call:
            await call.pause(1.2)
            await call.say(tone(1.0))  # ends at ~2.2 while the bot still talks
            await call.pause(0.5)
    turns = call.result().turns()
    assert len(turns) == 1 and turns[0].bot_start is not None
    assert 0.0 <= turns[0].bot_start - turns[0].caller_end < 0.2
