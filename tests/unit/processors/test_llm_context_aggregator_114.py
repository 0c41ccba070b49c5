"""Pipecat 1.14's ``LLMContextAggregator`` surface on callpipe's aggregator pair: the shared
base and its context methods, tool-change messages, the function-call properties and the
events callpipe added for 1.14 (inference triggered, backchannels)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    AggregatedTextFrame,
    DataFrame,
    EagerTranscriptionFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallFromLLM,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    FunctionCallResultProperties,
    FunctionCallsStartedFrame,
    InterimTranscriptionFrame,
    LLMContextFrame,
    LLMMessagesTransformFrame,
    LLMSetToolsFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    TextType,
    TranscriptionFrame,
    TTSTextFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import (
    AssistantBackchannelMessage,
    LLMAssistantAggregator,
    LLMAssistantAggregatorParams,
    LLMContextAggregator,
    LLMContextAggregatorPair,
    LLMUserAggregator,
    LLMUserAggregatorParams,
    UserBackchannelMessage,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.testing import run_test
from callpipe.testing.pipeline import SleepFrame
from callpipe.testing.virtual_clock import run_virtual
from callpipe.turns.user_turn_strategies import (
    EagerUserTurnStopStrategy,
    EagerUserTurnStrategies,
    SpeechTimeoutUserTurnStopStrategy,
    UserTurnStrategies,
)
from callpipe.utils.types import NOT_GIVEN


def said(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text, user_id="caller", timestamp="")


def turn(text: str) -> list[Frame]:
    return [UserStartedSpeakingFrame(), said(text), UserStoppedSpeakingFrame(), SleepFrame(0.05)]


def schema(name: str) -> FunctionSchema:
    return FunctionSchema(name, f"does {name}", {}, [])


class Poke(DataFrame):
    """Runs ``Probe.callback`` when it reaches the probe (everything before it is processed)."""


class Probe(FrameProcessor):
    def __init__(self, callback: Callable[[], Awaitable[None]]) -> None:
        super().__init__()
        self.callback = callback

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, Poke):
            await self.callback()
            return
        await self.push_frame(frame, direction)


def run_steps(processor: FrameProcessor, steps: list[Frame]) -> tuple[list[Frame], list[Frame]]:
    """Send ``steps`` one at a time, each through the whole pipeline before the next (on
    virtual time, where a pause ends only once nothing else is left to run)."""
    frames = [item for step in steps for item in (step, SleepFrame(0.01))]
    return run_virtual(run_test(processor, frames))


def contexts_sent(down: list[Frame]) -> list[list[Any]]:
    """The messages of each LLM run (copied when the frame passed)."""
    return [list(f.context.messages) for f in down if isinstance(f, LLMContextFrame)]


# ---------------------------------------------------------------------- the shared base


def test_both_halves_derive_from_the_shared_base() -> None:
    context = LLMContext([{"role": "system", "content": "sys"}])
    user, assistant = LLMContextAggregatorPair(context)
    assert isinstance(user, LLMContextAggregator) and isinstance(assistant, LLMContextAggregator)
    assert isinstance(user, LLMUserAggregator) and isinstance(assistant, LLMAssistantAggregator)
    assert (user.role, assistant.role) == ("user", "assistant")
    assert user.context is context and assistant.context is context
    assert user.messages is context.messages
    assert assistant.messages == [{"role": "system", "content": "sys"}]


async def test_messages_added_directly_are_in_the_next_llm_run() -> None:
    context = LLMContext([{"role": "system", "content": "sys"}])
    user, assistant = LLMContextAggregatorPair(context)
    user.add_messages([{"role": "system", "content": "The caller is Ann."}])
    assistant.add_messages([{"role": "assistant", "content": "Hi Ann."}])
    down, _ = await run_test(user, turn("Hello."))
    [sent] = contexts_sent(down)
    assert sent == [
        {"role": "system", "content": "sys"},
        {"role": "system", "content": "The caller is Ann."},
        {"role": "assistant", "content": "Hi Ann."},
        {"role": "user", "content": "Hello."},
    ]


async def test_set_and_transform_messages_replace_what_the_llm_sees() -> None:
    context = LLMContext([{"role": "system", "content": "old"}, {"role": "user", "content": "x"}])
    user, assistant = LLMContextAggregatorPair(context)
    messages = context.messages
    user.set_messages([{"role": "system", "content": "new"}])
    assert context.messages is messages  # replaced in place: the shared list stays shared
    assistant.transform_messages(
        lambda ms: [*ms, {"role": "system", "content": f"{len(ms)} message(s) before"}]
    )
    down, _ = await run_test(user, turn("Go on."))
    [sent] = contexts_sent(down)
    assert sent == [
        {"role": "system", "content": "new"},
        {"role": "system", "content": "1 message(s) before"},
        {"role": "user", "content": "Go on."},
    ]


async def test_transform_frame_goes_through_the_same_method() -> None:
    context = LLMContext([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    user = LLMUserAggregator(context)
    frame = LLMMessagesTransformFrame(transform=lambda ms: ms[1:], run_llm=True)
    down, _ = await run_test(user, [frame])
    assert contexts_sent(down) == [[{"role": "user", "content": "b"}]]


def test_set_tools_and_tool_choice_change_the_shared_context() -> None:
    context = LLMContext()
    user, assistant = LLMContextAggregatorPair(context, add_tool_change_messages=True)
    user.set_tools([schema("book")])
    assert [s.name for s in context.function_schemas()] == ["book"]
    assistant.set_tool_choice("required")
    assert context.tool_choice == "required"
    assistant.set_tools(None)
    assert context.tools is NOT_GIVEN
    # As in 1.14 the methods only set; the announcements come with an LLMSetToolsFrame.
    assert context.messages == []


def test_aggregation_string_reset_and_push_aggregation_on_the_user_side() -> None:
    context = LLMContext()
    user = LLMUserAggregator(context)
    seen: list[str] = []

    async def peek() -> None:
        seen.append(user.aggregation_string())

    async def drop() -> None:
        await user.reset()
        seen.append(user.aggregation_string())

    async def flush() -> None:
        seen.append(await user.push_aggregation())

    async def flush_nothing() -> None:
        seen.append(await user.push_aggregation())

    callbacks = iter([peek, drop, peek, flush, flush_nothing])

    async def next_callback() -> None:
        await next(callbacks)()

    steps: list[Frame] = [
        UserStartedSpeakingFrame(),
        said("never"),
        said("mind"),
        Poke(),
        Poke(),
        said("book a"),
        said("table"),
        Poke(),
        Poke(),
        Poke(),
    ]
    down, _ = run_steps(Pipeline([user, Probe(next_callback)]), steps)
    assert seen == ["never mind", "", "book a table", "book a table", ""]
    assert context.messages == [{"role": "user", "content": "book a table"}]
    assert contexts_sent(down) == [[{"role": "user", "content": "book a table"}]]


def test_push_aggregation_on_the_assistant_side_writes_the_pending_text() -> None:
    context = LLMContext()
    assistant = LLMAssistantAggregator(context)
    seen: list[str] = []

    async def flush() -> None:
        seen.append(assistant.aggregation_string())
        seen.append(await assistant.push_aggregation())
        seen.append(assistant.aggregation_string())

    run_steps(
        Pipeline([assistant, Probe(flush)]), [TTSTextFrame("Your"), TTSTextFrame("table"), Poke()]
    )
    assert seen == ["Your table", "Your table", ""]
    assert context.messages == [{"role": "assistant", "content": "Your table"}]


# ---------------------------------------------------------------------- tool-change messages


def system_texts(context: LLMContext) -> list[str]:
    return [m["content"] for m in context.messages if m["role"] == "system"]  # type: ignore[index]


async def test_set_tools_frames_announce_the_functions_added_and_removed() -> None:
    context = LLMContext()
    user, assistant = LLMContextAggregatorPair(context, add_tool_change_messages=True)
    frames: list[Frame] = [
        LLMSetToolsFrame(tools=[schema("book"), schema("cancel")]),
        LLMSetToolsFrame(tools=[schema("book"), schema("cancel")]),  # no change: no message
        LLMSetToolsFrame(tools=[schema("book"), schema("pay")]),
    ]
    # The user side applies each frame; the assistant side leaves frames going down to it.
    await run_test(Pipeline([user, assistant]), frames)
    assert [s.name for s in context.function_schemas()] == ["book", "pay"]
    first, second = system_texts(context)
    assert "`book`, `cancel`" in first and "removed" not in first
    assert "`pay`" in second and "`cancel`" in second and "`book`" not in second
    assert second.index("`pay`") < second.index("removed") < second.index("`cancel`")


def test_the_assistant_side_applies_a_frame_pushed_up_to_it() -> None:
    context = LLMContext(tools=[schema("book")])
    params = LLMAssistantAggregatorParams(add_tool_change_messages=True)
    assistant = LLMAssistantAggregator(context, params=params)

    async def push_up() -> None:
        await bouncer.push_frame(LLMSetToolsFrame(tools=[]), FrameDirection.UPSTREAM)

    bouncer = Probe(push_up)
    steps: list[Frame] = [LLMSetToolsFrame(tools=[schema("pay")]), Poke()]  # the first goes down
    down, up = run_steps(Pipeline([assistant, bouncer]), steps)
    assert any(isinstance(f, LLMSetToolsFrame) for f in down)
    assert context.tools is NOT_GIVEN
    [text] = system_texts(context)
    assert "`book`" in text and "removed" in text and "`pay`" not in text
    assert not any(isinstance(f, LLMSetToolsFrame) for f in up)  # consumed, as in 1.14


async def test_no_tool_change_messages_unless_asked() -> None:
    context = LLMContext()
    user = LLMUserAggregator(context, params=LLMUserAggregatorParams())
    await run_test(user, [LLMSetToolsFrame(tools=[schema("book")])])
    assert [s.name for s in context.function_schemas()] == ["book"]
    assert context.messages == []


def test_the_pair_argument_overrides_both_params() -> None:
    user_params = LLMUserAggregatorParams(add_tool_change_messages=True)
    assistant_params = LLMAssistantAggregatorParams(add_tool_change_messages=True)
    LLMContextAggregatorPair(
        LLMContext(),
        user_params=user_params,
        assistant_params=assistant_params,
        add_tool_change_messages=False,
    )
    assert not user_params.add_tool_change_messages
    assert not assistant_params.add_tool_change_messages


# ---------------------------------------------------------------------- function calls


def test_function_calls_in_progress_follow_the_call_frames() -> None:
    context = LLMContext()
    assistant = LLMAssistantAggregator(context)
    states: list[tuple[bool, bool]] = []

    async def record() -> None:
        states.append(
            (
                assistant.has_function_calls_in_progress,
                assistant.has_synchronous_function_calls_in_progress,
            )
        )

    def calls(*ids: str) -> FunctionCallsStartedFrame:
        return FunctionCallsStartedFrame(
            function_calls=[FunctionCallFromLLM("f", i, {}, context) for i in ids]
        )

    def running(call_id: str, *, sync: bool) -> FunctionCallInProgressFrame:
        return FunctionCallInProgressFrame(
            function_name="f", tool_call_id=call_id, cancel_on_interruption=sync
        )

    def result(call_id: str, *, final: bool = True) -> FunctionCallResultFrame:
        properties = FunctionCallResultProperties(is_final=final)
        return FunctionCallResultFrame(
            function_name="f", tool_call_id=call_id, result="ok", properties=properties
        )

    steps: list[Frame] = [
        Poke(),
        calls("a", "b"),
        Poke(),  # announced: both count as synchronous until their in-progress frames come
        running("a", sync=False),
        running("b", sync=True),
        Poke(),
        result("b"),
        Poke(),  # only the asynchronous one is left
        result("a", final=False),
        Poke(),  # an intermediate result leaves it running
        result("a"),
        Poke(),
        calls("c"),
        FunctionCallCancelFrame(function_name="f", tool_call_id="c"),
        running("c", sync=True),  # came after its cancel: not counted again
        Poke(),
    ]
    run_steps(Pipeline([assistant, Probe(record)]), steps)
    assert states == [
        (False, False),
        (True, True),
        (True, True),
        (True, False),
        (True, False),
        (False, False),
        (False, False),
    ]


# ---------------------------------------------------------------------- events


def test_the_114_events_can_be_subscribed_to() -> None:
    user, assistant = LLMContextAggregatorPair(LLMContext())
    for event in ("on_user_turn_inference_triggered", "on_user_backchannel"):
        user.event_handler(event)(lambda *args: None)
    assistant.event_handler("on_assistant_backchannel")(lambda *args: None)
    with pytest.raises(ConfigurationError):
        user.add_event_handler("on_user_backchannels", lambda *args: None)
    assert UserBackchannelMessage("mhm", "t").user_id is None
    assert AssistantBackchannelMessage("Mm-hmm.", "t").content == "Mm-hmm."


async def test_inference_triggered_fires_after_each_llm_run_with_the_stop_strategy() -> None:
    context = LLMContext()
    user = LLMUserAggregator(context)
    events: list[tuple[str, object]] = []
    user.add_event_handler(
        "on_user_turn_inference_triggered",
        lambda agg, strategy: events.append(("inference", strategy)),
    )
    user.add_event_handler(
        "on_user_turn_message_added", lambda agg, message: events.append(("added", message))
    )
    down, _ = await run_test(user, [*turn("First."), *turn("Second.")])
    assert len(contexts_sent(down)) == 2
    assert [name for name, _ in events] == ["added", "inference", "added", "inference"]
    stop = user.user_turn_strategies.stop
    assert stop is not None
    assert [arg for name, arg in events if name == "inference"] == [stop[0], stop[0]]


def test_inference_triggered_not_fired_for_a_turn_the_stop_timeout_ended() -> None:
    context = LLMContext()
    strategies = UserTurnStrategies(
        stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=30)]
    )
    params = LLMUserAggregatorParams(user_turn_strategies=strategies, user_turn_stop_timeout=2)
    user = LLMUserAggregator(context, params=params)
    events: list[str] = []
    user.add_event_handler(
        "on_user_turn_inference_triggered", lambda agg, strategy: events.append("inference")
    )
    user.add_event_handler("on_user_turn_stop_timeout", lambda agg: events.append("timeout"))
    frames: list[Frame] = [
        UserStartedSpeakingFrame(),
        InterimTranscriptionFrame("book a table", user_id="caller", timestamp=""),
        UserStoppedSpeakingFrame(),
        SleepFrame(5),
        *turn("for two"),
        SleepFrame(1),
    ]

    async def main() -> list[Frame]:
        down, _ = await run_test(user, frames)
        return down

    down = run_virtual(main())
    assert len(contexts_sent(down)) == 2  # both turns ran the LLM
    assert events == ["timeout", "inference"]


async def test_inference_triggered_fires_once_for_an_eager_turn_that_holds() -> None:
    context = LLMContext()
    strategies = EagerUserTurnStrategies()
    user = LLMUserAggregator(
        context, params=LLMUserAggregatorParams(user_turn_strategies=strategies)
    )
    fired: list[object] = []
    user.add_event_handler(
        "on_user_turn_inference_triggered", lambda agg, strategy: fired.append(strategy)
    )
    frames: list[Frame] = [
        ProposedUserStartedSpeakingFrame(),
        SleepFrame(0.05),
        EagerTranscriptionFrame("a table for two"),
        SleepFrame(0.05),
        said("a table for two"),
        ProposedUserStoppedSpeakingFrame(),
        SleepFrame(0.1),
    ]
    down, _ = await run_test(user, frames)
    runs = [f for f in down if isinstance(f, LLMContextFrame)]
    assert [f.speculation for f in runs] == [True]  # the confirmed turn is not run again
    assert len(fired) == 1 and isinstance(fired[0], EagerUserTurnStopStrategy)
    assert fired[0] is strategies.eager_strategy()
    assert context.messages == [{"role": "user", "content": "a table for two"}]


def spoken_piece(text: str, text_type: str) -> AggregatedTextFrame:
    """A piece as a TTS service lets it go ahead of its audio."""
    frame = AggregatedTextFrame(text, text_type=text_type)
    frame.will_be_spoken = True
    frame.append_to_context = False
    return frame


async def test_assistant_backchannel_fires_for_a_spoken_backchannel_piece() -> None:
    context = LLMContext()
    assistant = LLMAssistantAggregator(context)
    heard: list[AssistantBackchannelMessage] = []
    assistant.add_event_handler("on_assistant_backchannel", lambda agg, msg: heard.append(msg))
    unspoken = AggregatedTextFrame("Uh-huh.", text_type=TextType.BACKCHANNEL)
    frames: list[Frame] = [
        spoken_piece("Mm-hmm.", TextType.BACKCHANNEL),
        spoken_piece("A sentence.", TextType.SENTENCE),  # not a backchannel
        unspoken,  # not about to be spoken
        TTSTextFrame("Mm-hmm.", text_type=TextType.BACKCHANNEL),  # the spoken words: no repeat
    ]
    down, _ = await run_test(assistant, frames)
    assert [m.content for m in heard] == ["Mm-hmm."]
    assert heard[0].timestamp
    assert sum(isinstance(f, AggregatedTextFrame) for f in down) == 4  # all passed on
