"""The 1.14 aggregator pair: events, mute strategies, barge-in gating, idle, context frames."""

from __future__ import annotations

import asyncio
from typing import Any

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.audio.vad.vad_analyzer import VADAnalyzer, VADParams
from callpipe.frames.frames import (
    BotInterruptedFrame,
    BotInterruptionFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    FunctionCallFromLLM,
    FunctionCallResultFrame,
    FunctionCallsStartedFrame,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMContextAssistantTurnFrame,
    LLMContextFrame,
    LLMContextUserTurnFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMessagesUpdateFrame,
    LLMSetToolChoiceFrame,
    LLMSetToolsFrame,
    TranscriptionFrame,
    TTSTextFrame,
    UserIdleTimeoutUpdateFrame,
    UserMuteStartedFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import (
    AssistantTurnStoppedMessage,
    LLMAssistantAggregator,
    LLMContextAggregatorPair,
    LLMUserAggregator,
    LLMUserAggregatorParams,
    UserTurnStoppedMessage,
)
from callpipe.testing import run_test
from callpipe.testing.pipeline import SleepFrame
from callpipe.turns.user_mute import FirstSpeechUserMuteStrategy, FunctionCallUserMuteStrategy
from callpipe.turns.user_start import MinWordsUserTurnStartStrategy
from callpipe.turns.user_turn_strategies import UserTurnStrategies

PARAMS = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)


def said(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text, user_id="caller", timestamp="")


def turn(text: str) -> list[Any]:
    return [UserStartedSpeakingFrame(), said(text), UserStoppedSpeakingFrame()]


async def test_pair_unpacks_and_user_turn_events_fire() -> None:
    context = LLMContext([{"role": "system", "content": "sys"}])
    user, assistant = LLMContextAggregatorPair(context)
    assert isinstance(user, LLMUserAggregator) and isinstance(assistant, LLMAssistantAggregator)
    stopped: list[UserTurnStoppedMessage] = []
    started: list[object] = []

    @user.event_handler("on_user_turn_started")
    async def on_started(aggregator: object, strategy: object) -> None:
        started.append(strategy)

    @user.event_handler("on_user_turn_stopped")
    async def on_stopped(
        aggregator: object, strategy: object, message: UserTurnStoppedMessage
    ) -> None:
        stopped.append(message)

    down, up = await run_test(user, turn("Hello there."))
    for frames in (down, up):
        [turn_frame] = [f for f in frames if isinstance(f, LLMContextUserTurnFrame)]
        assert turn_frame.text == "Hello there."
    assert len(started) == 1
    assert [m.content for m in stopped] == ["Hello there."]
    frames = [f for f in down if isinstance(f, LLMContextFrame)]
    assert len(frames) == 1 and frames[0].context is context
    assert context.messages[-1] == {"role": "user", "content": "Hello there."}


async def test_context_frames_update_tools_and_messages() -> None:
    context = LLMContext()
    user = LLMUserAggregator(context)
    schema = FunctionSchema("f", "d", {}, [])
    down, _ = await run_test(
        user,
        [
            LLMSetToolsFrame(tools=[schema]),
            LLMSetToolChoiceFrame(tool_choice="required"),
            LLMMessagesUpdateFrame(messages=[{"role": "system", "content": "new"}], run_llm=True),
        ],
    )
    assert context.function_schemas() == [schema]
    assert context.tool_choice == "required"
    assert context.messages == [{"role": "system", "content": "new"}]
    assert len([f for f in down if isinstance(f, LLMContextFrame)]) == 1


async def test_first_speech_mute_holds_barge_in_and_drops_speech() -> None:
    context = LLMContext()
    user = LLMUserAggregator(
        context,
        params=LLMUserAggregatorParams(user_mute_strategies=[FirstSpeechUserMuteStrategy()]),
    )
    muted: list[str] = []
    user.add_event_handler("on_user_mute_started", lambda agg: muted.append("on"))
    user.add_event_handler("on_user_mute_stopped", lambda agg: muted.append("off"))
    frames = [
        BotStartedSpeakingFrame(),
        UserStartedSpeakingFrame(),
        InterruptionFrame(),
        said("stop talking"),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.05),
        BotStoppedSpeakingFrame(),
        *turn("now I can talk"),
    ]
    down, up = await run_test(user, frames)
    assert muted == ["on", "off"]
    assert not [f for f in down if isinstance(f, InterruptionFrame)]
    assert any(isinstance(f, UserMuteStartedFrame) for f in up)
    assert [m["content"] for m in context.messages] == ["now I can talk"]  # type: ignore[index]


async def test_function_call_mute_lasts_until_the_result() -> None:
    context = LLMContext()
    user = LLMUserAggregator(
        context,
        params=LLMUserAggregatorParams(user_mute_strategies=[FunctionCallUserMuteStrategy()]),
    )
    call = FunctionCallFromLLM("f", "id1", {}, context)
    frames = [
        FunctionCallsStartedFrame(function_calls=[call]),
        *turn("ignored while the tool runs"),
        FunctionCallResultFrame(function_name="f", tool_call_id="id1", result="r"),
        SleepFrame(0.05),
        *turn("heard again"),
    ]
    await run_test(user, frames)
    assert [m["content"] for m in context.messages] == ["heard again"]  # type: ignore[index]


