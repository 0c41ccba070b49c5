"""GeminiLiveLLMService against FakeGeminiLiveServer: speech to speech on a phone line."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema
from callpipe.frames.frames import (
    EndFrame,
    ErrorFrame,
    FatalErrorFrame,
    LLMContextFrame,
    LLMMessagesAppendFrame,
    LLMServiceMetadataFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import LLMUserAggregator
from callpipe.services.google.gemini_live.llm import (
    GeminiLiveLLMService,
    GeminiVADParams,
    language_to_gemini_language,
)
from callpipe.services.llm_service import FunctionCallParams
from callpipe.testing import run_test
from callpipe.testing.fakes.gemini_live import FakeGeminiLiveServer, LiveReply, b64decode
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import of
from .speech_to_speech import PARAMS, RATE, ScriptedCaller, audio, packets, run_phone_call


@pytest.fixture
async def server() -> AsyncIterator[FakeGeminiLiveServer]:
    async with FakeGeminiLiveServer() as fake:
        yield fake


def make_llm(server: FakeGeminiLiveServer, **kwargs: Any) -> GeminiLiveLLMService:
    kwargs.setdefault(
        "settings", GeminiLiveLLMService.Settings(vad=GeminiVADParams(silence_duration_ms=100))
    )
    return GeminiLiveLLMService(
        api_key="test-key", http_options={"base_url": server.base_url}, **kwargs
    )


def sent(server: FakeGeminiLiveServer, key: str) -> list[dict[str, Any]]:
    return [m for m in server.sent if key in m or key in m.get("serverContent", {})]


def until_sent(server: FakeGeminiLiveServer, key: str, count: int = 1) -> SleepFrame:
    return SleepFrame(5.0, until=lambda: len(sent(server, key)) >= count)


def audio_sent(server: FakeGeminiLiveServer) -> list[dict[str, Any]]:
    return [m["audio"] for m in server.of_kind("realtimeInput") if "audio" in m]


async def test_caller_audio_in_reply_audio_out_and_transcripts_in_context(
    server: FakeGeminiLiveServer,
) -> None:
    server.replies += [LiveReply("Hello, how can I help?"), LiveReply("Sure, when?")]
    server.transcripts.append("I need a table")
    context = LLMContext(
        [{"role": "system", "content": "You take bookings."}, {"role": "user", "content": "Hi"}]
    )
    frames = [
        LLMContextFrame(context),
        until_sent(server, "turnComplete"),
        *audio(0.3, loud=True),
        *audio(0.2, loud=False),
        until_sent(server, "turnComplete", 2),
        SleepFrame(0.8),  # the user aggregator's wait for more of the caller's words
    ]
    llm = make_llm(server)
    down, up = await run_test(Pipeline([LLMUserAggregator(context), llm]), frames, params=PARAMS)

    setup = server.of_kind("setup")[-1]
    assert setup["model"] == "models/gemini-3.8-live"
    assert setup["systemInstruction"] == {"parts": [{"text": "You take bookings."}]}
    generation = setup["generationConfig"]
    assert generation["responseModalities"] == ["AUDIO"]
    assert generation["speechConfig"] == {
        "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Charon"}},
        "languageCode": "en-US",
    }
    assert setup["realtimeInputConfig"] == {
        "automaticActivityDetection": {"silenceDurationMs": 100}
    }
    assert setup["inputAudioTranscription"] == {} and setup["outputAudioTranscription"] == {}
    # The greeting: the context's conversation, answered.
    [content] = server.of_kind("clientContent")  # the caller's turn was not sent again as text
    assert content == {"turns": [{"role": "user", "parts": [{"text": "Hi"}]}], "turnComplete": True}
    # The caller: the line's own 8 kHz PCM in 40 ms messages, its rate named (no resampling).
    blobs = audio_sent(server)
    assert {b["mimeType"] for b in blobs} == {"audio/pcm;rate=8000"}
    assert {len(b64decode(b["data"])) for b in blobs} == {640}
    assert 0.4 * 16000 <= server.audio_bytes <= 0.5 * 16000
    # The model's 24 kHz audio reached the line's rate, every sample of it.
    out = of(down, TTSAudioRawFrame)
    assert {f.sample_rate for f in out} == {RATE}
    assert sum(len(f.audio) for f in out) == int(0.56 * RATE) * 2  # 5 + 2 words, 80 ms each
    assert "".join(f.text for f in of(down, TTSTextFrame)) == "Hello, how can I help?Sure, when?"
    assert all(f.append_to_context is False for f in of(down, LLMTextFrame))
    assert len(of(down, TTSStartedFrame)) == len(of(down, TTSStoppedFrame)) == 2
    # The caller's words, gathered from the input transcription, are in the context.
    said = [m["content"] for m in context.messages if m["role"] == "user"]
    assert said == ["Hi", "I need a table"]
    meta = of(down, LLMServiceMetadataFrame)[0]
    assert meta.is_realtime_service and meta.user_turn_strategies is None
    assert not of(up, ErrorFrame)


async def test_function_call_round_trip_in_a_session_set_up_with_the_tools(
    server: FakeGeminiLiveServer,
) -> None:
    server.replies += [
        LiveReply(function_calls=[("get_weather", {"city": "Paris"})]),
        LiveReply("It is sunny"),
    ]
    weather = FunctionSchema(
        "get_weather", "Weather", {"city": {"type": "string"}}, required=["city"]
    )
    context = LLMContext(
        [{"role": "user", "content": "Weather in Paris?"}],
        tools=ToolsSchema(standard_tools=[weather]),
    )
    llm = make_llm(server)
    calls: list[dict[str, Any]] = []

    async def get_weather(params: FunctionCallParams) -> None:
        calls.append(params.arguments)
        await params.result_callback({"sky": "sunny"})

    llm.register_function("get_weather", get_weather)
    frames = [
        until_sent(server, "setupComplete"),  # a session set up without the context's tools
        LLMContextFrame(context),
        until_sent(server, "turnComplete"),
    ]
    down, up = await run_test(llm, frames, params=PARAMS)

    # The tools can only come with a setup: a new session was opened for them.
    assert server.opened == 2
    first, second = server.of_kind("setup")
    assert "tools" not in first
    [declaration] = second["tools"][0]["functionDeclarations"]
    assert declaration["name"] == "get_weather"
    assert declaration["behavior"] == "BLOCKING"  # Gemini 3.8 would not wait for the result
    assert declaration["parameters"]["required"] == ["city"]
    assert calls == [{"city": "Paris"}]
    call_id = sent(server, "toolCall")[0]["toolCall"]["functionCalls"][0]["id"]
    assert server.of_kind("toolResponse") == [
        {
            "functionResponses": [
                {"id": call_id, "name": "get_weather", "response": {"sky": "sunny"}}
            ]
        }
    ]
    assert [m["role"] for m in context.messages] == ["user", "assistant", "tool"]
    assert "".join(f.text for f in of(down, TTSTextFrame)) == "It is sunny"
    assert not of(up, ErrorFrame)


async def test_barge_in_on_a_phone_call_keeps_what_the_caller_heard(
    server: FakeGeminiLiveServer,
) -> None:
    """Gemini's ``interrupted`` clears the line; the context keeps the words of the greeting
    the caller heard before speaking over it, then the next reply; the call's end closes the
    socket."""
    server.pace_secs = 0.01  # 40 ms of audio per 10 ms: ahead of real time, as Gemini is
    greeting = "Welcome to the restaurant where every table has a view of the sea and the hills"
    server.replies += [LiveReply(greeting, audio_ms=3000), LiveReply("Sure")]
    server.transcripts.append("wait a moment")
    caller = ScriptedCaller(
        packets(0.6, loud=False) + packets(0.2, loud=True) + packets(0.3, loud=False)
    )
    context = LLMContext([{"role": "system", "content": "Greet the caller."}])
    await run_phone_call(caller, make_llm(server), context)

    # Nothing in the context to answer but the instruction: the greeting answers that.
    greet = server.of_kind("clientContent")[0]
    assert greet["turns"] == [{"role": "user", "parts": [{"text": "Greet the caller."}]}]
    assert sent(server, "interrupted")
    assert any(m.get("event") == "clear" for m in caller.messages())
    assert [m["content"] for m in context.messages if m["role"] == "user"] == ["wait a moment"]
    heard, reply = [m["content"] for m in context.messages if m["role"] == "assistant"]
    assert greeting.startswith(heard) and 0 < len(heard.split()) < len(greeting.split()) // 2
    assert reply == "Sure"
    assert server.opened == server.closed == 1  # the call's end closed the session


async def test_rejected_key_is_fatal(server: FakeGeminiLiveServer) -> None:
    llm = GeminiLiveLLMService(api_key="wrong", http_options={"base_url": server.base_url})
    _, up = await run_test(llm, [SleepFrame(5, until=lambda: server.closed > 0)], params=PARAMS)
    fatal = of(up, FatalErrorFrame)
    assert len(fatal) == 1 and "1007" in fatal[0].error
    assert "API key not valid" in fatal[0].error


async def test_env_url_and_key_in_the_query(
    server: FakeGeminiLiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLPIPE_GEMINI_LIVE_URL", server.base_url)
    llm = GeminiLiveLLMService(api_key="test-key")
    await run_test(llm, [until_sent(server, "setupComplete")], params=PARAMS)
    path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    assert server.paths == [f"{path}?key=test-key"]
    assert server.closed == 1


async def test_local_turns_send_activity_marks_with_the_speech_onset(
    server: FakeGeminiLiveServer,
) -> None:
    """``GeminiVADParams(disabled=True)``: the pipeline's turns drive Gemini; audio outside
    them is held back, the last moments before the start going out after ``activityStart``."""
    server.replies.append(LiveReply("Okay then"))
    settings = GeminiLiveLLMService.Settings(vad=GeminiVADParams(disabled=True))
    llm = make_llm(server, settings=settings, user_audio_preroll_secs=0.1)
    frames = [
        until_sent(server, "setupComplete"),
        *audio(0.4, loud=False),
        UserStartedSpeakingFrame(),
        *audio(0.2, loud=True),
        UserStoppedSpeakingFrame(),
        *audio(0.2, loud=False),
        until_sent(server, "turnComplete"),
    ]
    down, _ = await run_test(llm, frames, params=PARAMS)
    setup = server.of_kind("setup")[0]
    assert setup["realtimeInputConfig"] == {"automaticActivityDetection": {"disabled": True}}
    kinds = [next(iter(m)) for m in server.of_kind("realtimeInput")]
    assert kinds[0] == "activityStart" and kinds[-1] == "activityEnd"
    assert set(kinds[1:-1]) == {"audio"}
    # 0.1 s of pre-roll plus the 0.2 s turn, at the line's 8 kHz.
    assert 0.28 * 16000 <= server.audio_bytes <= 0.3 * 16000
    assert "".join(f.text for f in of(down, TTSTextFrame)) == "Okay then"


async def test_a_dropped_socket_resumes_the_session(server: FakeGeminiLiveServer) -> None:
    server.replies.append(LiveReply("Hello"))
    context = LLMContext([{"role": "user", "content": "Hi there"}])
    frames = [
        LLMContextFrame(context),
        until_sent(server, "turnComplete"),
        until_sent(server, "setupComplete", 2),
        SleepFrame(0.1),
    ]
    running = asyncio.ensure_future(run_test(make_llm(server), frames, params=PARAMS))
    await until_sent(server, "turnComplete").wait()
    handle = sent(server, "sessionResumptionUpdate")[-1]["sessionResumptionUpdate"]["newHandle"]
    await server.drop()
    _, up = await running
    assert server.opened == 2
    first, second = server.of_kind("setup")
    assert first["sessionResumption"] == {}
    assert second["sessionResumption"] == {"handle": handle}
    assert len(server.of_kind("clientContent")) == 1  # the server kept the conversation
    assert not of(up, ErrorFrame)


def test_languages_become_gemini_locales() -> None:
    assert language_to_gemini_language(Language.ES) == "es-ES"
    assert language_to_gemini_language(Language.EN_GB) == "en-GB"
    assert language_to_gemini_language(Language.ZH) == "cmn-CN"
    settings = GeminiLiveLLMService.Settings(language=Language.FR)
    llm = GeminiLiveLLMService(api_key="k", settings=settings)
    assert llm.settings.language == "fr-FR"  # type: ignore[attr-defined]


async def test_appended_messages_are_answered(server: FakeGeminiLiveServer) -> None:
    """An ``LLMMessagesAppendFrame`` (a bot's "say goodbye") reaches the session as a user turn
    the model answers; the context's other messages are not sent again."""
    server.replies += [LiveReply("Hello"), LiveReply("Goodbye then")]
    context = LLMContext([{"role": "user", "content": "Hi"}])
    goodbye = [{"role": "system", "content": "Say goodbye."}]
    frames = [
        LLMContextFrame(context),
        until_sent(server, "turnComplete"),
        LLMMessagesAppendFrame(goodbye, run_llm=True),
        until_sent(server, "turnComplete", 2),
    ]
    pipeline = Pipeline([LLMUserAggregator(context), make_llm(server)])
    down, _ = await run_test(pipeline, frames, params=PARAMS)
    assert server.of_kind("clientContent")[1] == {
        "turns": [{"role": "user", "parts": [{"text": "Say goodbye."}]}],
        "turnComplete": True,
    }
    assert "".join(f.text for f in of(down, TTSTextFrame)) == "HelloGoodbye then"


async def test_the_end_of_the_call_waits_for_the_model_to_finish_speaking(
    server: FakeGeminiLiveServer,
) -> None:
    server.pace_secs = 0.01
    server.replies.append(LiveReply("Thank you for calling, goodbye", audio_ms=1000))
    frames = [
        LLMContextFrame(LLMContext([{"role": "user", "content": "Bye"}])),
        until_sent(server, "modelTurn", 2),
    ]  # then the EndFrame, while the goodbye is still coming
    down, _ = await run_test(make_llm(server), frames, params=PARAMS)
    assert isinstance(down[-1], EndFrame)
    assert sum(len(f.audio) for f in of(down, TTSAudioRawFrame)) == RATE * 2  # all 1 s of it
    assert server.opened == server.closed == 1


async def test_a_call_gemini_withdrew_gets_no_result(server: FakeGeminiLiveServer) -> None:
    """The caller speaks while a function runs: Gemini withdraws the call
    (``toolCallCancellation``) and would close the session on a result for it."""
    server.replies += [LiveReply(function_calls=[("slow", {})]), LiveReply("Yes?")]
    llm = make_llm(server)
    started = asyncio.Event()

    async def slow(params: FunctionCallParams) -> None:
        started.set()
        await asyncio.sleep(0.3)
        await params.result_callback({"done": True})

    llm.register_function("slow", slow)
    context = LLMContext([{"role": "user", "content": "Do it"}])
    frames = [
        LLMContextFrame(context),
        SleepFrame(5.0, until=started.is_set),
        *audio(0.1, loud=True),
        *audio(0.2, loud=False),
        until_sent(server, "toolCallCancellation"),
        until_sent(server, "turnComplete"),
        SleepFrame(0.4),  # the function finished meanwhile
    ]
    down, up = await run_test(llm, frames, params=PARAMS)
    assert server.of_kind("toolResponse") == []
    assert server.opened == 1 and not of(up, ErrorFrame)  # the session lived on
    assert "".join(f.text for f in of(down, TTSTextFrame)) == "Yes?"
    assert [m["role"] for m in context.messages] == ["user", "assistant", "tool"]
