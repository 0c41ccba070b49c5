"""A whole phone call through the spec's pipeline with real service clients and local fakes.

transport.input() → Deepgram STT → user aggregator → OpenAI LLM → Cartesia TTS →
transport.output() → assistant aggregator, served on uvicorn, called over Twilio's protocol by
the call simulator speaking real (eSpeak NG) speech, with Silero VAD finding the turns. The
three providers are the local fakes from ``callpipe.testing.fakes``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

pytest.importorskip("onnxruntime", reason="needs the silero extra")
pytest.importorskip("espeakng_loader", reason="needs the espeak extra")

from fastapi import FastAPI, WebSocket

from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.frames.frames import Frame, MetricsFrame
from callpipe.metrics.metrics import TTFBMetricsData, TurnLatencyMetricsData
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.aggregators.openai_llm_context import OpenAILLMContext
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.deepgram.stt import DeepgramSTTService, LiveOptions
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.testing.fakes import FakeCartesiaServer, FakeDeepgramServer, FakeOpenAIServer
from callpipe.testing.server import running_server
from callpipe.testing.simulator import SimulatedCall
from callpipe.testing.virtual_calls import virtual_time
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

pytestmark = pytest.mark.integration

SYSTEM = {"role": "system", "content": "You are a friendly restaurant booking line."}
GREETING = "Hello! How can I help you today?"
REQUEST = "I would like to book a table for two"
ANSWER = "Of course. For what time would you like the table?"


class MetricsLog(FrameProcessor):
    """Keeps the metrics frames that reach the end of the pipeline."""

    def __init__(self) -> None:
        super().__init__()
        self.data: list[Any] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, MetricsFrame):
            self.data.extend(frame.data)
        await self.push_frame(frame, direction)


@dataclass
class Fakes:
    deepgram: FakeDeepgramServer
    openai: FakeOpenAIServer
    cartesia: FakeCartesiaServer
    contexts: list[OpenAILLMContext] = field(default_factory=list)
    metrics: list[Any] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)


def make_app(fakes: Fakes) -> FastAPI:
    app = FastAPI()

    @app.websocket("/ws")
    async def websocket_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        messages = websocket.iter_text()
        await messages.__anext__()  # "connected"
        start = json.loads(await messages.__anext__())["start"]
        try:
            await run_bot(fakes, websocket, start["streamSid"], start["callSid"])
        finally:
            fakes.done.set()

    return app


async def run_bot(fakes: Fakes, websocket: WebSocket, stream_sid: str, call_sid: str) -> None:
    serializer = TwilioFrameSerializer(
        stream_sid=stream_sid,
        call_sid=call_sid,
        params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
    )
    transport = FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            vad_analyzer=SileroVADAnalyzer(),
            serializer=serializer,
        ),
    )
    # Deepgram's own endpointing is long here: the end of the turn comes from the VAD (Finalize).
    stt = DeepgramSTTService(
        api_key="test-key",
        url=fakes.deepgram.url,
        encoding="mulaw",
        live_options=LiveOptions(endpointing=3000),
    )
    llm = OpenAILLMService(api_key="test-key", base_url=fakes.openai.base_url, model="fake-model")
    tts = CartesiaTTSService(api_key="test-key", voice_id="voice-1", url=fakes.cartesia.url)
    context = OpenAILLMContext([SYSTEM])
    fakes.contexts.append(context)
    context_aggregator = llm.create_context_aggregator(context)
    metrics = MetricsLog()
    pipeline = Pipeline(
        [
            transport.input(),
            stt,
            context_aggregator.user(),
            llm,
            tts,
            transport.output(),
            context_aggregator.assistant(),
            metrics,
        ]
    )
    task = PipelineTask(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=8000, audio_out_sample_rate=8000, enable_metrics=True
        ),
    )

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport: Any, client: Any) -> None:
        await task.queue_frames([context_aggregator.user().get_context_frame()])

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: Any, client: Any) -> None:
        await task.cancel()

    await PipelineRunner(handle_sigint=False).run(task)
    fakes.metrics.extend(metrics.data)


@asynccontextmanager
async def bot_with_fakes(tts_chunk_delay: float = 0.0) -> AsyncIterator[tuple[str, Fakes]]:
    async with (
        FakeDeepgramServer() as deepgram,
        FakeOpenAIServer() as openai,
        FakeCartesiaServer(secs_per_word=0.25, chunk_delay=tts_chunk_delay) as cartesia,
    ):
        fakes = Fakes(deepgram, openai, cartesia)
        async with running_server(make_app(fakes)) as addr:
            yield f"ws://{addr}/ws", fakes


@virtual_time
async def test_caller_speaks_llm_answers_and_context_holds_both_turns() -> None:
    async with bot_with_fakes() as (url, fakes):
        fakes.openai.add_chat_reply(GREETING)
        fakes.openai.add_chat_reply(ANSWER)
        fakes.deepgram.transcripts.append(REQUEST)
        async with SimulatedCall(url, "twilio") as call:
            assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.6), "no greeting"
            said_at = call.now()
            await call.say("I would like to book a table for two")
            said_end = call.now()
            assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.6), "no answer"
            await call.hang_up()
            result = call.result()
        await asyncio.wait_for(fakes.done.wait(), 10)

    # The transcript reached the LLM as the caller's turn.
    assert len(fakes.openai.chat_requests) == 2
    second = fakes.openai.chat_requests[1]["messages"]
    assert second[-1] == {"role": "user", "content": REQUEST}
    assert second[-2] == {"role": "assistant", "content": GREETING}
    # Both replies were spoken (the fake Cartesia speaks 0.25 s per word).
    assert result.bot_speech_secs(0.0, said_at) > 1.0
    assert result.bot_speech_secs(said_end, result.duration) > 2.0
    assert result.bot_speech_secs(said_at + 0.3, said_end) < 0.05  # quiet while the caller talks
    inputs = [m for m in fakes.cartesia.messages if m.get("transcript")]
    assert [m["transcript"].strip() for m in inputs] == [
        "Hello!",
        "How can I help you today?",
        "Of course.",
        "For what time would you like the table?",
    ]
    # The context holds both turns, in order, as heard.
    [context] = fakes.contexts
    assert context.messages == [
        SYSTEM,
        {"role": "assistant", "content": GREETING},
        {"role": "user", "content": REQUEST},
        {"role": "assistant", "content": ANSWER},
    ]
    # Deepgram got μ-law at 8 kHz; the VAD stop finalized the transcript.
    assert fakes.deepgram.queries[0]["encoding"] == "mulaw"
    assert fakes.deepgram.finalizes >= 1
    # Metrics: TTFB of each service and the caller-stopped → bot-audio latency of the turn.
    ttfb = {d.processor.split("#")[0] for d in fakes.metrics if isinstance(d, TTFBMetricsData)}
    assert {"DeepgramSTTService", "OpenAILLMService", "CartesiaTTSService"} <= ttfb
    turns = [d for d in fakes.metrics if isinstance(d, TurnLatencyMetricsData)]
    assert len(turns) == 1 and 0.8 <= turns[0].value < 5.0
    [turn] = [t for t in result.turns() if t.latency is not None]
    assert turn.latency is not None and turn.latency > 0


@virtual_time
async def test_barge_in_cuts_the_reply_and_the_context_keeps_what_was_heard() -> None:
    long_answer = " ".join(
        [
            "We have many tables.",
            "Some are by the window and some are in the garden.",
            "The garden opens at six and closes at eleven every day of the week.",
            "Tell me which one you prefer.",
        ]
    )
    # Generation a little faster than real time (40 ms of audio every 30 ms), so the long
    # answer is still being generated when the caller barges in.
    async with bot_with_fakes(tts_chunk_delay=0.03) as (url, fakes):
        fakes.openai.add_chat_reply(GREETING)
        fakes.openai.add_chat_reply(long_answer)
        fakes.openai.add_chat_reply("Sure.")
        fakes.deepgram.transcripts.extend([REQUEST, "stop please"])
        async with SimulatedCall(url, "twilio") as call:
            assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.6)
            await call.say("I would like to book a table for two")
            assert await call.wait_for_bot_speech(timeout=10)
            await call.pause(1.5)  # the long answer is playing
            barge_at = call.now()
            await call.say("Stop please", wait=False)
            clear = await call.wait_for_event("clear", timeout=5)
            assert clear is not None, "barge-in produced no clear"
            assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.6)
            await call.hang_up()
            result = call.result()
        await asyncio.wait_for(fakes.done.wait(), 10)

    assert barge_at < clear.t < barge_at + 1.5
    # The interrupted Cartesia context was cancelled, and the next reply was spoken.
    assert len(fakes.cartesia.cancelled) == 1
    [context] = fakes.contexts
    roles = [m["role"] for m in context.messages]
    assert roles == ["system", "assistant", "user", "assistant", "user", "assistant"]
    cut = context.messages[3]
    assert cut.get("interrupted") is True
    heard = cut["content"]
    assert heard and long_answer.startswith(heard.rstrip(".")) and heard != long_answer
    assert context.messages[4] == {"role": "user", "content": "stop please"}
    assert context.messages[5] == {"role": "assistant", "content": "Sure."}
    # The third request carried the cut reply without callpipe's private key.
    assert fakes.openai.chat_requests[2]["messages"][3] == {"role": "assistant", "content": heard}
    assert result.bot_speech_secs(clear.t + 0.2, clear.t + 0.6) < 0.05
