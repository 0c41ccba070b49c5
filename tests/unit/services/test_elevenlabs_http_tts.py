"""ElevenLabsHttpTTSService against the fake's ``/stream/with-timestamps``: one request per
sentence, word timing, ``previous_text``, barge-in, errors and settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.frames.frames import (
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.services.elevenlabs.tts import ElevenLabsHttpTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.elevenlabs import FakeElevenLabsHTTPServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import (
    PHONE,
    WIDE,
    audio_secs,
    emitted,
    errors,
    eventually,
    interruption_at,
    reply,
    run_then,
)

SECS_PER_CHAR = 0.01


@pytest.fixture
async def server() -> AsyncIterator[FakeElevenLabsHTTPServer]:
    fake = FakeElevenLabsHTTPServer(secs_per_char=SECS_PER_CHAR, speech_chunk_secs=0.05)
    async with fake:
        yield fake


def make_tts(server: FakeElevenLabsHTTPServer, **kwargs: Any) -> ElevenLabsHttpTTSService:
    return ElevenLabsHttpTTSService(
        api_key="test-key", voice_id="voice-1", base_url=server.base_url, **kwargs
    )


def bodies(server: FakeElevenLabsHTTPServer) -> list[dict[str, Any]]:
    return [r["body"] for r in server.speech_requests]


async def test_phone_call_gets_ulaw_and_words_after_their_audio(
    server: FakeElevenLabsHTTPServer,
) -> None:
    down, up = await run_test(make_tts(server), reply("Hi there.", " How are you?"), params=PHONE)
    assert not errors(up)
    first, second = server.speech_requests
    assert first["path"] == "/v1/text-to-speech/voice-1/stream/with-timestamps"
    assert first["query"] == {"output_format": "ulaw_8000"}
    assert first["body"] == {"text": "Hi there.", "model_id": "eleven_flash_v2_5"}
    # The reply's earlier sentence goes with the next one, for continuous prosody.
    assert second["body"] == {
        "text": "How are you?",
        "model_id": "eleven_flash_v2_5",
        "previous_text": "Hi there.",
    }
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert {f.sample_rate for f in audio} == {8000}
    chars = len("Hi there.") + len("How are you?")
    assert abs(audio_secs(down) - chars * SECS_PER_CHAR) < 1e-6
    words = [f.text for f in down if isinstance(f, TTSTextFrame)]
    assert words == ["Hi", "there.", "How", "are", "you?"]
    # Every word leaves after the audio up to its end; the second sentence's alignment counts
    # from its own request's start, so its words are placed after the first sentence's audio.
    ends = {"Hi": 2, "there.": 9, "How": 9 + 3, "are": 9 + 7, "you?": 9 + 12}
    heard = 0.0
    for frame in down:
        if isinstance(frame, TTSAudioRawFrame):
            heard += len(frame.audio) / 2 / frame.sample_rate
        elif isinstance(frame, TTSTextFrame):
            assert heard >= ends[frame.text] * SECS_PER_CHAR - 1e-6, frame.text
    kinds = [type(f) for f in down]
    assert kinds.index(TTSStoppedFrame) < kinds.index(LLMFullResponseEndFrame)


async def test_previous_text_stays_within_a_reply_and_skips_v3(
    server: FakeElevenLabsHTTPServer,
) -> None:
    frames = [*reply("One.", " Two."), *reply("Three.")]
    _, up = await run_test(make_tts(server), frames, params=PHONE)
    assert not errors(up)
    assert [b.get("previous_text") for b in bodies(server)] == [None, "One.", None]

    server.speech_requests.clear()
    _, up = await run_test(make_tts(server, model="eleven_v3"), reply("One.", " Two."))
    assert not errors(up)  # the fake refuses previous_text for v3, as ElevenLabs does
    assert [b.get("previous_text") for b in bodies(server)] == [None, None]


async def test_wideband_gets_pcm_and_the_options_go_in_the_query(
    server: FakeElevenLabsHTTPServer,
) -> None:
    params = ElevenLabsHttpTTSService.InputParams(
        optimize_streaming_latency=3, stability=0.4, speed=1.1, apply_text_normalization="off"
    )
    tts = make_tts(server, params=params, enable_logging=False)
    down, up = await run_test(tts, [TTSSpeakFrame("Hello there.")], params=WIDE)
    assert not errors(up)
    [request] = server.speech_requests
    assert request["query"] == {
        "output_format": "pcm_16000",
        "optimize_streaming_latency": "3",
        "enable_logging": "false",
    }
    assert request["body"]["voice_settings"] == {"stability": 0.4, "speed": 1.1}
    assert request["body"]["apply_text_normalization"] == "off"
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {16000}
    assert abs(audio_secs(down) - len("Hello there.") * SECS_PER_CHAR) < 1e-6


async def test_interruption_closes_the_stream(server: FakeElevenLabsHTTPServer) -> None:
    server.speech_chunk_delay = 0.03  # under real time: the long sentence is still streaming
    long = " ".join(["word"] * 60) + "."
    before: list[Frame] = [LLMFullResponseStartFrame(), LLMTextFrame(long)]
    after: list[Frame] = [InterruptionFrame(), SleepFrame(0.1), *reply("New reply.")]
    down = await run_then(
        make_tts(server),
        before,
        after,
        when=emitted(TTSAudioRawFrame),
        params=PHONE,
    )
    await eventually(lambda: server.cancelled_streams)
    assert server.cancelled_streams == 1
    cut = interruption_at(down)
    assert audio_secs(down[:cut]) < len(long) * SECS_PER_CHAR / 2
    assert abs(audio_secs(down[cut:]) - len("New reply.") * SECS_PER_CHAR) < 1e-6
    assert [f.text for f in down[cut:] if isinstance(f, TTSTextFrame)] == ["New", "reply."]
    # The new reply is a new one: nothing of the interrupted sentence is its previous_text.
    assert "previous_text" not in bodies(server)[-1]


async def test_a_rejected_key_is_fatal_and_stops_requests(
    server: FakeElevenLabsHTTPServer,
) -> None:
    tts = ElevenLabsHttpTTSService(api_key="wrong", voice_id="v", base_url=server.base_url)
    down, up = await run_test(tts, reply("First one.", " Second one."), params=PHONE)
    [error] = errors(up)
    assert error.fatal and "401" in error.error and "ELEVENLABS_API_KEY" in error.error
    assert "Invalid API key" in error.error
    assert not any(isinstance(f, TTSAudioRawFrame) for f in down)
    assert server.speech_requests == []
    assert server.speech_refused == 1  # the second sentence was not sent with the same key


async def test_runtime_settings_apply_from_the_next_sentence(
    server: FakeElevenLabsHTTPServer,
) -> None:
    delta = ElevenLabsHttpTTSService.Settings(
        voice="voice-2",
        model="eleven_turbo_v2_5",
        language=Language("pt-BR"),
        similarity_boost=0.9,
        optimize_streaming_latency=2,
    )
    frames = [TTSSpeakFrame("Hello."), TTSUpdateSettingsFrame(delta=delta), TTSSpeakFrame("Olá.")]
    _, up = await run_test(make_tts(server), frames, params=PHONE)
    assert not errors(up)
    first, second = server.speech_requests
    assert first["voice_id"] == "voice-1" and "language_code" not in first["body"]
    assert second["voice_id"] == "voice-2"
    assert second["query"]["optimize_streaming_latency"] == "2"
    assert second["body"] == {
        "text": "Olá.",
        "model_id": "eleven_turbo_v2_5",
        "voice_settings": {"similarity_boost": 0.9},
        "language_code": "pt",
    }


async def test_a_language_the_model_does_not_take_is_left_out(
    server: FakeElevenLabsHTTPServer,
) -> None:
    settings = ElevenLabsHttpTTSService.Settings(model="eleven_multilingual_v2", language="de")
    _, up = await run_test(
        make_tts(server, settings=settings), [TTSSpeakFrame("Hallo.")], params=PHONE
    )
    assert not errors(up)
    assert "language_code" not in bodies(server)[0]


async def test_a_busy_server_is_retried_once(server: FakeElevenLabsHTTPServer) -> None:
    server.speech_statuses.extend([429])
    down, up = await run_test(make_tts(server), [TTSSpeakFrame("Again.")], params=PHONE)
    assert not errors(up)
    assert len(server.speech_requests) == 2
    assert abs(audio_secs(down) - len("Again.") * SECS_PER_CHAR) < 1e-6
