"""jambonz end to end: the runner accepts the listen stream's subprotocol, and the demo bot
answers a simulated jambonz call (greeting, DTMF, hang-up by closing the stream)."""

from __future__ import annotations

from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from callpipe.providers.jambonz.dialect import JambonzDialect
from callpipe.testing.simulator import SimulatedCall

from .test_demo_bot import demo_server


async def test_runner_accepts_with_the_jambonz_subprotocol() -> None:
    async with demo_server() as url:
        async with connect(url, subprotocols=[Subprotocol("audio.jambonz.org")]) as ws:
            assert ws.subprotocol == "audio.jambonz.org"
            await ws.send(JambonzDialect().handshake()[0])
            first = await ws.recv()  # the greeting: binary L16, never JSON-wrapped
            assert isinstance(first, bytes) and len(first) % 2 == 0
        async with connect(url) as plain:  # nobody else is offered a subprotocol
            assert plain.subprotocol is None


async def test_demo_bot_answers_a_simulated_jambonz_call() -> None:
    async with demo_server() as url, SimulatedCall(url, "jambonz") as call:
        assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.5), "no greeting"
        await call.press("#")
        assert await call.wait_for_hangup(timeout=8)
        result = call.result()
    assert result.bot_speech_secs(0.0, 3.0) > 0.8
    assert result.ended_by == "bot"
    assert result.events_of("invalid") == []  # every frame the bot sent is jambonz's
    assert [e.detail for e in result.events_of("dtmf")] == ["#"]