async def test_min_words_holds_a_short_barge_in_and_releases_a_long_one() -> None:
    context = LLMContext()
    strategies = UserTurnStrategies(start=[MinWordsUserTurnStartStrategy(min_words=3)])
    user = LLMUserAggregator(
        context, params=LLMUserAggregatorParams(user_turn_strategies=strategies)
    )
    frames = [
        BotStartedSpeakingFrame(),
        UserStartedSpeakingFrame(),
        InterruptionFrame(),
        said("uh-huh"),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.7),
        UserStartedSpeakingFrame(),
        InterruptionFrame(),
        said("wait please stop"),
        SleepFrame(0.05),
        InterruptionFrame(),  # what the transport sends after the BotInterruptionFrame
        UserStoppedSpeakingFrame(),
    ]
    down, up = await run_test(user, frames)
    assert len([f for f in up if isinstance(f, BotInterruptionFrame)]) == 1
    assert len([f for f in down if isinstance(f, InterruptionFrame)]) == 1
    assert [m["content"] for m in context.messages] == ["wait please stop"]  # type: ignore[index]


async def test_assistant_turn_stopped_reports_heard_part_when_interrupted() -> None:
    context = LLMContext()
    assistant = LLMAssistantAggregator(context)
    reports: list[AssistantTurnStoppedMessage] = []
    assistant.add_event_handler("on_assistant_turn_stopped", lambda agg, msg: reports.append(msg))
    frames = [
        LLMFullResponseStartFrame(),
        BotStartedSpeakingFrame(),
        TTSTextFrame("The"),
        TTSTextFrame("opening"),
        SleepFrame(0.05),
        BotInterruptedFrame(heard_secs=0.6, heard_text=None),
        BotStoppedSpeakingFrame(),
        InterruptionFrame(),
        LLMFullResponseStartFrame(),
        BotStartedSpeakingFrame(),
        TTSTextFrame("Sure."),
        LLMFullResponseEndFrame(),
        SleepFrame(0.05),
        BotStoppedSpeakingFrame(),
    ]
    down, _ = await run_test(assistant, frames)
    texts = [f.text for f in down if isinstance(f, LLMContextAssistantTurnFrame)]
    assert texts == ["The opening", "Sure."]
    assert [(r.content, r.interrupted) for r in reports] == [
        ("The opening", True),
        ("Sure.", False),
    ]
    assert context.messages[0] == {
        "role": "assistant",
        "content": "The opening",
        "interrupted": True,
    }
    assert context.messages_for_api()[0] == {"role": "assistant", "content": "The opening"}


async def test_idle_fires_after_bot_stopped_not_before() -> None:
    context = LLMContext()
    user = LLMUserAggregator(context, params=LLMUserAggregatorParams(user_idle_timeout=0.2))
    fired: list[float] = []
    loop = asyncio.get_running_loop()
    user.add_event_handler("on_user_turn_idle", lambda agg: fired.append(loop.time()))
    t0 = loop.time()
    frames = [
        BotStartedSpeakingFrame(),
        SleepFrame(0.4),  # the bot is playing: no idle however long it plays
        BotStoppedSpeakingFrame(),
        SleepFrame(0.35),
        UserIdleTimeoutUpdateFrame(timeout=0),
        BotStartedSpeakingFrame(),
        BotStoppedSpeakingFrame(),
        SleepFrame(0.3),  # disabled now
    ]
    await run_test(user, frames)
    assert len(fired) == 1
    assert fired[0] - t0 >= 0.6


class ScriptedVAD(VADAnalyzer):
    """Loud audio (first sample != 0) is speech; the real state machine does the rest."""

    def num_frames_required(self) -> int:
        return 160

    def voice_confidence(self, buffer: bytes) -> float:
        return 1.0 if buffer[:2] != b"\x00\x00" else 0.0


def audio(loud: bool, secs: float) -> list[InputAudioRawFrame]:
    chunk = (b"\x10\x27" if loud else b"\x00\x00") * 160  # 20 ms at 8 kHz
    return [InputAudioRawFrame(chunk, 8000, 1) for _ in range(int(secs / 0.02))]


async def test_vad_in_the_aggregator_starts_turns_and_asks_for_barge_in() -> None:
    context = LLMContext()
    vad = ScriptedVAD(params=VADParams(start_secs=0.1, stop_secs=0.2, min_volume=0.0))
    user = LLMUserAggregator(context, params=LLMUserAggregatorParams(vad_analyzer=vad))
    frames: list[Any] = [
        BotStartedSpeakingFrame(),
        *audio(False, 0.2),
        *audio(True, 0.4),
        said("hello there"),
        *audio(False, 0.5),
    ]
    down, up = await run_test(user, frames, params=PARAMS)
    assert [
        type(f) for f in up if isinstance(f, UserStartedSpeakingFrame | BotInterruptionFrame)
    ] == [
        UserStartedSpeakingFrame,
        BotInterruptionFrame,
    ]
    assert any(isinstance(f, UserStoppedSpeakingFrame) for f in up)
    assert any(isinstance(f, UserStartedSpeakingFrame) for f in down)
    assert context.messages == [{"role": "user", "content": "hello there"}]
    assert len([f for f in down if isinstance(f, LLMContextFrame)]) == 1


async def test_older_context_works_with_the_new_pair() -> None:
    from callpipe.processors.aggregators.openai_llm_context import (
        OpenAILLMContext,
        OpenAILLMContextFrame,
    )

    context = OpenAILLMContext([{"role": "system", "content": "sys"}])
    user, _ = LLMContextAggregatorPair(context)
    schema = FunctionSchema("f", "d", {}, [])
    down, _ = await run_test(user, [LLMSetToolsFrame(tools=[schema]), *turn("hi")])
    assert context.function_schemas() == [schema]
    assert context.messages[-1] == {"role": "user", "content": "hi"}
    assert len([f for f in down if isinstance(f, OpenAILLMContextFrame)]) == 1
