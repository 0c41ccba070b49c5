"""The assistant aggregators and the 1.14 text frames: what reaches the context and what not."""

from __future__ import annotations

from typing import Any

from callpipe.frames.frames import (
    AggregatedTextFrame,
    BotInterruptedFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EagerTranscriptionFrame,
    Frame,
    InputTextRawFrame,
    InterruptionFrame,
    LLMContextAssistantTurnFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMarkerFrame,
    LLMThoughtEndFrame,
    LLMThoughtStartFrame,
    LLMThoughtTextFrame,
    TranslationFrame,
    TTSTextFrame,
)
from callpipe.processors.aggregators.llm_context import LLMContext, LLMSpecificMessage
from callpipe.processors.aggregators.llm_response import LLMAssistantContextAggregator
from callpipe.processors.aggregators.llm_response_universal import (
    AssistantThoughtMessage,
    AssistantTurnStoppedMessage,
    LLMAssistantAggregator,
)
from callpipe.processors.aggregators.openai_llm_context import OpenAILLMContext
from callpipe.testing import run_test
from callpipe.testing.pipeline import SleepFrame


def unspoken(text: str) -> AggregatedTextFrame:
    """A sentence the TTS passed on without speaking it."""
    frame = AggregatedTextFrame(text)
    frame.skip_tts = True
    return frame


def not_for_context(text: str) -> TTSTextFrame:
    frame = TTSTextFrame(text)
    frame.append_to_context = False
    return frame


def reply(*frames: Frame) -> list[Frame]:
    return [LLMFullResponseStartFrame(), *frames, LLMFullResponseEndFrame()]


async def test_text_kept_out_of_the_context_still_flows_on() -> None:
    context = OpenAILLMContext()
    frames = [
        *reply(not_for_context("Please"), not_for_context("hold.")),
        *reply(TTSTextFrame("Found"), TTSTextFrame("it.")),
    ]
    down, _ = await run_test(LLMAssistantContextAggregator(context), frames)
    assert context.messages == [{"role": "assistant", "content": "Found it."}]
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == [
        "Please",
        "hold.",
        "Found",
        "it.",
    ]


async def test_the_callers_text_frames_are_never_the_assistants() -> None:
    context = OpenAILLMContext()
    frames = reply(
        TranslationFrame("Hola", user_id="caller"),
        EagerTranscriptionFrame("maybe", user_id="caller"),
        InputTextRawFrame("typed"),
        TTSTextFrame("Hello."),
    )
    await run_test(LLMAssistantContextAggregator(context), frames)
    assert context.messages == [{"role": "assistant", "content": "Hello."}]


async def test_unspoken_text_is_written_with_the_spoken_words_around_it() -> None:
    context = OpenAILLMContext()
    frames = reply(
        BotStartedSpeakingFrame(),
        TTSTextFrame("Your"),
        TTSTextFrame("code"),
        TTSTextFrame("is:"),
        unspoken("4 8 1 5."),
        BotStoppedSpeakingFrame(),
    )
    await run_test(LLMAssistantContextAggregator(context), frames)
    assert context.messages == [{"role": "assistant", "content": "Your code is: 4 8 1 5."}]


async def test_a_pattern_match_is_written_with_its_delimiters() -> None:
    context = OpenAILLMContext()
    frame = AggregatedTextFrame("4815", text_type="spell", raw_text="<spell>4815</spell>")
    await run_test(LLMAssistantContextAggregator(context), reply(frame))
    assert context.messages == [{"role": "assistant", "content": "<spell>4815</spell>"}]


async def test_a_cut_after_unspoken_text_still_uses_the_heard_report() -> None:
    """Only unspoken text arrived when the caller cut in: the transport's report of the heard
    words still counts."""
    context = OpenAILLMContext()
    frames = [
        LLMFullResponseStartFrame(),
        unspoken("Note:"),
        SleepFrame(0.05),
        BotInterruptedFrame(heard_secs=0.6, heard_text="Your balance"),
        InterruptionFrame(),
    ]
    await run_test(LLMAssistantContextAggregator(context), frames)
    assert context.messages == [
        {"role": "assistant", "content": "Note: Your balance", "interrupted": True}
    ]


