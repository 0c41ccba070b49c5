"""Idle prompts start only after the bot's audio finished *playing* on the phone.

The bot sends a 2.5 s greeting in one burst (the output paces it in real time; the simulator
acknowledges playback marks only once the audio before them has played) and asks for an idle
prompt after 1.0 s of caller silence. The prompt must start about 1.0 s after the greeting
*ended* in the simulator's recording, for both the 1.14 aggregator (``user_idle_timeout`` +
``on_user_turn_idle``) and the standalone ``UserIdleProcessor``. With a network stall in the
middle of the greeting the phone plays its end a second after it was sent; a timer counted from
sending would then fire while the caller still hears the greeting.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi import FastAPI, WebSocket

from callpipe.frames.frames import Frame, TTSAudioRawFrame, TTSStartedFrame, TTSStoppedFrame
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from callpipe.processors.frame_processor import FrameProcessor
from callpipe.processors.user_idle_processor import UserIdleProcessor
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.server import running_server
from callpipe.testing.simulator import NetworkFaults, SimulatedCall
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

pytestmark = pytest.mark.integration

RATE = 8000
IDLE = 1.0
GREETING_SECS = 2.5


def utterance(secs: float, freq: float) -> list[Frame]:
    return [
        TTSStartedFrame(),
        TTSAudioRawFrame(tone_pcm(secs, RATE, freq), RATE, 1),
        TTSStoppedFrame(),
    ]


def make_app(kind: str, done: asyncio.Event) -> FastAPI:
    app = FastAPI()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        messages = websocket.iter_text()
        await messages.__anext__()
        start = json.loads(await messages.__anext__())["start"]
        transport = FastAPIWebsocketTransport(
            websocket=websocket,
            params=FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                serializer=TwilioFrameSerializer(
                    stream_sid=start["streamSid"],
                    call_sid=start["callSid"],
                    params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
                ),
            ),
        )
        task: PipelineTask

        async def prompt() -> None:
            await task.queue_frames(utterance(0.4, 660))

        watcher: FrameProcessor
        if kind == "aggregator":
            user, _ = LLMContextAggregatorPair(
                LLMContext(), user_params=LLMUserAggregatorParams(user_idle_timeout=IDLE)
            )
            user.add_event_handler("on_user_turn_idle", lambda aggregator: prompt())
            watcher = user
        else:

            async def on_idle(processor: UserIdleProcessor, retry_count: int) -> bool:
                await prompt()
                return True

            watcher = UserIdleProcessor(callback=on_idle, timeout=IDLE)
        task = PipelineTask(
            Pipeline([transport.input(), watcher, transport.output()]),
            params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
        )

        @transport.event_handler("on_client_connected")
        async def on_connected(transport: Any, client: Any) -> None:
            await task.queue_frames(utterance(GREETING_SECS, 440))

        @transport.event_handler("on_client_disconnected")
        async def on_disconnected(transport: Any, client: Any) -> None:
            await task.cancel()

        try:
            await PipelineRunner(handle_sigint=False).run(task)
        finally:
            done.set()

    return app


@pytest.mark.parametrize(
    ("kind", "stall"), [("aggregator", False), ("processor", False), ("aggregator", True)]
)
async def test_idle_prompt_counts_from_the_end_of_playback(kind: str, stall: bool) -> None:
    done = asyncio.Event()
    faults = NetworkFaults(stall_at=1.2, stall_secs=1.0) if stall else None
    async with running_server(make_app(kind, done)) as addr:
        async with SimulatedCall(f"ws://{addr}/ws", "twilio", faults=faults) as call:
            assert await call.wait_for_bot_speech(timeout=5)
            await asyncio.sleep(GREETING_SECS + (1.0 if stall else 0.0) + IDLE + 0.8)
            await call.wait_for_bot_silence(quiet_secs=0.2, timeout=3)
            await call.hang_up()
            result = call.result()
        await asyncio.wait_for(done.wait(), 10)

    regions = result.bot_regions()
    greeting_end, prompt_region = regions[-2][1], regions[-1]
    heard = sum(e - s for s, e in regions[:-1])
    assert heard == pytest.approx(GREETING_SECS, abs=0.15)  # the whole greeting was played
    assert prompt_region[1] - prompt_region[0] == pytest.approx(0.4, abs=0.1)
    gap = prompt_region[0] - greeting_end
    print(f"bot regions {[(round(s, 2), round(e, 2)) for s, e in regions]}")
    # From the end of what the caller heard; a timer started at send time would have fired
    # while the greeting was still playing (gap < 0) or right at its end.
    assert IDLE - 0.05 <= gap <= IDLE + 0.3, gap
