"""Context summarization end to end: the assistant aggregator asks the LLM service upstream of
it (OpenAI or Gemini against their fakes) and applies the summary it sends back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMSummarizeContextFrame,
    LLMTextFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.task import PipelineTask
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_context_summarizer import (
    LLMContextSummarizer,
    SummaryAppliedEvent,
)
from callpipe.processors.aggregators.llm_response_universal import (
    LLMAssistantAggregator,
    LLMAssistantAggregatorParams,
    LLMAutoContextSummarizationConfig,
    LLMContextSummarizationConfig,
    LLMContextSummaryConfig,
)
from callpipe.services.google.llm import GoogleLLMService
from callpipe.services.llm_service import LLMService
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.testing.fakes import FakeGeminiServer
from callpipe.testing.fakes.openai import FakeOpenAIServer

SUMMARY = "Ann (order 42) asked where her parcel is; lookup_order said it shipped on Monday."


@pytest.fixture
async def openai() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        yield fake


async def wait_until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


def support_call() -> list[dict[str, Any]]:
    """A support call so far: two tool calls with their results."""
    return [
        {"role": "system", "content": "You are the support line of a shop."},
        {"role": "user", "content": "Hi, this is Ann, my order number is 42."},
        {"role": "assistant", "content": "Let me look that up."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "lookup_order", "arguments": '{"order": 42}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"status": "shipped Monday"}'},
        {"role": "assistant", "content": "It shipped on Monday."},
        {"role": "user", "content": "And my refund for the broken mug?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "refund_status", "arguments": '{"order": 42}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c2", "content": '{"refund": "pending"}'},
    ]


class Call:
    """LLM service → assistant aggregator, running; the test plays the bot's turns."""

    def __init__(
        self, llm: LLMService, context: LLMContext, params: LLMAssistantAggregatorParams
    ) -> None:
        self.llm = llm
        self.context = context
        self.assistant = LLMAssistantAggregator(context, params=params)
        self.applied: list[SummaryAppliedEvent] = []
        self.turns = 0
        self.assistant.add_event_handler("on_summary_applied", self._on_applied)
        self.assistant.add_event_handler("on_assistant_turn_stopped", self._on_turn_stopped)
        self.task = PipelineTask(Pipeline([llm, self.assistant]), idle_timeout_secs=None)
        self._runner: asyncio.Task[None] | None = None

    def _on_applied(
        self, assistant: object, summarizer: LLMContextSummarizer, event: SummaryAppliedEvent
    ) -> None:
        assert summarizer is self.assistant.summarizer
        self.applied.append(event)

    def _on_turn_stopped(self, assistant: object, message: object) -> None:
        self.turns += 1

    async def __aenter__(self) -> Call:
        self._runner = asyncio.get_running_loop().create_task(self.task.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.task.queue_frame(EndFrame())
        assert self._runner is not None
        await self._runner

    async def send(self, *frames: Frame) -> None:
        for frame in frames:
            await self.task.queue_frame(frame)

    async def bot_says(self, text: str) -> None:
        """One assistant turn as the output transport reports it: the reply, then playback."""
        await self.send(LLMFullResponseStartFrame(), LLMTextFrame(text), LLMFullResponseEndFrame())
        await wait_until(lambda: self.last_content() == text)
        turns = self.turns
        await self.send(BotStartedSpeakingFrame(), BotStoppedSpeakingFrame())
        # The summary check runs right after the turn's event, in the same step.
        await wait_until(lambda: self.turns > turns)

    async def llm_turn(self, user_text: str) -> None:
        """The caller says something and the LLM answers (the fake echoes it)."""
        self.context.add_message({"role": "user", "content": user_text})
        await self.send(LLMContextFrame(context=self.context))
        await wait_until(lambda: self.last_content() == f"You said: {user_text}")

    async def summary_applied(self, count: int = 1) -> None:
        await wait_until(lambda: len(self.applied) >= count)

    def last_content(self) -> Any:
        last = self.context.messages[-1]
        return last.get("content") if isinstance(last, dict) else None


def summary_requests(fake: FakeOpenAIServer) -> list[dict[str, Any]]:
    return [
        body
        for body in fake.chat_requests
        if "Conversation history:" in str(body["messages"][-1].get("content"))
    ]


def auto(**config: Any) -> LLMAssistantAggregatorParams:
    return LLMAssistantAggregatorParams(
        enable_auto_context_summarization=True,
        auto_context_summarization_config=LLMAutoContextSummarizationConfig(**config),
    )


def openai_llm(fake: FakeOpenAIServer) -> OpenAILLMService:
    return OpenAILLMService(api_key="test-key", base_url=fake.base_url, model="fake-model")


class GatedOpenAILLMService(OpenAILLMService):
    """Writes summaries only once the test opens the gate (turns stream as usual)."""

    def __init__(self, fake: FakeOpenAIServer) -> None:
        super().__init__(api_key="test-key", base_url=fake.base_url, model="fake-model")
        self.gate = asyncio.Event()
        self.inferences = 0

    async def run_inference(self, context: Any, *args: Any, **kwargs: Any) -> str | None:
        self.inferences += 1
        await self.gate.wait()
        return await super().run_inference(context, *args, **kwargs)


async def test_auto_summary_keeps_system_recent_messages_and_tool_pairs(
    openai: FakeOpenAIServer,
) -> None:
    messages = support_call()
    context = LLMContext(list(messages))
    params = auto(
        max_context_tokens=None,
        max_unsummarized_messages=9,
        summary_config=LLMContextSummaryConfig(min_messages_after_summary=2),
    )
    openai.add_chat_reply(SUMMARY)
    async with Call(openai_llm(openai), context, params) as call:
        await call.bot_says("Your refund is still pending.")
        await call.summary_applied()
        reply = context.messages[-1]

        # Keeping the last two would split c2 from its result: the summary stops before it.
        assert context.messages == [
            messages[0],
            {"role": "user", "content": f"Conversation summary: {SUMMARY}"},
            messages[7],
            messages[8],
            reply,
        ]
        assert context.messages[2] is messages[7] and context.messages[3] is messages[8]
        [event] = call.applied
        assert (event.original_message_count, event.new_message_count) == (10, 5)
        assert (event.summarized_message_count, event.preserved_message_count) == (6, 4)

        [request] = summary_requests(openai)
        assert request["messages"][0]["role"] == "system"  # the summarization prompt
        assert request["max_tokens"] == 6000
        transcript = request["messages"][1]["content"]
        assert "USER: Hi, this is Ann, my order number is 42." in transcript
        assert 'TOOL_CALL: lookup_order({"order": 42})' in transcript
        assert 'TOOL_RESULT[c1]: {"status": "shipped Monday"}' in transcript
        assert "refund_status" not in transcript

        # The next turn is sent with the summary in place of the old messages.
        await call.llm_turn("Thanks, that is all.")
        sent = openai.chat_requests[-1]["messages"]
        assert sent[0] == {"role": "system", "content": "You are the support line of a shop."}
        assert sent[1] == {"role": "user", "content": f"Conversation summary: {SUMMARY}"}
        assert len(sent) == 6 and '"status": "shipped Monday"' not in str(sent)
        assert sent[-1] == {"role": "user", "content": "Thanks, that is all."}


async def test_token_threshold_triggers_and_message_count_restarts(
    openai: FakeOpenAIServer,
) -> None:
    system = {"role": "system", "content": "Be brief."}
    long_turns = [
        {"role": "user" if n % 2 == 0 else "assistant", "content": "x" * 400} for n in range(6)
    ]
    context = LLMContext([system, *long_turns])  # ~6 * (100 + 10) tokens
    params = auto(max_context_tokens=600, max_unsummarized_messages=None)
    openai.add_chat_reply("short")
    async with Call(openai_llm(openai), context, params) as call:
        await call.bot_says("ok")
        await call.summary_applied()
        assert [m["content"] for m in context.messages] == [  # type: ignore[index]
            "Be brief.",
            "Conversation summary: short",
            *("x" * 400 for _ in range(3)),
            "ok",
        ]
        assert call.assistant.summarizer.messages_since_summary() == 4
        # Now below the limit: the next turn asks for nothing.
        await call.bot_says("fine")
        assert not call.assistant.summarizer.summarization_in_progress
    assert len(summary_requests(openai)) == 1


async def test_below_the_thresholds_nothing_is_summarized_until_they_are_reached(
    openai: FakeOpenAIServer,
) -> None:
    context = LLMContext([{"role": "system", "content": "Be brief."}])
    params = auto(max_context_tokens=None, max_unsummarized_messages=6)
    async with Call(openai_llm(openai), context, params) as call:
        await call.llm_turn("hello")  # 2 messages since the start
        await call.bot_says("Anything else?")  # 3
        assert not call.assistant.summarizer.summarization_in_progress
        assert summary_requests(openai) == []
        await call.llm_turn("hello again")  # 5
        openai.add_chat_reply("They said hello twice.")
        await call.bot_says("Anything else?")  # 6: the threshold
        await call.summary_applied()
    assert len(summary_requests(openai)) == 1
    assert context.messages[1] == {
        "role": "user",
        "content": "Conversation summary: They said hello twice.",
    }


async def test_off_by_default_but_the_frame_summarizes_on_demand(
    openai: FakeOpenAIServer,
) -> None:
    context = LLMContext([{"role": "system", "content": "You are the support line of a shop."}])
    for n in range(30):  # well past the default thresholds (20 messages)
        context.add_message({"role": "user" if n % 2 == 0 else "assistant", "content": f"{n}"})
    async with Call(openai_llm(openai), context, LLMAssistantAggregatorParams()) as call:
        await call.bot_says("Anything else?")
        assert not call.assistant.summarizer.summarization_in_progress
        await call.llm_turn("no")
        assert summary_requests(openai) == [] and call.applied == []

        openai.add_chat_reply("Whatever happened.")
        keep = LLMContextSummaryConfig(
            min_messages_after_summary=1, summary_message_template="<summary>{summary}</summary>"
        )
        await call.send(LLMSummarizeContextFrame(config=keep))
        await call.summary_applied()
    assert [m.get("content") for m in context.messages] == [  # type: ignore[union-attr]
        "You are the support line of a shop.",
        "<summary>Whatever happened.</summary>",
        "You said: no",
    ]


async def test_a_failed_summary_leaves_the_context_and_a_warning(
    openai: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    messages = support_call()
    context = LLMContext(list(messages))
    params = auto(max_context_tokens=None, max_unsummarized_messages=5)
    openai.add_chat_reply(status=500, error_message="model overloaded")
    caplog.set_level(logging.WARNING)
    async with Call(openai_llm(openai), context, params) as call:
        await call.bot_says("Your refund is pending.")
        await wait_until(lambda: not call.assistant.summarizer.summarization_in_progress)
        before = list(context.messages)
        assert before[:9] == messages and len(before) == 10
        assert all(a is b for a, b in zip(before, messages, strict=False))
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert any("model overloaded" in r.getMessage() for r in warnings)
        assert any("left as it was" in r.getMessage() for r in warnings)

        # The failure released the summarizer: the next turn past the threshold summarizes.
        openai.add_chat_reply(SUMMARY)
        await call.bot_says("Anything else?")
        await call.summary_applied()
    assert len(summary_requests(openai)) == 2
    assert context.messages[1]["content"] == f"Conversation summary: {SUMMARY}"  # type: ignore[index]


async def test_messages_added_while_the_summary_is_made_are_kept(
    openai: FakeOpenAIServer,
) -> None:
    messages = support_call()
    context = LLMContext(list(messages))
    params = auto(
        max_context_tokens=None,
        max_unsummarized_messages=5,
        summary_config=LLMContextSummaryConfig(min_messages_after_summary=2),
    )
    llm = GatedOpenAILLMService(openai)
    async with Call(llm, context, params) as call:
        await call.bot_says("Your refund is pending.")
        await wait_until(lambda: llm.inferences == 1)
        # The call goes on while the summary is being made: a whole turn and another
        # assistant turn past the threshold, which starts no second summary.
        await call.llm_turn("Can you email me that?")
        await call.bot_says("Sure, it is on its way.")
        assert call.applied == [] and llm.inferences == 1
        openai.add_chat_reply(SUMMARY)  # the turn above was answered first
        llm.gate.set()
        await call.summary_applied()
    assert len(summary_requests(openai)) == 1
    assert [m.get("content") for m in context.messages[1:]] == [  # type: ignore[union-attr]
        f"Conversation summary: {SUMMARY}",
        None,  # the refund_status call and its result
        '{"refund": "pending"}',
        "Your refund is pending.",
        "Can you email me that?",
        "You said: Can you email me that?",
        "Sure, it is on its way.",
    ]
    assert context.messages[2] is messages[7] and context.messages[3] is messages[8]


async def test_a_summary_of_replaced_messages_is_dropped(openai: FakeOpenAIServer) -> None:
    context = LLMContext(support_call())
    params = auto(max_context_tokens=None, max_unsummarized_messages=5)
    openai.add_chat_reply(SUMMARY)
    llm = GatedOpenAILLMService(openai)
    async with Call(llm, context, params) as call:
        await call.bot_says("Your refund is pending.")
        await wait_until(lambda: llm.inferences == 1)
        # As many messages as before (the indexes still fit), but other ones.
        fresh = [{"role": "system", "content": "New topic."}]
        fresh += [
            {"role": "user", "content": f"line {n}"} for n in range(len(context.messages) - 1)
        ]
        context.set_messages(list(fresh))
        llm.gate.set()
        await wait_until(lambda: not call.assistant.summarizer.summarization_in_progress)
    assert context.messages == fresh and call.applied == []
    assert len(summary_requests(openai)) == 1


async def test_gemini_writes_the_summary() -> None:
    async with FakeGeminiServer() as gemini:
        gemini.add_reply("Ann asked about order 42.")
        llm = GoogleLLMService(api_key="test-key", base_url=gemini.base_url)
        messages = support_call()
        context = LLMContext(list(messages))
        async with Call(llm, context, LLMAssistantAggregatorParams()) as call:
            await call.send(LLMSummarizeContextFrame())
            await call.summary_applied()
        assert gemini.paths[-1].endswith(":generateContent")
        assert "Conversation history:" in gemini.requests[-1]["contents"][0]["parts"][0]["text"]
        # Default: the last four kept; c1's pair is summarized, c2's kept whole.
        assert context.messages == [
            messages[0],
            {"role": "user", "content": "Conversation summary: Ann asked about order 42."},
            *messages[5:],
        ]


async def test_deprecated_parameters_still_turn_it_on(openai: FakeOpenAIServer) -> None:
    with pytest.warns(DeprecationWarning):
        old = LLMContextSummarizationConfig(
            max_context_tokens=None, max_unsummarized_messages=5, min_messages_after_summary=2
        )
    with pytest.warns(DeprecationWarning):
        params = LLMAssistantAggregatorParams(
            enable_context_summarization=True, context_summarization_config=old
        )
    assert params.enable_auto_context_summarization
    assert params.enable_context_summarization is None
    assert params.context_summarization_config is None
    config = params.auto_context_summarization_config
    assert config is not None and config.max_unsummarized_messages == 5
    context = LLMContext(support_call())
    openai.add_chat_reply(SUMMARY)
    async with Call(openai_llm(openai), context, params) as call:
        await call.bot_says("Your refund is pending.")
        await call.summary_applied()
    assert len(context.messages) == 5  # system, summary, c2 call + result, the reply


async def test_a_separate_llm_writes_the_summary(openai: FakeOpenAIServer) -> None:
    async with FakeOpenAIServer() as cheap:
        cheap.add_chat_reply("Written by the cheap model.")
        summary_llm = OpenAILLMService(api_key="test-key", base_url=cheap.base_url, model="mini")
        params = auto(
            max_context_tokens=None,
            max_unsummarized_messages=5,
            summary_config=LLMContextSummaryConfig(llm=summary_llm),
        )
        context = LLMContext(support_call())
        async with Call(openai_llm(openai), context, params) as call:
            await call.bot_says("Your refund is pending.")
            await call.summary_applied()
        await summary_llm.cleanup()
        assert summary_requests(openai) == [] and len(cheap.chat_requests) == 1
        assert context.messages[1]["content"] == (  # type: ignore[index]
            "Conversation summary: Written by the cheap model."
        )
