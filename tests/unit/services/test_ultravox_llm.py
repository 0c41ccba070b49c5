"""UltravoxRealtimeLLMService against FakeUltravoxServer: speech to speech on a phone line."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema
from callpipe.frames.frames import (
    EndFrame,
    ErrorFrame,
    FatalErrorFrame,
    InputTextRawFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMServiceMetadataFrame,
    LLMTextFrame,
    LLMUpdateSettingsFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import LLMUserAggregator
from callpipe.services.llm_service import FunctionCallParams, FunctionCallResultProperties
from callpipe.services.ultravox.llm import (
    AgentInputParams,
    JoinUrlInputParams,
    OneShotInputParams,
    UltravoxRealtimeLLMService,
)
from callpipe.testing import run_test
from callpipe.testing.fakes.ultravox import FakeUltravoxServer, UltravoxReply
from callpipe.testing.pipeline import SleepFrame

from .helpers import interruption_at, of
from .speech_to_speech import PARAMS, RATE, audio


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeUltravoxServer]:
    async with FakeUltravoxServer() as fake:
        monkeypatch.setenv("CALLPIPE_ULTRAVOX_URL", fake.base_url)
        yield fake


def one_shot(**kwargs: Any) -> OneShotInputParams:
    return OneShotInputParams(api_key="test-key", **kwargs)


def until_sent(server: FakeUltravoxServer, kind: str, count: int = 1) -> SleepFrame:
    return SleepFrame(5.0, until=lambda: len(server.sent_of_type(kind)) >= count)


def agent_finals(server: FakeUltravoxServer) -> list[dict[str, Any]]:
    return [m for m in server.sent_of_type("transcript") if m["role"] == "agent" and m["final"]]


def until_replies(server: FakeUltravoxServer, count: int) -> SleepFrame:
    return SleepFrame(5.0, until=lambda: len(agent_finals(server)) >= count)


async def test_greeting_caller_turn_and_reply_on_a_phone_line(
    server: FakeUltravoxServer,
) -> None:
    server.replies += [UltravoxReply("Hello, how can I help?"), UltravoxReply("Sure, when?")]
    server.transcripts.append("I need a table")
    context = LLMContext()
    llm = UltravoxRealtimeLLMService(params=one_shot(system_prompt="You take bookings."))
    frames = [
        LLMContextFrame(context),
        until_replies(server, 1),
        *audio(0.3, loud=True),
        *audio(0.3, loud=False),
        until_replies(server, 2),
        SleepFrame(0.8),  # the user aggregator's wait for more of the caller's words
    ]
    down, up = await run_test(Pipeline([LLMUserAggregator(context), llm]), frames, params=PARAMS)

    body = server.calls[0]
    assert server.call_paths == ["/api/calls"]
    assert server.call_headers[0]["x-api-key"] == "test-key"
    assert body["systemPrompt"] == "You take bookings."
    assert body["maxDuration"] == "3600s"
    # The line's rate both ways: nothing resampled.
    rates = {"inputSampleRate": RATE, "outputSampleRate": RATE}
    assert body["medium"] == {"serverWebSocket": rates}
    assert "voice" not in body and "model" not in body  # left to Ultravox
    # The caller's PCM went out as binary messages, 40 ms at a time.
    sent = 2 * int(0.6 * RATE)
    assert sent - server.audio_bytes < 640 and server.audio_bytes % 640 == 0
    assert [m["content"] for m in context.messages if m["role"] == "user"] == ["I need a table"]
    out = of(down, TTSAudioRawFrame)
    assert {f.sample_rate for f in out} == {RATE}
    assert sum(len(f.audio) for f in out) == int(0.56 * RATE) * 2  # 7 words at 80 ms
    assert "".join(f.text for f in of(down, TTSTextFrame)) == "Hello, how can I help?Sure, when?"
    assert all(f.append_to_context is False for f in of(down, LLMTextFrame))
    assert len(of(down, TTSStartedFrame)) == len(of(down, TTSStoppedFrame)) == 2
    assert len(of(down, LLMFullResponseStartFrame)) == len(of(down, LLMFullResponseEndFrame)) == 2
    meta = of(down, LLMServiceMetadataFrame)[0]
    assert meta.is_realtime_service and meta.user_turn_strategies is None
    assert not of(up, ErrorFrame)


async def test_client_tool_round_trip(server: FakeUltravoxServer) -> None:
    server.replies += [
        UltravoxReply(tool_call=("get_weather", {"city": "Paris"})),
        UltravoxReply("It is sunny"),
    ]
    weather = FunctionSchema(
        "get_weather", "Weather", {"city": {"type": "string"}}, required=["city"]
    )
    llm = UltravoxRealtimeLLMService(
        params=one_shot(), one_shot_selected_tools=ToolsSchema(standard_tools=[weather])
    )
    calls: list[dict[str, Any]] = []

    async def get_weather(params: FunctionCallParams) -> None:
        calls.append(params.arguments)
        await params.result_callback({"sky": "sunny"})

    llm.register_function("get_weather", get_weather)
    context = LLMContext()
    frames = [LLMContextFrame(context), until_replies(server, 1)]
    down, up = await run_test(llm, frames, params=PARAMS)

    assert server.calls[0]["selectedTools"] == [
        {
            "temporaryTool": {
                "modelToolName": "get_weather",
                "description": "Weather",
                "dynamicParameters": [
                    {
                        "name": "city",
                        "location": "PARAMETER_LOCATION_BODY",
                        "schema": {"type": "string"},
                        "required": True,
                    }
                ],
                "client": {},
            }
        }
    ]
    assert calls == [{"city": "Paris"}]
    invocation = server.sent_of_type("client_tool_invocation")[0]
    assert server.of_type("client_tool_result") == [
        {
            "type": "client_tool_result",
            "invocationId": invocation["invocationId"],
            "result": '{"sky": "sunny"}',
        }
    ]
    assert [m["role"] for m in context.messages] == ["assistant", "tool"]
    assert "".join(f.text for f in of(down, TTSTextFrame)) == "It is sunny"
    assert not of(up, ErrorFrame)


async def test_a_result_that_does_not_run_the_model_lets_the_agent_listen(
    server: FakeUltravoxServer,
) -> None:
    server.greeting = None
    server.replies.append(UltravoxReply(tool_call=("note", {})))
    llm = UltravoxRealtimeLLMService(params=one_shot())

    async def note(params: FunctionCallParams) -> None:
        quiet = FunctionCallResultProperties(run_llm=False)
        await params.result_callback("noted", properties=quiet)

    llm.register_function("note", note)
    frames = [
        LLMContextFrame(LLMContext()),
        SleepFrame(5.0, until=lambda: bool(server.of_type("client_tool_result"))),
        SleepFrame(0.1),
    ]
    await run_test(llm, frames, params=PARAMS)
    result = server.of_type("client_tool_result")[0]
    assert result["agentReaction"] == "listens" and result["result"] == "noted"
    assert not agent_finals(server)  # the fake's agent stayed quiet, as Ultravox's would


async def test_playback_clear_buffer_interrupts_both_ways(server: FakeUltravoxServer) -> None:
    server.pace_secs = 0.01
    server.replies += [UltravoxReply("A long greeting", audio_ms=3000), UltravoxReply("Yes?")]
    server.transcripts.append("wait")
    context = LLMContext()
    llm = UltravoxRealtimeLLMService(params=one_shot())
    frames = [
        LLMContextFrame(context),
        SleepFrame(5.0, until=lambda: len(server.sent_of_type("transcript")) >= 2),
        *audio(0.1, loud=True),
        until_sent(server, "playback_clear_buffer"),
        *audio(0.3, loud=False),
        until_replies(server, 1),
        SleepFrame(0.05),
    ]
    down, up = await run_test(Pipeline([LLMUserAggregator(context), llm]), frames, params=PARAMS)

    assert of(up, InterruptionFrame)
    cut = interruption_at(down)
    # The greeting was cut (its response closed right after the interruption); the next
    # reply came whole after it.
    assert sum(len(f.audio) for f in of(down[:cut], TTSAudioRawFrame)) < 3 * RATE * 2
    assert not of(down[:cut], TTSStoppedFrame)
    ends = [i for i, f in enumerate(down) if isinstance(f, LLMFullResponseEndFrame)]
    starts = [i for i, f in enumerate(down) if isinstance(f, LLMFullResponseStartFrame)]
    assert starts[0] < cut < ends[0] < starts[1]
    after = down[cut:]
    assert sum(len(f.audio) for f in of(after, TTSAudioRawFrame)) == int(0.08 * RATE) * 2
    assert [f.text for f in of(after, TTSTextFrame)] == ["Yes?"]
    assert len(of(down, TTSStartedFrame)) == len(of(down, TTSStoppedFrame)) == 2
    assert not of(up, ErrorFrame)


async def test_rejected_key_is_fatal(server: FakeUltravoxServer) -> None:
    llm = UltravoxRealtimeLLMService(params=OneShotInputParams(api_key="wrong"))
    _, up = await run_test(llm, [SleepFrame(5)], params=PARAMS)
    fatal = of(up, FatalErrorFrame)
    assert len(fatal) == 1 and "HTTP 401" in fatal[0].error
    assert "Invalid API key" in fatal[0].error
    assert not server.calls and server.opened == 0


async def test_agent_call_and_join_url(server: FakeUltravoxServer) -> None:
    agent_id = uuid.uuid4()
    params = AgentInputParams(
        api_key="test-key",
        agent_id=agent_id,
        template_context={"name": "Ada"},
        output_medium="voice",
        extra={"firstSpeaker": "FIRST_SPEAKER_USER"},
    )
    frames = [SleepFrame(5.0, until=lambda: server.opened >= 1)]
    await run_test(UltravoxRealtimeLLMService(params=params), frames, params=PARAMS)
    assert server.call_paths == [f"/api/agents/{agent_id}/calls"]
    body = server.calls[0]
    assert body["templateContext"] == {"name": "Ada"}
    assert body["initialOutputMedium"] == "MESSAGE_MEDIUM_VOICE"
    assert body["firstSpeaker"] == "FIRST_SPEAKER_USER"
    assert "maxDuration" not in body  # the agent's own

    # A call created elsewhere is joined at its URL, without creating another.
    async with httpx.AsyncClient() as client:
        created = await client.post(
            server.base_url + "/api/calls",
            headers={"X-API-Key": "test-key"},
            json={"medium": {"serverWebSocket": {"inputSampleRate": RATE}}},
        )
    join = JoinUrlInputParams(join_url=created.json()["joinUrl"])
    frames = [until_replies(server, 1)]
    down, _ = await run_test(UltravoxRealtimeLLMService(params=join), frames, params=PARAMS)
    assert len(server.call_paths) == 2 and server.opened == 2
    assert "".join(f.text for f in of(down, TTSTextFrame)) == "Hello."


async def test_typed_text_and_output_medium_go_to_the_call(server: FakeUltravoxServer) -> None:
    server.greeting = None
    llm = UltravoxRealtimeLLMService(params=one_shot())
    delta = UltravoxRealtimeLLMService.Settings(output_medium="text")
    frames = [
        SleepFrame(5.0, until=lambda: server.opened >= 1),
        LLMUpdateSettingsFrame(delta=delta),
        SleepFrame(5.0, until=lambda: bool(server.of_type("set_output_medium"))),
        InputTextRawFrame("What time is it?"),
        until_replies(server, 1),
        SleepFrame(0.05),
    ]
    down, up = await run_test(llm, frames, params=PARAMS)
    assert server.of_type("set_output_medium") == [{"type": "set_output_medium", "medium": "text"}]
    assert server.of_type("user_text_message") == [
        {"type": "user_text_message", "text": "What time is it?"}
    ]
    # A text reply: words for the context, no audio.
    assert not of(down, TTSAudioRawFrame) and not of(down, TTSStartedFrame)
    texts = [f for f in of(down, LLMTextFrame) if f.append_to_context is not False]
    assert "".join(f.text for f in texts) == "Okay."
    assert len(of(down, LLMFullResponseEndFrame)) == 1
    assert not of(up, ErrorFrame)


async def test_end_of_call_waits_for_the_goodbye(server: FakeUltravoxServer) -> None:
    server.pace_secs = 0.01  # 40 ms of audio per 10 ms
    server.replies.append(UltravoxReply("Goodbye and thank you", audio_ms=1000))
    frames = [SleepFrame(5.0, until=lambda: len(server.sent_of_type("transcript")) >= 1)]
    down, _ = await run_test(UltravoxRealtimeLLMService(params=one_shot()), frames, params=PARAMS)
    # The EndFrame came while the agent spoke: it left only after the whole reply.
    assert sum(len(f.audio) for f in of(down, TTSAudioRawFrame)) == RATE * 2
    assert isinstance(down[-1], EndFrame)
    assert isinstance(down[-2], LLMFullResponseEndFrame)


async def test_a_dropped_socket_joins_the_call_again(server: FakeUltravoxServer) -> None:
    server.replies += [UltravoxReply("Hello."), UltravoxReply("Still here.")]
    server.transcripts.append("are you there")

    def drop() -> bool:
        for conn in list(server.connections):
            conn.ws.transport.abort()  # no close frame: a network failure
        return True

    frames = [
        until_replies(server, 1),
        SleepFrame(1.0, until=drop),
        SleepFrame(5.0, until=lambda: server.opened >= 2 and bool(server.connections)),
        *audio(0.3, loud=True),
        *audio(0.3, loud=False),
        until_replies(server, 2),
    ]
    down, up = await run_test(UltravoxRealtimeLLMService(params=one_shot()), frames, params=PARAMS)
    assert server.opened == 2 and len(server.calls) == 1  # the same call, joined again
    assert "".join(f.text for f in of(down, TTSTextFrame)) == "Hello.Still here."
    assert not of(up, FatalErrorFrame)


async def test_a_call_ended_by_ultravox_is_no_error(server: FakeUltravoxServer) -> None:
    ended: list[asyncio.Task[None]] = []

    def end_call() -> bool:
        ended.append(asyncio.ensure_future(server.end_call()))
        return True

    frames = [
        until_replies(server, 1),
        SleepFrame(1.0, until=end_call),
        # The service tries the joinUrl again; the ended call refuses it.
        SleepFrame(5.0, until=lambda: server.rejected >= 1),
        SleepFrame(0.1),
    ]
    _, up = await run_test(UltravoxRealtimeLLMService(params=one_shot()), frames, params=PARAMS)
    await asyncio.gather(*ended)
    assert server.opened == 1
    assert not of(up, ErrorFrame)
