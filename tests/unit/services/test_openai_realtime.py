"""OpenAIRealtimeLLMService against FakeOpenAIRealtimeServer: speech to speech on a phone line."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema
from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.frames.frames import (
    ErrorFrame,
    FatalErrorFrame,
    InputAudioRawFrame,
    LLMContextFrame,
    LLMServiceMetadataFrame,
    LLMTextFrame,
    LLMUpdateSettingsFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import LLMUserAggregator
from callpipe.services.llm_service import FunctionCallParams
from callpipe.services.openai.realtime.events import (
    AudioConfiguration,
    AudioInput,
    InputAudioTranscription,
    SessionProperties,
    TurnDetection,
)
from callpipe.services.openai.realtime.llm import OpenAIRealtimeLLMService
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.fakes.openai_realtime import FakeOpenAIRealtimeServer, RealtimeReply
from callpipe.testing.pipeline import SleepFrame
from callpipe.turns.user_turn_strategies import ExternalUserTurnStrategies

from .helpers import interruption_at, of
from .speech_to_speech import (
    PARAMS,
    RATE,
    HeardReport,
    InputSide,
    ScriptedCaller,
    audio,
    packets,
    run_phone_call,
)


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIRealtimeServer]:
    async with FakeOpenAIRealtimeServer() as fake:
        yield fake


def session(*, interrupt: bool | None = None) -> SessionProperties:
    detection = TurnDetection(silence_duration_ms=100, interrupt_response=interrupt)
    audio_in = AudioInput(transcription=InputAudioTranscription(), turn_detection=detection)
    return SessionProperties(audio=AudioConfiguration(input=audio_in))


def make_llm(server: FakeOpenAIRealtimeServer, **kwargs: Any) -> OpenAIRealtimeLLMService:
    kwargs.setdefault("settings", OpenAIRealtimeLLMService.Settings(session_properties=session()))
    return OpenAIRealtimeLLMService(api_key="test-key", base_url=server.base_url, **kwargs)


def sent(server: FakeOpenAIRealtimeServer, kind: str) -> list[dict[str, Any]]:
    return [e for e in server.sent if e["type"] == kind]


def until_sent(server: FakeOpenAIRealtimeServer, kind: str, count: int = 1) -> SleepFrame:
    return SleepFrame(5.0, until=lambda: len(sent(server, kind)) >= count)


async def test_caller_audio_in_reply_audio_out_and_transcript_in_context(
    server: FakeOpenAIRealtimeServer,
) -> None:
    server.replies += [RealtimeReply("Hello, how can I help?"), RealtimeReply("Sure, when?")]
    server.transcripts.append("I need a table")
    server.transcript_delay_secs = 0.3  # after the reply started, as OpenAI's often is
    context = LLMContext([{"role": "system", "content": "You take bookings."}])
    user = LLMUserAggregator(context)
    frames = [
        LLMContextFrame(context),
        until_sent(server, "response.done"),
        *audio(0.3, loud=True),
        *audio(0.2, loud=False),
        until_sent(server, "response.done", 2),
        until_sent(server, "conversation.item.input_audio_transcription.completed"),
        SleepFrame(0.1),
    ]
    down, up = await run_test(Pipeline([user, make_llm(server)]), frames, params=PARAMS)

    update = server.of_type("session.update")[0]["session"]
    assert update["type"] == "realtime"
    assert update["instructions"] == "You take bookings."
    # A phone line: mu-law both ways, no resampling.
    assert update["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert update["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert update["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 100
    appended = b"".join(
        base64.b64decode(e["audio"]) for e in server.of_type("input_audio_buffer.append")
    )
    caller = pcm_to_ulaw(b"".join(f.audio for f in audio(0.3, loud=True))) + bytes(
        [0xFF] * int(0.2 * RATE)  # mu-law silence
    )
    # The line's own mu-law bytes in 40 ms messages (the last 20 ms wait for the next packet).
    assert caller.startswith(appended) and len(caller) - len(appended) == int(0.02 * RATE)
    assert {
        len(base64.b64decode(e["audio"])) for e in server.of_type("input_audio_buffer.append")
    } == {320}

    said = [m["content"] for m in context.messages if m["role"] == "user"]
    assert said == ["I need a table"]
    out = of(down, TTSAudioRawFrame)
    assert {f.sample_rate for f in out} == {RATE}
    # Two replies of 5 and 2 words at 80 ms a word, as PCM16 at 8 kHz.
    assert sum(len(f.audio) for f in out) == int(0.56 * RATE) * 2
    assert "".join(f.text for f in of(down, TTSTextFrame)) == "Hello, how can I help?Sure, when?"
    assert all(f.append_to_context is False for f in of(down, LLMTextFrame))
    assert len(of(down, TTSStartedFrame)) == len(of(down, TTSStoppedFrame)) == 2
    meta = of(down, LLMServiceMetadataFrame)[0]
    assert meta.is_realtime_service
    assert isinstance(meta.user_turn_strategies, ExternalUserTurnStrategies)
    assert not of(up, ErrorFrame)


async def test_function_call_round_trip(server: FakeOpenAIRealtimeServer) -> None:
    server.replies += [
        RealtimeReply(function_call=("get_weather", {"city": "Paris"})),
        RealtimeReply("It is sunny"),
    ]
    weather = FunctionSchema(
        "get_weather", "Weather", {"city": {"type": "string"}}, required=["city"]
    )
    context = LLMContext(tools=ToolsSchema(standard_tools=[weather]))
    llm = make_llm(server)
    calls: list[dict[str, Any]] = []

    async def get_weather(params: FunctionCallParams) -> None:
        calls.append(params.arguments)
        await params.result_callback({"sky": "sunny"})

    llm.register_function("get_weather", get_weather)
    frames = [LLMContextFrame(context), until_sent(server, "response.done", 2)]
    down, up = await run_test(llm, frames, params=PARAMS)

    tools = server.of_type("session.update")[0]["session"]["tools"]
    assert tools[0]["type"] == "function" and tools[0]["name"] == "get_weather"
    assert tools[0]["parameters"]["required"] == ["city"]
    assert calls == [{"city": "Paris"}]
    call_id = sent(server, "response.function_call_arguments.done")[0]["call_id"]
    outputs = [e["item"] for e in server.of_type("conversation.item.create")]
    assert outputs == [
        {"type": "function_call_output", "call_id": call_id, "output": '{"sky": "sunny"}'}
    ]
    # The result went in before the second response was asked for.
    kinds = [e["type"] for e in server.events if e["type"] != "input_audio_buffer.append"]
    assert kinds[-2:] == ["conversation.item.create", "response.create"]
    assert [m["role"] for m in context.messages] == ["assistant", "tool"]
    assert "".join(f.text for f in of(down, TTSTextFrame)) == "It is sunny"
    assert not of(up, ErrorFrame)


async def test_barge_in_cancels_and_truncates_at_what_was_heard(
    server: FakeOpenAIRealtimeServer,
) -> None:
    server.pace_secs = 0.01
    server.replies += [RealtimeReply("A long greeting", audio_ms=3000), RealtimeReply("Yes?")]
    server.transcripts.append("wait")
    context = LLMContext()
    settings = OpenAIRealtimeLLMService.Settings(session_properties=session(interrupt=False))
    llm = make_llm(server, settings=settings)
    frames = [
        LLMContextFrame(context),
        until_sent(server, "response.output_audio.delta", 5),
        *audio(0.1, loud=True),
        until_sent(server, "conversation.item.truncated"),
        *audio(0.2, loud=False),
        until_sent(server, "response.done", 2),
    ]
    pipeline = Pipeline([InputSide(), LLMUserAggregator(context), llm, HeardReport(0.15)])
    down, up = await run_test(pipeline, frames, params=PARAMS)

    assert len(server.of_type("response.cancel")) == 1
    truncate = server.of_type("conversation.item.truncate")[0]
    greeting = sent(server, "response.output_audio.delta")[0]
    assert truncate["item_id"] == greeting["item_id"]
    assert truncate["content_index"] == 0
    assert truncate["audio_end_ms"] == 150
    assert sent(server, "response.done")[0]["response"]["status"] == "cancelled"
    # Nothing of the cancelled greeting after the cut; the next reply is heard whole.
    after = down[interruption_at(down) :]
    assert sum(len(f.audio) for f in of(after, TTSAudioRawFrame)) == int(0.08 * RATE) * 2
    assert not of(up, ErrorFrame)


async def test_truncation_never_passes_the_audio_received(
    server: FakeOpenAIRealtimeServer,
) -> None:
    server.pace_secs = 0.01
    server.replies.append(RealtimeReply("A long greeting", audio_ms=3000))
    context = LLMContext()
    frames = [
        LLMContextFrame(context),
        until_sent(server, "response.output_audio.delta", 3),
        *audio(0.1, loud=True),
        until_sent(server, "conversation.item.truncated"),
    ]
    pipeline = Pipeline(
        [InputSide(), LLMUserAggregator(context), make_llm(server), HeardReport(60.0)]
    )
    _, up = await run_test(pipeline, frames, params=PARAMS)
    truncate = server.of_type("conversation.item.truncate")[0]
    assert 0 < truncate["audio_end_ms"] < 3000
    assert not of(up, ErrorFrame)  # the fake refuses a cut past the audio sent


async def test_rejected_key_is_fatal(server: FakeOpenAIRealtimeServer) -> None:
    llm = OpenAIRealtimeLLMService(api_key="wrong", base_url=server.base_url)
    _, up = await run_test(llm, [SleepFrame(10)], params=PARAMS)
    fatal = of(up, FatalErrorFrame)
    assert len(fatal) == 1 and "HTTP 401" in fatal[0].error
    assert "Incorrect API key" in fatal[0].error


async def test_error_events_become_error_frames(server: FakeOpenAIRealtimeServer) -> None:
    server.errors_after_update += [
        ("response_cancel_not_active", "nothing to cancel"),
        ("invalid_value", "Invalid value: 'audio/x'"),
    ]
    frames = [until_sent(server, "error", 2), SleepFrame(0.05)]
    _, up = await run_test(make_llm(server), frames, params=PARAMS)
    errors = of(up, ErrorFrame)
    assert len(errors) == 1  # the harmless cancel error is only logged
    assert not isinstance(errors[0], FatalErrorFrame)
    assert "invalid_value" in errors[0].error and "audio/x" in errors[0].error


async def test_a_phone_call_through_the_twilio_transport(server: FakeOpenAIRealtimeServer) -> None:
    """The caller's mu-law reaches OpenAI byte for byte and the model's reaches the line the
    same way; a barge-in clears the line and truncates the greeting at the playback position
    the output transport measured."""
    server.pace_secs = 0.01  # 40 ms of audio per 10 ms: ahead of real time, as OpenAI is
    greeting = "Welcome to the restaurant where every table has a view of the sea and the hills"
    server.replies += [RealtimeReply(greeting, audio_ms=3000)]
    server.replies += [RealtimeReply("Sure")]
    server.transcripts.append("wait a moment")
    caller = ScriptedCaller(
        packets(0.6, loud=False) + packets(0.2, loud=True) + packets(0.3, loud=False)
    )
    context = LLMContext([{"role": "system", "content": "Greet the caller."}])
    await run_phone_call(caller, make_llm(server), context)

    sent_to_line = [m for m in caller.messages() if m.get("event") == "media"]
    played = b"".join(base64.b64decode(m["media"]["payload"]) for m in sent_to_line)
    from_openai = b"".join(
        base64.b64decode(e["delta"]) for e in sent(server, "response.output_audio.delta")
    )
    assert len(played) > 1600 and from_openai.startswith(played[:1600])  # no transcoding
    assert any(m.get("event") == "clear" for m in caller.messages())
    truncate = server.of_type("conversation.item.truncate")[0]
    assert truncate["item_id"] == sent(server, "response.output_audio.delta")[0]["item_id"]
    # The caller heard the greeting from about 0 s to the barge-in at 0.6 s (plus the server's
    # VAD reaction); it was cut well before its 3 s, and the fake accepted the cut.
    assert 200 < truncate["audio_end_ms"] < 2500
    assert sent(server, "conversation.item.truncated")
    appended = b"".join(
        base64.b64decode(e["audio"]) for e in server.of_type("input_audio_buffer.append")
    )
    assert b"".join(caller.script).startswith(appended[:1600])
    assert [m["content"] for m in context.messages if m["role"] == "user"] == ["wait a moment"]
    # The context keeps the words the caller heard of the greeting, then the next reply.
    heard, reply = [m["content"] for m in context.messages if m["role"] == "assistant"]
    assert greeting.startswith(heard) and 0 < len(heard.split()) < len(greeting.split()) // 2
    assert reply == "Sure"


async def test_a_dropped_socket_reconnects_with_the_conversation(
    server: FakeOpenAIRealtimeServer,
) -> None:
    server.replies.append(RealtimeReply("Hello"))
    context = LLMContext(
        [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi there"}]
    )
    frames = [
        LLMContextFrame(context),
        until_sent(server, "response.done"),
        until_sent(server, "session.updated", 3),  # the new session, once configured
        SleepFrame(0.2),
    ]
    running = asyncio.ensure_future(run_test(make_llm(server), frames, params=PARAMS))
    await until_sent(server, "response.done").wait()
    await server.drop()
    _, up = await running
    assert server.opened == 2
    second = server.events[server.events.index(server.of_type("response.create")[0]) + 1 :]
    kinds = [e["type"] for e in second]
    assert kinds[:2] == ["session.update", "session.update"]  # answering session.created, then ours
    assert second[1]["session"]["instructions"] == "Be kind."
    items = [e["item"] for e in second if e["type"] == "conversation.item.create"]
    assert items == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi there"}]}
    ]
    assert "response.create" not in kinds  # the caller's next turn asks for the reply
    assert not of(up, ErrorFrame)


async def test_settings_update_sends_a_session_update(server: FakeOpenAIRealtimeServer) -> None:
    delta = OpenAIRealtimeLLMService.Settings(system_instruction="Speak Spanish.")
    frames = [
        until_sent(server, "session.updated"),
        LLMUpdateSettingsFrame(delta=delta),
        until_sent(server, "session.updated", 2),
    ]
    await run_test(make_llm(server), frames, params=PARAMS)
    updates = server.of_type("session.update")
    assert [u["session"].get("instructions") for u in updates] == [None, "Speak Spanish."]
    assert updates[1]["session"]["audio"]["output"]["format"] == {"type": "audio/pcmu"}


async def test_manual_turns_commit_and_ask_for_a_response(
    server: FakeOpenAIRealtimeServer,
) -> None:
    """``turn_detection=False``: the pipeline decides turns; its end of turn commits the audio."""
    server.replies.append(RealtimeReply("Okay then"))
    manual = SessionProperties(audio=AudioConfiguration(input=AudioInput(turn_detection=False)))
    llm = make_llm(server, settings=OpenAIRealtimeLLMService.Settings(session_properties=manual))
    frames = [
        until_sent(server, "session.updated"),
        *audio(0.2, loud=True),
        UserStoppedSpeakingFrame(),
        until_sent(server, "response.done"),
    ]
    down, _ = await run_test(llm, frames, params=PARAMS)
    update = server.of_type("session.update")[0]["session"]
    assert update["audio"]["input"]["turn_detection"] is None
    kinds = [e["type"] for e in server.events]
    assert kinds[-2:] == ["input_audio_buffer.commit", "response.create"]
    assert kinds.count("input_audio_buffer.append") == 5  # all 200 ms, flushed before the commit
    assert not sent(server, "input_audio_buffer.speech_started")
    assert of(down, LLMServiceMetadataFrame)[0].user_turn_strategies is None
    assert "".join(f.text for f in of(down, TTSTextFrame)) == "Okay then"


async def test_wideband_pipeline_uses_24khz_pcm_and_resamples(
    server: FakeOpenAIRealtimeServer,
) -> None:
    server.replies.append(RealtimeReply("Hi", audio_ms=400))
    rate = 16000
    pcm = tone_pcm(0.4, rate)
    frames = [
        until_sent(server, "session.updated"),
        *(InputAudioRawFrame(pcm[i : i + 640], rate) for i in range(0, len(pcm), 640)),
        LLMContextFrame(LLMContext()),
        until_sent(server, "response.done"),
        SleepFrame(0.05),
    ]
    params = PipelineParams(audio_in_sample_rate=rate, audio_out_sample_rate=rate)
    down, _ = await run_test(make_llm(server), frames, params=params)
    update = server.of_type("session.update")[0]["session"]
    assert update["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert update["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
    # 0.4 s at 16 kHz went out as about 0.4 s at 24 kHz (less the resampler's delay).
    assert 0.35 * 24000 * 2 <= server.audio_bytes <= 0.4 * 24000 * 2
    out = of(down, TTSAudioRawFrame)
    assert {f.sample_rate for f in out} == {rate}
    assert 0.35 * rate * 2 <= sum(len(f.audio) for f in out) <= 0.4 * rate * 2


async def test_new_session_properties_bring_their_instructions(
    server: FakeOpenAIRealtimeServer,
) -> None:
    new = SessionProperties(instructions="Only French.")
    frames = [
        until_sent(server, "session.updated"),
        LLMUpdateSettingsFrame(delta=OpenAIRealtimeLLMService.Settings(session_properties=new)),
        until_sent(server, "session.updated", 2),
    ]
    settings = OpenAIRealtimeLLMService.Settings(system_instruction="Only English.")
    await run_test(make_llm(server, settings=settings), frames, params=PARAMS)
    updates = server.of_type("session.update")
    assert [u["session"]["instructions"] for u in updates] == ["Only English.", "Only French."]


def test_dict_settings_route_session_keys_into_session_properties() -> None:
    delta = OpenAIRealtimeLLMService.Settings.from_mapping(
        {"instructions": "Be short.", "model": "gpt-realtime-mini", "temperature": 0.7}
    )
    assert isinstance(delta.session_properties, SessionProperties)
    assert delta.session_properties.instructions == "Be short."
    assert delta.model == "gpt-realtime-mini" and delta.temperature == 0.7
    assert delta.extra == {}
