"""User and assistant context aggregators: turn ends, heard text, interruptions, latency."""

from __future__ import annotations

from callpipe.frames.frames import (
    BotInterruptedFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMessagesAppendFrame,
    LLMRunFrame,
    MetricsFrame,
    TextFrame,
    TranscriptionFrame,
    TTSTextFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.metrics.metrics import TurnLatencyMetricsData
from callpipe.metrics.registry import TURN_LATENCY
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.llm_response import (
    LLMAssistantContextAggregator,
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
    LLMUserContextAggregator,
)
from callpipe.processors.aggregators.openai_llm_context import (
    OpenAILLMContext,
    OpenAILLMContextFrame,
)
from callpipe.processors.frame_processor import FrameDirection
from callpipe.testing import run_test
from callpipe.testing.pipeline import SleepFrame

from ..services.helpers import run_then


def context_frames(frames: list[object]) -> list[OpenAILLMContextFrame]:
    return [f for f in frames if isinstance(f, OpenAILLMContextFrame)]


def user(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text, user_id="caller", timestamp="")


async def test_turn_ends_with_vad_stop_and_final_transcript() -> None:
    context = OpenAILLMContext([{"role": "system", "content": "sys"}])
    aggregator = LLMUserContextAggregator(context)
    frames = [
        UserStartedSpeakingFrame(),
        InterimTranscriptionFrame("Hel", user_id="c", timestamp=""),
        user("Hello"),
        user("world."),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.05),
    ]
    down, _ = await run_test(aggregator, frames)
    assert len(context_frames(down)) == 1
    assert context.messages[-1] == {"role": "user", "content": "Hello world."}
    # Transcripts are consumed, not passed on to be spoken by the TTS.
    assert not [f for f in down if isinstance(f, TextFrame)]
    assert any(isinstance(f, UserStoppedSpeakingFrame) for f in down)


async def test_final_transcript_after_vad_stop_ends_the_turn() -> None:
    context = OpenAILLMContext()
    frames = [
        UserStartedSpeakingFrame(),
        InterimTranscriptionFrame("book a fli", user_id="c", timestamp=""),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.05),
        user("Book a flight."),
        SleepFrame(0.05),
    ]
    aggregator = LLMUserContextAggregator(
        context, params=LLMUserAggregatorParams(aggregation_timeout=5)
    )
    down, _ = await run_test(aggregator, frames)
    assert len(context_frames(down)) == 1
    assert context.messages == [{"role": "user", "content": "Book a flight."}]


async def test_missing_final_falls_back_to_the_interim() -> None:
    context = OpenAILLMContext()
    frames = [
        UserStartedSpeakingFrame(),
        InterimTranscriptionFrame("cancel my order", user_id="c", timestamp=""),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.2),
    ]
    aggregator = LLMUserContextAggregator(
        context, params=LLMUserAggregatorParams(aggregation_timeout=0.05)
    )
    down, _ = await run_test(aggregator, frames)
    assert context.messages == [{"role": "user", "content": "cancel my order"}]
    assert len(context_frames(down)) == 1


async def test_speaking_again_continues_the_same_turn() -> None:
    context = OpenAILLMContext()
    frames = [
        UserStartedSpeakingFrame(),
        UserStoppedSpeakingFrame(),
        UserStartedSpeakingFrame(),
        user("I want"),
        user("a refund"),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.05),
    ]
    down, _ = await run_test(LLMUserContextAggregator(context), frames)
    assert context.messages == [{"role": "user", "content": "I want a refund"}]
    assert len(context_frames(down)) == 1


async def test_without_vad_transcripts_end_the_turn_after_a_pause() -> None:
    context = OpenAILLMContext()
    aggregator = LLMUserContextAggregator(
        context, params=LLMUserAggregatorParams(aggregation_timeout=0.05)
    )
    down, _ = await run_test(aggregator, [user("Hi"), user("there"), SleepFrame(0.2)])
    assert context.messages == [{"role": "user", "content": "Hi there"}]
    assert len(context_frames(down)) == 1


