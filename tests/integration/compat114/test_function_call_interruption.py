"""Barge-in while a function runs, on a real call (Silero VAD, eSpeak caller, provider fakes).

- Default (``cancel_on_interruption=True``): the caller's new turn cancels the running handler;
  the context keeps no half-finished tool call and the bot answers the new turn.
- With ``FunctionCallUserMuteStrategy``: the caller is not heard while the function runs; the
  handler finishes, its result goes back and the answer is spoken.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

pytest.importorskip("onnxruntime", reason="needs the silero extra")
pytest.importorskip("espeakng_loader", reason="needs the espeak extra")

from fastapi import WebSocket

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.frames.frames import LLMRunFrame
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.deepgram.stt import DeepgramSTTService
from callpipe.services.llm_service import FunctionCallParams
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.testing.fakes import FakeCartesiaServer, FakeDeepgramServer, FakeOpenAIServer
from callpipe.testing.virtual_calls import virtual_time
from callpipe.turns.user_mute import FunctionCallUserMuteStrategy

from ..call_bot import call_bot, phone_task, phone_transport, run_until_hangup, twilio_serializer

pytestmark = pytest.mark.integration

ORDER = FunctionSchema("order_status", "Status of the caller's order", {}, [])
TOOL_SECS = 3.0


@dataclass
class State:
    openai: FakeOpenAIServer
    deepgram: FakeDeepgramServer
    cartesia: FakeCartesiaServer
    mute: bool
    started: asyncio.Event = field(default_factory=asyncio.Event)
    outcome: list[str] = field(default_factory=list)
    contexts: list[LLMContext] = field(default_factory=list)


async def run_bot(websocket: WebSocket, start: dict[str, Any], state: State) -> None:
    transport = phone_transport(
        websocket, twilio_serializer(start), vad_analyzer=SileroVADAnalyzer()
    )
    stt = DeepgramSTTService(api_key="test-key", url=state.deepgram.url, encoding="mulaw")
    llm = OpenAILLMService(api_key="test-key", base_url=state.openai.base_url, model="m")
    tts = CartesiaTTSService(api_key="test-key", voice_id="v", url=state.cartesia.url)

    async def order_status(params: FunctionCallParams) -> None:
        state.started.set()
        try:
            await asyncio.sleep(TOOL_SECS)
        except asyncio.CancelledError:
            state.outcome.append("cancelled")
            raise
        state.outcome.append("finished")
        await params.result_callback({"status": "shipped"})

    llm.register_function("order_status", order_status)
    context = LLMContext([{"role": "system", "content": "Shop line."}], tools=[ORDER])
    state.contexts.append(context)
    mutes = [FunctionCallUserMuteStrategy()] if state.mute else []
    user, assistant = LLMContextAggregatorPair(
        context, user_params=LLMUserAggregatorParams(user_mute_strategies=mutes)
    )
    task = phone_task([transport.input(), stt, user, llm, tts, transport.output(), assistant])

    @transport.event_handler("on_client_connected")
    async def on_connected(transport: Any, client: Any) -> None:
        await task.queue_frames([LLMRunFrame()])

    await run_until_hangup(transport, task)


@asynccontextmanager
async def serve(mute: bool) -> AsyncIterator[State]:
    async with (
        FakeOpenAIServer() as openai,
        FakeDeepgramServer() as deepgram,
        FakeCartesiaServer(secs_per_word=0.2) as cartesia,
    ):
        state = State(openai, deepgram, cartesia, mute)
        state.openai.add_chat_reply("Hello, shop line.")
        state.openai.add_chat_reply(tool_calls=[{"name": "order_status", "arguments": {}}])
        state.openai.add_chat_reply("It has shipped.")
        state.deepgram.transcripts.extend(["Where is my order", "Never mind"])
        yield state


async def call_and_barge_in(state: State) -> float:
    async with call_bot(functools.partial(run_bot, state=state)) as call:
        assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.6)
        await call.say("Where is my order?")
        await asyncio.wait_for(state.started.wait(), 10)
        await call.say("Never mind.")  # while the function runs
        said_end = call.now()
        assert await call.wait_for_bot_speech(timeout=TOOL_SECS + 5)
        await call.wait_for_bot_silence(quiet_secs=0.6, timeout=10)
        await call.hang_up()
        result = call.result()
    return result.bot_speech_secs(said_end, result.duration)


@virtual_time
async def test_barge_in_cancels_the_running_function() -> None:
    async with serve(mute=False) as state:
        answered = await call_and_barge_in(state)
    assert state.outcome == ["cancelled"]
    requests = state.openai.chat_requests
    assert len(requests) == 3
    last = requests[2]["messages"]
    assert last[-1] == {"role": "user", "content": "Never mind"}
    # No half-finished call: every assistant tool_calls entry has its tool result.
    assert not any(m.get("tool_calls") for m in last)
    assert not any(m["role"] == "tool" for m in last)
    assert answered > 0.5


@virtual_time
async def test_muted_caller_lets_the_function_finish() -> None:
    async with serve(mute=True) as state:
        answered = await call_and_barge_in(state)
    assert state.outcome == ["finished"]
    requests = state.openai.chat_requests
    assert len(requests) == 3
    last = requests[2]["messages"]
    assert last[-1]["role"] == "tool" and json.loads(last[-1]["content"]) == {"status": "shipped"}
    assert {"role": "user", "content": "Never mind"} not in last
    assert answered > 0.5
