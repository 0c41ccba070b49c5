"""CartesiaHttpTTSService against FakeCartesiaHTTPServer: ``POST /tts/bytes`` per sentence."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    LLMFullResponseEndFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.services.cartesia.tts import CartesiaHttpTTSService, GenerationConfig
from callpipe.testing import run_test
from callpipe.testing.fakes.cartesia import FakeCartesiaHTTPServer
from callpipe.transcriptions.language import Language

from .helpers import (
    PHONE,
    WIDE,
    audio_secs,
    barge_in,
    errors,
    eventually,
    interruption_at,
    reply,
)


@pytest.fixture
async def server() -> AsyncIterator[FakeCartesiaHTTPServer]:
    async with FakeCartesiaHTTPServer(secs_per_word=0.1, chunk_secs=0.04) as fake:
        yield fake


def make_tts(server: FakeCartesiaHTTPServer, **kwargs: object) -> CartesiaHttpTTSService:
    return CartesiaHttpTTSService(
        api_key="test-key",
        voice_id="voice-1",
        base_url=server.base_url,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_phone_call_gets_mulaw_at_8khz_sentence_by_sentence(
    server: FakeCartesiaHTTPServer,
) -> None:
    down, up = await run_test(make_tts(server), reply("Hi there.", " How are you?"), params=PHONE)
    assert not errors(up)
    assert [r["transcript"] for r in server.requests] == ["Hi there.", "How are you?"]
    assert server.requests[0] == {
        "model_id": "sonic-3",
        "transcript": "Hi there.",
        "voice": {"mode": "id", "id": "voice-1"},
        "output_format": {"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000},
        "language": "en",
    }
    headers = server.headers[0]
    assert headers["x-api-key"] == "test-key" and headers["cartesia-version"]
    # Decoded at the line's rate: nothing resampled, every word's tone there.
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert {f.sample_rate for f in audio} == {8000}
    assert abs(audio_secs(down) - 5 * 0.1) < 1e-6
    # Each sentence's text follows its audio; the reply closes before its end frame.
    texts = [i for i, f in enumerate(down) if isinstance(f, TTSTextFrame)]
    assert [down[i].text for i in texts] == ["Hi there.", "How are you?"]  # type: ignore[attr-defined]
    assert isinstance(down[texts[0] - 1], TTSAudioRawFrame)
    kinds = [type(f) for f in down]
    assert kinds.index(TTSStoppedFrame) < kinds.index(LLMFullResponseEndFrame)
    assert server.completed_streams == 2


async def test_wideband_gets_pcm_at_the_pipeline_rate(server: FakeCartesiaHTTPServer) -> None:
    down, up = await run_test(make_tts(server), [TTSSpeakFrame("One two three.")], params=WIDE)
    assert not errors(up)
    assert server.requests[0]["output_format"] == {
        "container": "raw",
        "encoding": "pcm_s16le",
        "sample_rate": 16000,
    }
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {16000}
    assert abs(audio_secs(down) - 0.3) < 1e-6


async def test_an_explicit_encoding_is_kept(server: FakeCartesiaHTTPServer) -> None:
    down, _ = await run_test(
        make_tts(server, encoding="pcm_s16le"), [TTSSpeakFrame("One two.")], params=PHONE
    )
    assert server.requests[0]["output_format"]["encoding"] == "pcm_s16le"
    assert abs(audio_secs(down) - 0.2) < 1e-6


async def test_interruption_closes_the_stream(server: FakeCartesiaHTTPServer) -> None:
    server.chunk_delay = 0.02  # about twice real time: the long sentence is still streaming
    down = await barge_in(
        make_tts(server), params=PHONE, words=60, pause=0.1, next_reply="New reply."
    )
    await eventually(lambda: server.cancelled_streams)
    assert server.cancelled_streams == 1
    cut = interruption_at(down)
    old = {f.context_id for f in down[:cut] if isinstance(f, TTSAudioRawFrame)}
    new = [f for f in down[cut:] if isinstance(f, TTSAudioRawFrame)]
    assert old and new and not old & {f.context_id for f in new}
    assert audio_secs(down[:cut]) < 6 * 0.5  # far from the whole sentence
    assert abs(audio_secs(down[cut:]) - 0.2) < 1e-6
    assert [f.text for f in down[cut:] if isinstance(f, TTSTextFrame)] == ["New reply."]


async def test_a_rejected_key_is_fatal_and_stops_requests(server: FakeCartesiaHTTPServer) -> None:
    tts = CartesiaHttpTTSService(api_key="wrong", voice_id="v", base_url=server.base_url)
    down, up = await run_test(tts, reply("First one.", " Second one."), params=PHONE)
    [error] = errors(up)
    assert error.fatal and "401" in error.error and "CARTESIA_API_KEY" in error.error
    assert len(server.headers) == 1  # the second sentence was not sent with the same key
    assert not any(isinstance(f, TTSAudioRawFrame) for f in down)


async def test_a_busy_server_is_retried_once(server: FakeCartesiaHTTPServer) -> None:
    server.statuses.extend([503])
    down, up = await run_test(make_tts(server), [TTSSpeakFrame("Try again.")], params=PHONE)
    assert not errors(up)
    assert len(server.requests) == 2
    assert abs(audio_secs(down) - 0.2) < 1e-6
    server.statuses.extend([500, 500])
    down, up = await run_test(make_tts(server), [TTSSpeakFrame("Broken.")], params=PHONE)
    [error] = errors(up)
    assert not error.fatal and "500" in error.error
    assert any(isinstance(f, TTSStoppedFrame) for f in down)


async def test_runtime_settings_apply_from_the_next_sentence(
    server: FakeCartesiaHTTPServer,
) -> None:
    delta = CartesiaHttpTTSService.Settings(
        voice="voice-2",
        model="sonic-3.5",
        language=Language("es-MX"),
        generation_config=GenerationConfig(speed=1.2, emotion="calm"),
        pronunciation_dict_id="dict-1",
    )
    frames = [TTSSpeakFrame("Hello."), TTSUpdateSettingsFrame(delta=delta), TTSSpeakFrame("Hola.")]
    _, up = await run_test(make_tts(server), frames, params=PHONE)
    assert not errors(up)
    first, second = server.requests
    assert first["voice"]["id"] == "voice-1" and "generation_config" not in first
    assert second["voice"] == {"mode": "id", "id": "voice-2"}
    assert second["model_id"] == "sonic-3.5"
    assert second["language"] == "es"
    assert second["generation_config"] == {"speed": 1.2, "emotion": "calm"}
    assert second["pronunciation_dict_id"] == "dict-1"


async def test_settings_win_over_params_and_extra_headers_replace_ours(
    server: FakeCartesiaHTTPServer,
) -> None:
    params = CartesiaHttpTTSService.InputParams(
        language="fr", generation_config=GenerationConfig(volume=1.5)
    )
    tts = make_tts(
        server,
        params=params,
        extra_headers={"cartesia-version": "2026-03-01", "X-Trace": "t-1"},
        cartesia_version="2025-04-16",
    )
    _, up = await run_test(tts, [TTSSpeakFrame("Bonjour.")], params=PHONE)
    assert not errors(up)
    assert server.requests[0]["language"] == "fr"
    assert server.requests[0]["generation_config"] == {"volume": 1.5}
    assert server.headers[0]["cartesia-version"] == "2026-03-01"
    assert server.headers[0]["x-trace"] == "t-1"

    settings = CartesiaHttpTTSService.Settings(language="de")
    tts = make_tts(server, params=params, settings=settings)
    await run_test(tts, [TTSSpeakFrame("Hallo.")], params=PHONE)
    # As in Pipecat: with settings= the deprecated params are not read at all.
    assert server.requests[1]["language"] == "de"
    assert "generation_config" not in server.requests[1]


async def test_base_url_from_the_environment(
    server: FakeCartesiaHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLPIPE_CARTESIA_API_URL", server.base_url)
    tts = CartesiaHttpTTSService(api_key="test-key", voice_id="voice-1")
    down, up = await run_test(tts, [TTSSpeakFrame("Hello.")], params=PHONE)
    assert not errors(up)
    assert len(server.requests) == 1 and audio_secs(down) > 0


def test_containers_other_than_raw_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="raw"):
        CartesiaHttpTTSService(api_key="k", voice_id="v", container="mp3")
    with pytest.raises(ConfigurationError, match="encoding"):
        CartesiaHttpTTSService(api_key="k", voice_id="v", encoding="pcm_f32le")