async def test_empty_turn_runs_nothing() -> None:
    context = OpenAILLMContext()
    aggregator = LLMUserContextAggregator(
        context, params=LLMUserAggregatorParams(aggregation_timeout=0.02)
    )
    frames = [UserStartedSpeakingFrame(), user("  "), UserStoppedSpeakingFrame(), SleepFrame(0.1)]
    down, _ = await run_test(aggregator, frames)
    assert context.messages == [] and not context_frames(down)


async def test_transcripts_survive_an_interruption() -> None:
    context = OpenAILLMContext()
    frames = [
        UserStartedSpeakingFrame(),
        user("Stop"),
        InterruptionFrame(),
        user("please"),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.05),
    ]
    # Transcripts are uninterruptible frames: the caller's own words survive a barge-in.
    await run_then(LLMUserContextAggregator(context), frames, [], when=lambda out: True)
    assert context.messages == [{"role": "user", "content": "Stop please"}]


async def test_context_frame_messages_and_run_frames() -> None:
    context = OpenAILLMContext([{"role": "system", "content": "sys"}])
    aggregator = LLMUserContextAggregator(context)
    frames = [
        aggregator.get_context_frame(),
        LLMMessagesAppendFrame([{"role": "user", "content": "appended"}], run_llm=False),
        LLMMessagesAppendFrame([{"role": "user", "content": "and run"}], run_llm=True),
        LLMRunFrame(),
    ]
    down, _ = await run_test(aggregator, frames)
    assert len(context_frames(down)) == 3
    assert all(f.context is context for f in context_frames(down))
    assert [m["content"] for m in context.messages] == ["sys", "appended", "and run"]


async def test_assistant_records_spoken_reply() -> None:
    context = OpenAILLMContext()
    frames = [
        LLMFullResponseStartFrame(),
        TTSTextFrame("Hello"),
        TTSTextFrame("there,"),
        TTSTextFrame("caller."),
        LLMFullResponseEndFrame(),
    ]
    down, _ = await run_test(LLMAssistantContextAggregator(context), frames)
    assert context.messages == [{"role": "assistant", "content": "Hello there, caller."}]
    assert sum(isinstance(f, TTSTextFrame) for f in down) == 3


async def test_interrupted_reply_keeps_only_what_was_heard() -> None:
    context = OpenAILLMContext()
    frames = [
        LLMFullResponseStartFrame(),
        TTSTextFrame("Your"),
        TTSTextFrame("balance"),
        SleepFrame(0.05),
        BotInterruptedFrame(heard_secs=0.6, heard_text="Your balance"),
        InterruptionFrame(),
    ]
    await run_test(LLMAssistantContextAggregator(context), frames)
    assert context.messages == [
        {"role": "assistant", "content": "Your balance", "interrupted": True}
    ]
    # Private keys are stripped for the provider.
    assert context.messages_for_api() == [{"role": "assistant", "content": "Your balance"}]


async def test_interruption_before_any_audio_adds_nothing() -> None:
    context = OpenAILLMContext()
    frames = [LLMFullResponseStartFrame(), InterruptionFrame()]
    await run_test(LLMAssistantContextAggregator(context), frames)
    assert context.messages == []


async def test_heard_text_is_used_when_no_text_frames_arrived() -> None:
    context = OpenAILLMContext()
    frames = [LLMFullResponseStartFrame(), BotInterruptedFrame(heard_secs=1.0, heard_text="Hi the")]
    await run_test(LLMAssistantContextAggregator(context), frames)
    assert context.messages == [{"role": "assistant", "content": "Hi the", "interrupted": True}]


