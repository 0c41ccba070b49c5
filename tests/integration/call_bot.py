"""The bot's side of an integration call through the call simulator.

A test supplies only its bot (what goes into the pipeline, and what it queues when); these
helpers do the rest the same way every time: a real server running the bot on the call's
websocket, the phone transport, a pipeline run that ends when the caller hangs up, and one
simulated call whose recording (what the caller heard) the test reads.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, WebSocket

from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.frame_processor import FrameProcessor
from callpipe.serializers.base_serializer import FrameSerializer
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.testing.server import running_server
from callpipe.testing.simulator import NetworkFaults, SimulatedCall
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

RATE = 8000

Bot = Callable[[WebSocket, dict[str, Any]], Awaitable[None]]
"""Runs one call: the accepted websocket and the provider's ``start`` message."""


def bot_app(bot: Bot, done: asyncio.Event) -> FastAPI:
    """``/ws`` runs ``bot`` once the provider's ``start`` message arrived (Twilio sends
    ``connected`` first); ``done`` is set when the bot returned, so a test can wait for it."""
    app = FastAPI()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        messages = websocket.iter_text()
        start: dict[str, Any] = {}
        while "start" not in start:
            start = json.loads(await messages.__anext__())
        try:
            await bot(websocket, start)
        finally:
            done.set()

    return app


@asynccontextmanager
async def call_bot(
    bot: Bot, provider: str = "twilio", faults: NetworkFaults | None = None
) -> AsyncIterator[SimulatedCall]:
    """Serve ``bot`` and place one simulated call to it; on leaving, wait until the bot ended."""
    done = asyncio.Event()
    async with running_server(bot_app(bot, done)) as addr:
        async with SimulatedCall(f"ws://{addr}/ws", provider, faults=faults) as call:
            yield call
        await asyncio.wait_for(done.wait(), 10)


def twilio_serializer(start: dict[str, Any]) -> TwilioFrameSerializer:
    """The Twilio stream's serializer without REST credentials: the socket ends the call."""
    return TwilioFrameSerializer(
        stream_sid=start["start"]["streamSid"],
        call_sid=start["start"]["callSid"],
        params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
    )


def phone_transport(
    websocket: WebSocket, serializer: FrameSerializer, **params: Any
) -> FastAPIWebsocketTransport:
    """Audio both ways over the call's websocket; ``params`` adds VAD, a mixer, ..."""
    return FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True, audio_out_enabled=True, serializer=serializer, **params
        ),
    )


def phone_task(processors: Sequence[FrameProcessor]) -> PipelineTask:
    """The pipeline at the phone's 8 kHz both ways."""
    return PipelineTask(
        Pipeline(list(processors)),
        params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
    )


async def run_until_hangup(transport: FastAPIWebsocketTransport, task: PipelineTask) -> None:
    """Run ``task`` until the caller hangs up (the transport's client disconnects)."""

    @transport.event_handler("on_client_disconnected")
    async def on_disconnected(transport: Any, client: Any) -> None:
        await task.cancel()

    await PipelineRunner(handle_sigint=False).run(task)