async def test_an_unspoken_reply_ends_its_turn_at_the_reply_end() -> None:
    context = LLMContext()
    assistant = LLMAssistantAggregator(context)
    reports: list[AssistantTurnStoppedMessage] = []
    assistant.add_event_handler("on_assistant_turn_stopped", lambda agg, msg: reports.append(msg))
    down, _ = await run_test(assistant, reply(unspoken("Noted."), unspoken("Thanks.")))
    assert context.messages == [{"role": "assistant", "content": "Noted. Thanks."}]
    assert [(r.content, r.interrupted) for r in reports] == [("Noted. Thanks.", False)]
    turns = [f.text for f in down if isinstance(f, LLMContextAssistantTurnFrame)]
    assert turns == ["Noted. Thanks."]


def thought(*, append: bool, llm: str | None = "anthropic") -> list[Frame]:
    text = [LLMThoughtTextFrame("Check "), LLMThoughtTextFrame("the order.")]
    return [
        LLMThoughtStartFrame(append_to_context=append, llm=llm),
        *text,
        LLMThoughtEndFrame(signature="sig"),
    ]


async def test_a_thought_is_kept_as_an_llm_specific_message_when_asked() -> None:
    context = LLMContext()
    assistant = LLMAssistantAggregator(context)
    thoughts: list[AssistantThoughtMessage] = []
    assistant.add_event_handler("on_assistant_thought", lambda agg, msg: thoughts.append(msg))
    frames = reply(
        *thought(append=True), BotStartedSpeakingFrame(), TTSTextFrame("Done."), SleepFrame(0.02)
    )
    down, _ = await run_test(assistant, [*frames, BotStoppedSpeakingFrame()])
    expected: dict[str, Any] = {"type": "thought", "text": "Check the order.", "signature": "sig"}
    assert context.messages == [
        LLMSpecificMessage(llm="anthropic", message=expected),
        {"role": "assistant", "content": "Done."},
    ]
    assert [t.content for t in thoughts] == ["Check the order."]
    assert thoughts[0].timestamp
    assert not any(isinstance(f, LLMThoughtTextFrame) for f in down)


async def test_a_thought_not_asked_for_stays_out_of_the_context() -> None:
    context = LLMContext()
    assistant = LLMAssistantAggregator(context)
    thoughts: list[AssistantThoughtMessage] = []
    assistant.add_event_handler("on_assistant_thought", lambda agg, msg: thoughts.append(msg))
    await run_test(assistant, reply(*thought(append=False, llm=None), TTSTextFrame("Done.")))
    assert context.messages == [{"role": "assistant", "content": "Done."}]
    assert [t.content for t in thoughts] == ["Check the order."]


async def test_the_old_context_gets_no_thought() -> None:
    context = OpenAILLMContext()
    await run_test(LLMAssistantContextAggregator(context), reply(*thought(append=True)))
    assert context.messages == []


async def test_a_marker_of_its_own_is_a_message() -> None:
    context = OpenAILLMContext()
    frames = [LLMMarkerFrame(marker="○"), *reply(TTSTextFrame("Take"), TTSTextFrame("your time."))]
    await run_test(LLMAssistantContextAggregator(context), frames)
    assert context.messages == [
        {"role": "assistant", "content": "○"},
        {"role": "assistant", "content": "Take your time."},
    ]


async def test_a_marker_prefixes_the_reply_and_is_left_out_of_the_report() -> None:
    context = LLMContext()
    assistant = LLMAssistantAggregator(context)
    reports: list[AssistantTurnStoppedMessage] = []
    assistant.add_event_handler("on_assistant_turn_stopped", lambda agg, msg: reports.append(msg))
    frames: list[Frame] = [
        LLMFullResponseStartFrame(),
        LLMMarkerFrame(marker="[done]", append_to_context_immediately=False),
        BotStartedSpeakingFrame(),
        TTSTextFrame("Sure."),
        LLMFullResponseEndFrame(),
        SleepFrame(0.02),
        BotStoppedSpeakingFrame(),
    ]
    down, _ = await run_test(assistant, frames)
    assert context.messages == [{"role": "assistant", "content": "[done] Sure."}]
    assert [r.content for r in reports] == ["Sure."]
    assert [f.text for f in down if isinstance(f, LLMContextAssistantTurnFrame)] == ["Sure."]
    assert not any(isinstance(f, LLMMarkerFrame) for f in down)
