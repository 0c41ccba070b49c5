"""Pipecat 1.14 frames a bot pushes: a backchannel either way, committing the assistant's
text early, and turning prompt caching on or off; each one acted on, not only importable."""

from __future__ import annotations

import json
from typing import Any

from callpipe.frames.frames import (
    AggregatedTextFrame,
    BotBackchannelFrame,
    Frame,
    InterruptionFrame,
    LLMAssistantPushAggregationFrame,
    LLMEnablePromptCachingFrame,
    LLMFullResponseStartFrame,
    LLMMessagesFrame,
    TextFrame,
    TextType,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    UserBackchannelFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import (
    AssistantBackchannelMessage,
    LLMAssistantAggregator,
    LLMUserAggregator,
    UserBackchannelMessage,
)
from callpipe.services.anthropic.llm import AnthropicLLMService
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes import FakeAnthropicServer
from callpipe.testing.fakes.cartesia import FakeCartesiaServer
from callpipe.testing.pipeline import SleepFrame


def test_bot_backchannel_frame_is_an_uninterruptible_unsaved_speak_frame() -> None:
    frame = BotBackchannelFrame("Mm-hmm.")
    assert isinstance(frame, TTSSpeakFrame)
    assert frame.text_type == TextType.BACKCHANNEL
    assert frame.append_to_context is False and frame.interruptible is False
    frame.interruptible = True
    assert frame.interruptible is True
    assert BotBackchannelFrame("Right.", append_to_context=True).append_to_context is True
    assert TTSSpeakFrame("Hello.").interruptible is True


async def test_a_bot_backchannel_is_spoken_announced_and_kept_out_of_the_context() -> None:
    context = LLMContext([{"role": "user", "content": "so I was saying"}])
    heard: list[AssistantBackchannelMessage] = []
    async with FakeCartesiaServer(secs_per_word=0.01, chunk_secs=0.04) as server:
        tts = CartesiaTTSService(api_key="test-key", voice_id="v", url=server.url)
        assistant = LLMAssistantAggregator(context)
        assistant.add_event_handler(
            "on_assistant_backchannel", lambda agg, message: heard.append(message)
        )
        down, _ = await run_test(
            Pipeline([tts, assistant]), [BotBackchannelFrame("Mm-hmm."), SleepFrame(0.3)]
        )
        sent = [m["transcript"] for m in server.messages if "transcript" in m]
    assert "".join(sent).strip() == "Mm-hmm."
    assert any(isinstance(f, TTSAudioRawFrame) for f in down)
    assert [m.content for m in heard] == ["Mm-hmm."]
    announced = [f for f in down if type(f) is AggregatedTextFrame]
    assert [f.text_type for f in announced] == [TextType.BACKCHANNEL]
    assert context.messages == [{"role": "user", "content": "so I was saying"}]


async def test_a_caller_backchannel_is_reported_passed_on_and_starts_no_turn() -> None:
    context = LLMContext()
    user = LLMUserAggregator(context)
    heard: list[UserBackchannelMessage] = []
    user.add_event_handler("on_user_backchannel", lambda agg, message: heard.append(message))
    started: list[Any] = []
    user.add_event_handler("on_user_turn_started", lambda *args: started.append(args))
    frames: list[Frame] = [
        UserBackchannelFrame("mhm", user_id="caller", timestamp="2026-11-29T04:00:00Z"),
        UserBackchannelFrame("yeah"),
        SleepFrame(0.05),
    ]
    down, _ = await run_test(user, frames)
    assert [(m.content, m.user_id, m.timestamp) for m in heard[:1]] == [
        ("mhm", "caller", "2026-11-29T04:00:00Z")
    ]
    assert heard[1].content == "yeah" and heard[1].user_id is None and heard[1].timestamp
    assert sum(isinstance(f, UserBackchannelFrame) for f in down) == 2
    assert started == [] and context.messages == []


async def test_push_aggregation_frame_commits_the_reply_text_before_its_end() -> None:
    context = LLMContext()
    assistant = LLMAssistantAggregator(context)
    frames: list[Frame] = [
        LLMFullResponseStartFrame(),
        TextFrame("Your order ships today."),
        LLMAssistantPushAggregationFrame(),
    ]
    down, _ = await run_test(assistant, frames)
    assert context.messages == [{"role": "assistant", "content": "Your order ships today."}]
    assert not [f for f in down if isinstance(f, LLMAssistantPushAggregationFrame)]
    # Without it the text waits for the reply's end (or an interruption).
    waiting = LLMContext()
    await run_test(
        LLMAssistantAggregator(waiting), [LLMFullResponseStartFrame(), TextFrame("Still going")]
    )
    assert waiting.messages == []
    cut = LLMContext()
    await run_test(
        LLMAssistantAggregator(cut),
        [LLMFullResponseStartFrame(), TextFrame("Cut off"), InterruptionFrame()],
    )
    assert [m["content"] for m in cut.messages] == ["Cut off"]


def _cached(body: dict[str, Any]) -> bool:
    return "cache_control" in json.dumps(body)


async def test_prompt_caching_frame_switches_anthropic_caching() -> None:
    ask: list[Frame] = [
        LLMMessagesFrame(
            [{"role": "system", "content": "You book tables."}, {"role": "user", "content": "hi"}]
        )
    ]
    async with FakeAnthropicServer() as fake:
        for _ in range(3):
            fake.add_reply("Hello.")
        llm = AnthropicLLMService(api_key="test-key", base_url=fake.base_url)
        frames = [
            *ask,
            LLMEnablePromptCachingFrame(enable=True),
            *ask,
            LLMEnablePromptCachingFrame(enable=False),
            *ask,
        ]
        down, _ = await run_test(llm, frames)
        requests = list(fake.requests)
    assert [_cached(body) for body in requests] == [False, True, False]
    # The service consumed the frames it acted on.
    assert not [f for f in down if isinstance(f, LLMEnablePromptCachingFrame)]


async def test_a_service_without_prompt_caching_passes_the_frame_on() -> None:
    async with FakeCartesiaServer() as server:
        tts = CartesiaTTSService(api_key="test-key", voice_id="v", url=server.url)
        down, _ = await run_test(tts, [LLMEnablePromptCachingFrame(enable=True)])
    assert [f.enable for f in down if isinstance(f, LLMEnablePromptCachingFrame)] == [True]


async def test_full_response_aggregator_reports_each_response() -> None:
    from callpipe.frames.frames import LLMFullResponseEndFrame, LLMTextFrame
    from callpipe.processors.aggregators.llm_response import LLMFullResponseAggregator

    aggregator = LLMFullResponseAggregator()
    done: list[tuple[str, bool]] = []

    @aggregator.event_handler("on_completion")
    async def on_completion(agg: LLMFullResponseAggregator, text: str, completed: bool) -> None:
        done.append((text, completed))

    frames: list[Frame] = [
        LLMTextFrame("stray"),  # outside a response: not collected
        LLMFullResponseStartFrame(),
        LLMTextFrame("Open "),
        LLMTextFrame("till nine."),
        LLMFullResponseEndFrame(),
        SleepFrame(0.05),
        InterruptionFrame(),  # nothing running: nothing reported
        LLMFullResponseStartFrame(),
        LLMTextFrame("We also"),
        SleepFrame(0.05),
        InterruptionFrame(),
    ]
    down, _ = await run_test(aggregator, frames)
    assert done == [("Open till nine.", True), ("We also", False)]
    assert sum(isinstance(f, LLMTextFrame) for f in down) == 4  # every frame passes on
