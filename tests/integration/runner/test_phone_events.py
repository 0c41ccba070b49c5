"""The softphone's side channel: turn events reach the page watching that call, only that one,
and only in local mode."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from callpipe.pipeline.turn_log import TURN_EVENTS
from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.types import RunnerArguments
from callpipe.testing.server import running_server
from callpipe.testing.simulator.call import SimulatedCall
from callpipe.testing.simulator.dialects import CallIdentity
from callpipe.testing.virtual_calls import virtual_time

pytestmark = pytest.mark.integration


@virtual_time
async def test_events_go_to_the_page_watching_the_call() -> None:
    sinks: list[bool] = []

    async def bot(runner_args: RunnerArguments) -> None:
        sink = TURN_EVENTS.get()
        sinks.append(sink is not None)
        if sink is not None:
            sink({"type": "bot", "text": "hello from the bot"})

    app = create_app(bot, RunnerConfig(insecure=True), credentials=Credentials())
    async with running_server(app) as host:
        async with connect(f"ws://{host}/phone/events?call=CAwatched") as page:
            await asyncio.sleep(0.05)
            watched = CallIdentity(call_id="CAwatched")
            async with SimulatedCall(f"ws://{host}/ws", "twilio", identity=watched) as call:
                await call.wait_for_hangup(timeout=5)
            event = json.loads(await asyncio.wait_for(page.recv(), 5))
            async with SimulatedCall(f"ws://{host}/ws", "twilio") as other:
                await other.wait_for_hangup(timeout=5)
    assert event == {"type": "bot", "text": "hello from the bot"}
    assert sinks == [True, False]  # an unwatched call gets no sink (and no observer)


@pytest.mark.parametrize("insecure", [False, True])
@virtual_time
async def test_no_side_channel_on_a_public_host(insecure: bool) -> None:
    async def bot(runner_args: RunnerArguments) -> None:
        return None

    config = RunnerConfig(proxy="bot.example", insecure=insecure)
    app = create_app(bot, config, credentials=Credentials())
    async with running_server(app) as host:
        with pytest.raises(InvalidStatus):
            async with connect(f"ws://{host}/phone/events?call=CA1"):
                pass
