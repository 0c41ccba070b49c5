"""Eager end of turn end to end: Deepgram Flux (fake) predicts the end of the turn, the OpenAI
LLM service (fake server) answers it at once, and the reply reaches the caller only once the
turn is confirmed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.frames.frames import (
    EagerEndOfTurnCancelFrame,
    Frame,
    InputAudioRawFrame,
    LLMTextFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from callpipe.services.deepgram.flux.stt import DeepgramFluxSTTService
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.testing import run_test
from callpipe.testing.fakes.deepgram_flux import FakeDeepgramFluxServer
from callpipe.testing.fakes.openai import FakeOpenAIServer, tone_pcm
from callpipe.testing.pipeline import SleepFrame
from callpipe.turns.user_turn_strategies import EagerUserTurnStrategies

RATE = 8000
PARAMS = PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE)


@pytest.fixture
async def flux() -> AsyncIterator[FakeDeepgramFluxServer]:
    async with FakeDeepgramFluxServer() as fake:
        yield fake


@pytest.fixture
async def openai() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        yield fake


def audio(secs: float, *, loud: bool) -> list[Frame]:
    pcm = tone_pcm(secs, RATE) if loud else bytes(int(secs * RATE) * 2)
    step = RATE // 50 * 2
    return [InputAudioRawFrame(pcm[i : i + step], RATE) for i in range(0, len(pcm), step)]


def until(check: Any) -> SleepFrame:
    return SleepFrame(5.0, until=check)


async def call(
    flux: FakeDeepgramFluxServer,
    openai: FakeOpenAIServer,
    frames: list[Frame],
    *,
    recommended: bool = False,
) -> tuple[LLMContext, list[Frame]]:
    """``recommended``: the bot sets no strategies and takes the ones Flux recommends."""
    context = LLMContext()
    strategies = None if recommended else EagerUserTurnStrategies()
    user, assistant = LLMContextAggregatorPair(
        context, user_params=LLMUserAggregatorParams(user_turn_strategies=strategies)
    )
    stt = DeepgramFluxSTTService(api_key="test-key", url=flux.url, enable_eager_end_of_turn=True)
    llm = OpenAILLMService(api_key="test-key", base_url=openai.base_url, model="fake-model")
    down, _ = await run_test(Pipeline([stt, user, llm, assistant]), frames, params=PARAMS)
    return context, down


def spoken(down: list[Frame]) -> str:
    return "".join(f.text for f in down if isinstance(f, LLMTextFrame))


async def test_a_confirmed_prediction_is_answered_by_the_request_started_early(
    flux: FakeDeepgramFluxServer, openai: FakeOpenAIServer
) -> None:
    flux.transcripts.append("book a table for two")
    openai.add_chat_reply("For what time?")
    frames = [
        *audio(0.6, loud=True),
        *audio(0.2, loud=False),  # EagerEndOfTurn...
        until(lambda: len(openai.chat_requests) == 1),  # ...and the LLM is already asked
        *audio(0.4, loud=False),  # then EndOfTurn, same words
        until(lambda: bool(flux.events("EndOfTurn"))),
        SleepFrame(0.5),
    ]
    context, down = await call(flux, openai, frames)
    assert flux.events("EagerEndOfTurn") and not flux.events("TurnResumed")
    # The request went out on the prediction, before the end of turn, and was the only one.
    assert len(openai.chat_requests) == 1
    assert openai.chat_requests[0]["messages"][-1]["content"] == "book a table for two"
    stop = next(i for i, f in enumerate(down) if isinstance(f, UserStoppedSpeakingFrame))
    first = next(i for i, f in enumerate(down) if isinstance(f, LLMTextFrame))
    assert stop < first
    assert spoken(down).strip() == "For what time?"
    assert context.messages == [
        {"role": "user", "content": "book a table for two"},
        {"role": "assistant", "content": "For what time?"},
    ]


async def test_a_resumed_turn_cancels_the_early_request_and_says_nothing_of_it(
    flux: FakeDeepgramFluxServer, openai: FakeOpenAIServer
) -> None:
    flux.transcripts.append("book a table for two")
    openai.add_chat_reply("Early answer that nobody hears", first_chunk_delay=1.0)
    openai.add_chat_reply("For what time?")
    frames = [
        *audio(0.6, loud=True),
        *audio(0.2, loud=False),  # EagerEndOfTurn
        until(lambda: len(openai.chat_requests) == 1),
        *audio(0.4, loud=True),  # TurnResumed: the caller goes on
        until(lambda: openai.cancelled_streams == 1),
        *audio(0.5, loud=False),
        until(lambda: bool(flux.events("EndOfTurn"))),
        until(lambda: len(openai.chat_requests) == 2),
        SleepFrame(0.5),
    ]
    # Flux with enable_eager_end_of_turn recommends the eager strategies itself.
    context, down = await call(flux, openai, frames, recommended=True)
    assert flux.events("TurnResumed")
    assert openai.cancelled_streams == 1
    assert any(isinstance(f, EagerEndOfTurnCancelFrame) for f in down)
    assert "nobody" not in spoken(down)
    assert spoken(down).strip() == "For what time?"
    assert [m["role"] for m in context.messages] == ["user", "assistant"]
    assert context.messages[1] == {"role": "assistant", "content": "For what time?"}
