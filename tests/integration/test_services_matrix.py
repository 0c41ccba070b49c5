"""The same phone call through every STT × TTS pair of real service clients and local fakes.

transport.input() → STT → user aggregator → OpenAI LLM (with a tool) → TTS → transport.output()
→ assistant aggregator, served on uvicorn and called over Twilio's protocol by the simulator
speaking eSpeak NG speech, turns found by Silero VAD. STT is Deepgram (streaming) or OpenAI
(segmented); TTS is Cartesia, ElevenLabs or OpenAI. The caller asks, the model calls a tool,
speaks the answer, and the caller barges in on it. Each call runs on virtual time
(``callpipe.testing.virtual_calls``), so the whole matrix costs about a second.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

pytest.importorskip("onnxruntime", reason="needs the silero extra")
pytest.importorskip("espeakng_loader", reason="needs the espeak extra")

from fastapi import FastAPI, WebSocket

from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.aggregators.openai_llm_context import OpenAILLMContext
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.deepgram.stt import DeepgramSTTService, LiveOptions
from callpipe.services.elevenlabs.tts import ElevenLabsTTSService
from callpipe.services.google.llm import GoogleLLMService
from callpipe.services.llm_service import FunctionCallParams
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.services.openai.stt import OpenAISTTService
from callpipe.services.openai.tts import OpenAITTSService
from callpipe.testing.fakes import (
    FakeCartesiaServer,
    FakeDeepgramServer,
    FakeElevenLabsServer,
    FakeGeminiServer,
    FakeOpenAIServer,
)
from callpipe.testing.server import running_server
from callpipe.testing.simulator import SimulatedCall
from callpipe.testing.virtual_calls import virtual_time
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

pytestmark = pytest.mark.integration

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "free_tables",
            "description": "Free tables for a party size",
            "parameters": {"type": "object", "properties": {"party": {"type": "integer"}}},
        },
    }
]
TTS = ("cartesia", "elevenlabs", "openai")
REQUEST = "I would like a table for two"
ANSWER = (
    "Three tables are free. One is by the window and two are in the garden. "
    "The garden is lovely at this time of the year. Which one would you like?"
)


@dataclass
class Fakes:
    openai: FakeOpenAIServer
    deepgram: FakeDeepgramServer
    cartesia: FakeCartesiaServer
    elevenlabs: FakeElevenLabsServer
    gemini: FakeGeminiServer
    contexts: list[OpenAILLMContext] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)


def make_stt(kind: str, fakes: Fakes) -> Any:
    if kind == "deepgram":
        options = LiveOptions(endpointing=3000)
        return DeepgramSTTService(api_key="test-key", url=fakes.deepgram.url, live_options=options)
    return OpenAISTTService(api_key="test-key", base_url=fakes.openai.base_url)


def make_tts(kind: str, fakes: Fakes) -> Any:
    if kind == "cartesia":
        return CartesiaTTSService(api_key="test-key", voice_id="v", url=fakes.cartesia.url)
    if kind == "elevenlabs":
        return ElevenLabsTTSService(api_key="test-key", voice_id="v", url=fakes.elevenlabs.url)
    return OpenAITTSService(api_key="test-key", base_url=fakes.openai.base_url, warmup=False)


def make_llm(kind: str, fakes: Fakes) -> Any:
    if kind == "gemini":
        return GoogleLLMService(api_key="test-key", base_url=fakes.gemini.base_url)
    return OpenAILLMService(api_key="test-key", base_url=fakes.openai.base_url, model="fake-model")


async def run_bot(kinds: tuple[str, ...], fakes: Fakes, websocket: WebSocket, start: Any) -> None:
    serializer = TwilioFrameSerializer(
        stream_sid=start["streamSid"],
        call_sid=start["callSid"],
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
    llm = make_llm(kinds[2], fakes)

    async def free_tables(params: FunctionCallParams) -> None:
        fakes.tool_calls.append(params.arguments)
        await params.result_callback({"window": 1, "garden": 2})

    llm.register_function("free_tables", free_tables)
    context = OpenAILLMContext([{"role": "system", "content": "Booking line."}], tools=TOOLS)
    fakes.contexts.append(context)
    aggregator = llm.create_context_aggregator(context)
    pipeline = Pipeline(
        [
            transport.input(),
            make_stt(kinds[0], fakes),
            aggregator.user(),
            llm,
            make_tts(kinds[1], fakes),
            transport.output(),
            aggregator.assistant(),
        ]
    )
    task = PipelineTask(
        pipeline, params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
    )

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: Any, client: Any) -> None:
        await task.cancel()

    await PipelineRunner(handle_sigint=False).run(task)


@asynccontextmanager
async def served(kinds: tuple[str, ...]) -> AsyncIterator[tuple[str, Fakes]]:
    async with AsyncExitStack() as stack:
        fakes = Fakes(
            openai=await stack.enter_async_context(
                FakeOpenAIServer(speech_secs_per_word=0.3, speech_chunk_delay=0.02)
            ),
            deepgram=await stack.enter_async_context(FakeDeepgramServer()),
            cartesia=await stack.enter_async_context(
                FakeCartesiaServer(secs_per_word=0.3, chunk_delay=0.02)
            ),
            elevenlabs=await stack.enter_async_context(
                FakeElevenLabsServer(secs_per_char=0.06, chunk_delay=0.02)
            ),
            gemini=await stack.enter_async_context(FakeGeminiServer()),
        )
        app = FastAPI()

        @app.websocket("/ws")
        async def endpoint(websocket: WebSocket) -> None:
            await websocket.accept()
            messages = websocket.iter_text()
            await messages.__anext__()  # "connected"
            start = json.loads(await messages.__anext__())["start"]
            try:
                await run_bot(kinds, fakes, websocket, start)
            finally:
                fakes.done.set()

        addr = await stack.enter_async_context(running_server(app))
        yield f"ws://{addr}/ws", fakes


@pytest.mark.parametrize(
    ("stt", "tts", "llm"),
    [
        *((stt, tts, "openai") for stt in ("deepgram", "openai") for tts in TTS),
        ("deepgram", "cartesia", "gemini"),
    ],
)
@virtual_time
async def test_tool_call_answer_and_barge_in(stt: str, tts: str, llm: str) -> None:
    async with served((stt, tts, llm)) as (url, fakes):
        if llm == "gemini":
            fakes.gemini.add_reply(function_calls=[{"name": "free_tables", "args": {"party": 2}}])
            fakes.gemini.add_reply(ANSWER)
            fakes.gemini.add_reply("Sure.")
        else:
            fakes.openai.add_chat_reply(
                tool_calls=[{"name": "free_tables", "arguments": {"party": 2}}]
            )
            fakes.openai.add_chat_reply(ANSWER)
            fakes.openai.add_chat_reply("Sure.")
        fakes.deepgram.transcripts.extend([REQUEST, "stop please"])
        fakes.openai.transcripts.extend([REQUEST, "stop please"])
        async with SimulatedCall(url, "twilio") as call:
            await call.pause(0.5)
            await call.say(REQUEST)
            assert await call.wait_for_bot_speech(timeout=15), "no answer"
            await call.pause(2.5)  # the answer is playing (its first sentence is 1.2 s)
            await call.say("Stop please", wait=False)
            clear = await call.wait_for_event("clear", timeout=5)
            assert clear is not None, "barge-in produced no clear"
            # The short reply to "stop please" comes after the caller's turn was transcribed
            # (a segmented STT transcribes only after the VAD stop): wait for its request.
            requests = fakes.gemini.requests if llm == "gemini" else fakes.openai.chat_requests
            for _ in range(150):
                if len(requests) >= 3:
                    break
                await asyncio.sleep(0.1)
            assert len(requests) == 3, "the caller's barge-in never reached the LLM"
            assert await call.wait_for_bot_turn(timeout=15, quiet_secs=0.6)
            await call.hang_up()
            result = call.result()
        await asyncio.wait_for(fakes.done.wait(), 10)

    assert fakes.tool_calls == [{"party": 2}]
    [context] = fakes.contexts
    roles = [m["role"] for m in context.messages]
    expected = ["system", "user", "assistant", "tool", "assistant", "user", "assistant"]
    assert roles == expected, context.messages
    assert context.messages[1]["content"] == REQUEST
    assert json.loads(context.messages[3]["content"]) == {"window": 1, "garden": 2}
    cut = context.messages[4]
    assert cut.get("interrupted") is True and ANSWER.startswith(cut["content"].rstrip("."))
    assert context.messages[5]["content"] == "stop please"
    assert context.messages[6] == {"role": "assistant", "content": "Sure."}
    # Nothing of the cut answer was played after the clear.
    assert result.bot_speech_secs(clear.t + 0.2, clear.t + 0.6) < 0.05
