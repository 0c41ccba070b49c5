"""IVRNavigator between a user aggregator and an output transport, with a scripted LLM.

The LLM is callpipe's OpenAI service talking to the fake OpenAI server on loopback; the
transport is a ``BaseOutputTransport`` that records the keys it is asked to press.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from callpipe.audio.vad.vad_analyzer import VADParams
from callpipe.extensions.ivr import IVRNavigator, IVRProcessor, IVRStatus
from callpipe.frames.frames import (
    Frame,
    LLMMessagesAppendFrame,
    LLMTextFrame,
    VADParamsUpdateFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.testing.fakes.openai import FakeOpenAIServer
from callpipe.testing.pipeline import SleepFrame, run_test
from callpipe.transports.base_output import BaseOutputTransport
from callpipe.transports.base_transport import TransportParams

MENU = "Thank you for calling Acme. For sales, press 1. For billing, press 2."


class KeypadOutput(BaseOutputTransport):
    """An output transport whose provider API presses keys (recorded, in order)."""

    def __init__(self) -> None:
        super().__init__(TransportParams(audio_out_enabled=True, audio_out_sample_rate=8000))
        self.pressed: list[str] = []

    async def write_audio_chunk(self, chunk: bytes) -> bool:
        return True

    async def write_dtmf(self, digits: str) -> bool:
        self.pressed.append(digits)
        return True


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        yield fake


class Call:
    """A navigator wired as in a bot, and what it reported."""

    def __init__(self, server: FakeOpenAIServer, **kwargs: Any) -> None:
        self.server = server
        llm = OpenAILLMService(api_key="test-key", base_url=server.base_url, model="fake-model")
        self.context = LLMContext([{"role": "system", "content": "You are Acme's bot."}])
        self.user = LLMContextAggregatorPair(self.context).user()
        self.navigator = IVRNavigator(llm=llm, ivr_prompt="Reach billing.", **kwargs)
        self.output = KeypadOutput()
        self.statuses: list[IVRStatus] = []
        self.conversations: list[list[Any]] = []

        @self.navigator.event_handler("on_ivr_status_changed")
        async def on_status(processor: IVRProcessor, status: IVRStatus) -> None:
            self.statuses.append(status)

        @self.navigator.event_handler("on_conversation_detected")
        async def on_conversation(processor: IVRProcessor, history: list[Any]) -> None:
            self.conversations.append(history)

    async def hears(self, *turns: tuple[str, int]) -> tuple[list[Frame], list[Frame]]:
        """Each ``(text, requests)`` is a caller turn, then a wait until the LLM has been asked
        ``requests`` times in all and its last reply has gone through."""
        pipeline = Pipeline([self.user, self.navigator, self.output])
        frames: list[Frame] = [SleepFrame(0.05)]  # the classifier prompt is put in place
        for text, requests in turns:
            frames += [
                LLMMessagesAppendFrame([{"role": "user", "content": text}], run_llm=True),
                SleepFrame(3.0, until=self._asked(requests)),
                SleepFrame(0.1),
            ]
        return await run_test(pipeline, frames)

    def _asked(self, requests: int) -> Callable[[], bool]:
        return lambda: len(self.server.chat_requests) >= requests

    def system_prompts(self) -> list[str]:
        """The system prompt of each LLM request, in order."""
        return [r["messages"][0]["content"] for r in self.server.chat_requests]


def spoken(frames: list[Frame]) -> str:
    return "".join(f.text for f in frames if isinstance(f, LLMTextFrame))


async def test_a_menu_is_detected_and_the_chosen_key_reaches_the_transport(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply("<mode>ivr</mode>")
    server.add_chat_reply("<dtmf>2</dtmf>")
    call = Call(server, ivr_vad_params=VADParams(stop_secs=1.5))
    down, up = await call.hears((MENU, 2))

    assert call.output.pressed == ["2"]
    assert call.statuses == [IVRStatus.DETECTED] and call.conversations == []
    classifier, navigation = call.system_prompts()
    assert classifier == IVRNavigator.CLASSIFIER_PROMPT
    assert "Reach billing." in navigation and "<dtmf>" in navigation
    # The navigation run sees the menu heard during classification, not the bot's own prompt.
    assert server.chat_requests[1]["messages"][1:] == [{"role": "user", "content": MENU}]
    assert [f.params.stop_secs for f in up if isinstance(f, VADParamsUpdateFrame)] == [1.5]
    assert call.context.messages[-1] == {"role": "assistant", "content": "<dtmf>2</dtmf>"}
    assert spoken(down) == ""  # tags are never spoken


async def test_a_person_answering_fires_conversation_detected_with_the_history(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply("<mode>conversation</mode>")
    call = Call(server)
    down, up = await call.hears(("Hi, this is Dana at Acme, how can I help?", 1))

    assert call.conversations == [
        [{"role": "user", "content": "Hi, this is Dana at Acme, how can I help?"}]
    ]
    assert call.statuses == [] and call.output.pressed == []
    assert call.navigator.ivr_processor.mode == "conversation"
    assert not any(isinstance(f, VADParamsUpdateFrame) for f in up)
    assert len(server.chat_requests) == 1 and spoken(down) == ""


async def test_wait_then_keys_then_completed_through_a_two_level_menu(
    server: FakeOpenAIServer,
) -> None:
    server.add_chat_reply("<mode>ivr</mode>")
    server.add_chat_reply("<ivr>wait</ivr>")
    server.add_chat_reply("<dtmf>2</dtmf>")
    server.add_chat_reply("<dtmf>4</dtmf><dtmf>2</dtmf><dtmf>#</dtmf>")
    server.add_chat_reply("<ivr>completed</ivr>")
    call = Call(server)
    await call.hears(
        ("Welcome to Acme. For sales,", 2),
        ("press 1. For billing, press 2.", 3),
        ("Enter your account number followed by pound.", 4),
        ("Thank you. Please hold while I transfer you to billing.", 5),
    )

    assert call.output.pressed == ["2", "4", "2", "#"]
    assert call.statuses == [IVRStatus.DETECTED, IVRStatus.COMPLETED]
    said = [
        m["content"]
        for m in call.context.messages
        if isinstance(m, dict) and m["role"] == "assistant"
    ]
    assert said == [
        "<ivr>wait</ivr>",
        "<dtmf>2</dtmf>",
        "<dtmf>4</dtmf><dtmf>2</dtmf><dtmf>#</dtmf>",
        "<ivr>completed</ivr>",
    ]


async def test_a_classifier_reply_without_a_tag_is_not_spoken_and_the_next_turn_retries(
    server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.add_chat_reply("Hello! I think this is probably a phone menu.")
    server.add_chat_reply("<mode>ivr</mode>")
    server.add_chat_reply("<ivr>wait</ivr>")
    call = Call(server)
    with caplog.at_level(logging.WARNING, logger="callpipe.extensions.ivr"):
        down, _ = await call.hears(("Thank you for calling.", 1), ("For sales, press 1.", 3))

    assert spoken(down) == ""
    assert call.system_prompts()[:2] == [IVRNavigator.CLASSIFIER_PROMPT] * 2
    assert call.statuses == [IVRStatus.DETECTED]
    assert "no <mode> tag" in caplog.text