async def test_pair_measures_turn_latency() -> None:
    context = OpenAILLMContext()
    pair = LLMContextAggregatorPair(context)
    before = sum(s.count for s in TURN_LATENCY.samples())
    frames = [
        UserStartedSpeakingFrame(),
        user("hello"),
        VADUserStoppedSpeakingFrame(stop_secs=0.8),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.1),
        BotStartedSpeakingFrame(),
        SleepFrame(0.02),
        BotStartedSpeakingFrame(),
    ]
    down, _ = await run_test(
        Pipeline([pair.user(), pair.assistant()]),
        frames,
        params=PipelineParams(enable_metrics=True),
    )
    data = [d for f in down if isinstance(f, MetricsFrame) for d in f.data]
    latencies = [d for d in data if isinstance(d, TurnLatencyMetricsData)]
    assert len(latencies) == 1  # the second BotStarted is not a new turn
    assert latencies[0].vad_stop_secs == 0.8
    # VAD stop + the 0.1 s gap. The gap is read when each frame is processed, not queued, so a
    # loaded machine can shorten it a little (processing of the stop lags its queuing).
    assert 0.8 + 0.05 <= latencies[0].value < 0.8 + 0.1 + 0.5
    assert sum(s.count for s in TURN_LATENCY.samples()) == before + 1
    assert context.messages == [{"role": "user", "content": "hello"}]


async def test_queued_heard_text_and_the_cut_report_make_one_message() -> None:
    """The transport's cut report overtakes released text still queued: still one message."""
    context = OpenAILLMContext()
    aggregator = LLMAssistantContextAggregator(context)
    aggregator._queue.extend(
        [
            (TTSTextFrame("Your"), FrameDirection.DOWNSTREAM),
            (TTSTextFrame("balance"), FrameDirection.DOWNSTREAM),
        ]
    )
    await aggregator.process_frame(
        BotInterruptedFrame(heard_secs=0.5, heard_text="Your balance"), FrameDirection.DOWNSTREAM
    )
    await aggregator.process_frame(InterruptionFrame(), FrameDirection.DOWNSTREAM)
    assert context.messages == [
        {"role": "assistant", "content": "Your balance", "interrupted": True}
    ]


async def test_words_played_after_the_reply_end_join_the_same_message() -> None:
    """The transport passes the reply's end on before its last words were played."""
    context = OpenAILLMContext()
    frames = [
        LLMFullResponseStartFrame(),
        TTSTextFrame("Hello!"),
        LLMFullResponseEndFrame(),
        TTSTextFrame("How"),
        TTSTextFrame("are"),
        TTSTextFrame("you?"),
        UserStartedSpeakingFrame(),
        LLMFullResponseStartFrame(),
        TTSTextFrame("Next."),
        LLMFullResponseEndFrame(),
    ]
    await run_test(LLMAssistantContextAggregator(context), frames)
    assert context.messages == [
        {"role": "assistant", "content": "Hello! How are you?"},
        {"role": "assistant", "content": "Next."},
    ]


async def test_cut_after_the_reply_end_marks_the_message_interrupted() -> None:
    context = OpenAILLMContext()
    frames = [
        LLMFullResponseStartFrame(),
        TTSTextFrame("One"),
        LLMFullResponseEndFrame(),
        TTSTextFrame("two"),
        SleepFrame(0.05),
        BotInterruptedFrame(heard_secs=1.0, heard_text="One two"),
        InterruptionFrame(),
    ]
    await run_test(LLMAssistantContextAggregator(context), frames)
    assert context.messages == [{"role": "assistant", "content": "One two", "interrupted": True}]


async def test_caller_speaking_after_a_played_reply_is_not_a_cut() -> None:
    context = OpenAILLMContext()
    frames = [
        LLMFullResponseStartFrame(),
        BotStartedSpeakingFrame(),
        TTSTextFrame("All"),
        TTSTextFrame("done."),
        LLMFullResponseEndFrame(),
        SleepFrame(0.05),
        BotStoppedSpeakingFrame(),
        InterruptionFrame(),
    ]
    await run_test(LLMAssistantContextAggregator(context), frames)
    assert context.messages == [{"role": "assistant", "content": "All done."}]
