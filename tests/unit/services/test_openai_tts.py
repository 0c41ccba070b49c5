"""TTSService base behaviour through OpenAITTSService against FakeOpenAIServer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TextFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from callpipe.services.openai.tts import OpenAITTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import FakeOpenAIServer
from callpipe.testing.pipeline import SleepFrame

from .helpers import PHONE as PARAMS
from .helpers import audio_secs, emitted, eventually, interruption_at, reply, run_then


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(speech_secs_per_word=0.1) as fake:
        yield fake


def make_tts(server: FakeOpenAIServer) -> OpenAITTSService:
    return OpenAITTSService(api_key="test-key", base_url=server.base_url, voice="nova")


async def test_reply_is_spoken_sentence_by_sentence_in_order(server: FakeOpenAIServer) -> None:
    frames = reply("Hello", " there.", " How can", " I help", " you today?")
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    # One request per sentence, asking for raw PCM.
    assert [r["input"] for r in server.speech_requests] == [
        "Hello there.",
        "How can I help you today?",
    ]
    assert all(
        r["response_format"] == "pcm" and r["voice"] == "nova" for r in server.speech_requests
    )

    kinds = [type(f) for f in down]
    assert kinds[0] is LLMFullResponseStartFrame
    assert kinds.index(TTSStartedFrame) < kinds.index(TTSAudioRawFrame)
    stop = kinds.index(TTSStoppedFrame)
    assert stop < kinds.index(LLMFullResponseEndFrame)
    # Sentence text follows its audio; the second sentence's audio follows the first text.
    texts = [i for i, f in enumerate(down) if isinstance(f, TTSTextFrame)]
    assert [down[i].text for i in texts] == ["Hello there.", "How can I help you today?"]  # type: ignore[attr-defined]
    assert isinstance(down[texts[0] - 1], TTSAudioRawFrame)
    assert any(isinstance(f, TTSAudioRawFrame) for f in down[texts[0] : texts[1]])
    # Audio is delivered at the pipeline rate: 24 kHz resampled to 8 kHz, nothing lost.
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert {f.sample_rate for f in audio} == {8000}
    assert all(len(f.audio) % 2 == 0 for f in audio)
    expected = (2 + 6) * 0.1  # words x the fake's 0.1 s per word
    assert abs(audio_secs(down) - expected) < 0.01
    assert len({f.context_id for f in audio}) == 1


async def test_text_outside_a_reply_and_speak_frames(server: FakeOpenAIServer) -> None:
    frames = [TextFrame("Hello! How can I help you today?"), TTSSpeakFrame("Goodbye.")]
    down, _ = await run_test(make_tts(server), frames, params=PARAMS)
    assert [r["input"] for r in server.speech_requests] == [
        "Hello! How can I help you today?",
        "Goodbye.",
    ]
    assert sum(isinstance(f, TTSStartedFrame) for f in down) == 2
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 2


async def test_interruption_drops_the_old_reply(server: FakeOpenAIServer) -> None:
    server.speech_secs_per_word = 0.5
    server.speech_chunk_secs = 0.02
    server.speech_chunk_delay = 0.005  # generation pace: faster than real time, not instant
    long = " ".join(["word"] * 40) + "."
    before: list[Frame] = [
        LLMFullResponseStartFrame(),
        LLMTextFrame("First sentence here."),
        LLMTextFrame(" " + long),
    ]
    after: list[Frame] = [
        InterruptionFrame(),
        SleepFrame(0.2),
        *reply("New reply."),
    ]
    down = await run_then(
        make_tts(server),
        before,
        after,
        when=emitted(TTSAudioRawFrame),
        params=PARAMS,
    )
    cut = interruption_at(down)
    before = {f.context_id for f in down[:cut] if isinstance(f, TTSAudioRawFrame)}
    after = [f for f in down[cut:] if isinstance(f, TTSAudioRawFrame)]
    assert before and after
    assert not before & {f.context_id for f in after}
    assert [f.text for f in down[cut:] if isinstance(f, TTSTextFrame)] == ["New reply."]
    assert abs(audio_secs(down[cut:]) - 2 * 0.5) < 0.01
    await eventually(lambda: server.cancelled_streams)
    assert server.cancelled_streams >= 1


async def test_rate_limit_is_retried_once(server: FakeOpenAIServer) -> None:
    server.speech_replies.extend([429])
    down, up = await run_test(make_tts(server), reply("Try again."), params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert len(server.speech_requests) == 2
    assert abs(audio_secs(down) - 0.2) < 0.01


async def test_http_errors_are_reported_and_the_reply_still_closes(
    server: FakeOpenAIServer,
) -> None:
    server.speech_replies.extend([500, 500])
    down, up = await run_test(make_tts(server), reply("Broken."), params=PARAMS)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and "500" in errors[0].error and not errors[0].fatal
    assert any(isinstance(f, TTSStoppedFrame) for f in down)
    assert isinstance(down[-2], LLMFullResponseEndFrame)


async def test_rejected_key_is_fatal_at_start(server: FakeOpenAIServer) -> None:
    tts = OpenAITTSService(api_key="bad", base_url=server.base_url)
    _, up = await run_test(tts, [SleepFrame(10)], params=PARAMS)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and errors[0].fatal and "OPENAI_API_KEY" in errors[0].error


async def test_params_instructions_and_speed_are_sent(server: FakeOpenAIServer) -> None:
    params = OpenAITTSService.InputParams(instructions="Speak calmly.", speed=1.25)
    tts = OpenAITTSService(api_key="test-key", base_url=server.base_url, params=params)
    _, up = await run_test(tts, [TTSSpeakFrame("Hello.")], params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    [body] = server.speech_requests
    assert body["instructions"] == "Speak calmly." and body["speed"] == 1.25
    assert body["voice"] == "alloy" and body["model"] == "gpt-4o-mini-tts"


async def test_requests_go_through_the_users_http_client(server: FakeOpenAIServer) -> None:
    seen: list[str] = []

    async def record(request: httpx.Request) -> None:
        seen.append(f"{request.method} {request.url.path}")

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as client:
        tts = OpenAITTSService(api_key="test-key", base_url=server.base_url, http_client=client)
        down, up = await run_test(tts, [TTSSpeakFrame("Hello there.")], params=PARAMS)
        assert not client.is_closed  # the user's client: not closed at disconnect
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert seen == ["GET /v1/models", "POST /v1/audio/speech"]
    assert server.request_headers[-1]["authorization"] == "Bearer test-key"
    assert abs(audio_secs(down) - 0.2) < 0.01


async def test_the_openai_sdks_own_client_family_works_too(server: FakeOpenAIServer) -> None:
    # openai.DefaultAsyncHttpxClient is an httpx2 client in the installed SDK.
    async with openai.DefaultAsyncHttpxClient() as client:
        tts = OpenAITTSService(api_key="test-key", base_url=server.base_url, http_client=client)
        down, up = await run_test(tts, [TTSSpeakFrame("Hello there.")], params=PARAMS)
        assert not [f for f in up if isinstance(f, ErrorFrame)]
        assert abs(audio_secs(down) - 0.2) < 0.01
        # Its transport errors are reported as network errors, like httpx's.
        dead = OpenAITTSService(
            api_key="test-key", base_url="http://127.0.0.1:9/v1", http_client=client, warmup=False
        )
        _, up = await run_test(dead, [TTSSpeakFrame("Hello.")], params=PARAMS)
        errors = [f for f in up if isinstance(f, ErrorFrame)]
        assert errors and "speech request failed" in errors[0].error and not errors[0].fatal
        assert not client.is_closed


def test_a_sync_http_client_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="http_client"), httpx.Client() as client:
        OpenAITTSService(api_key="test-key", http_client=client)


async def test_a_language_setting_is_kept_but_not_sent(server: FakeOpenAIServer) -> None:
    from callpipe.frames.frames import TTSUpdateSettingsFrame
    from callpipe.transcriptions.language import Language

    # /audio/speech documents no language parameter: the text's language is what is spoken.
    tts = OpenAITTSService(
        api_key="test-key",
        base_url=server.base_url,
        settings=OpenAITTSService.Settings(language=Language("es-MX")),
    )
    frames = [
        TTSSpeakFrame("Hola."),
        TTSUpdateSettingsFrame(delta=OpenAITTSService.Settings(language=Language("pt-BR"))),
        TTSSpeakFrame("Olá."),
    ]
    _, up = await run_test(tts, frames, params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert tts.settings.language == Language("pt-BR")
    assert [r["input"] for r in server.speech_requests] == ["Hola.", "Olá."]
    assert not [r for r in server.speech_requests if "language" in r]
