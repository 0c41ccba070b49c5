"""GoogleTTSService and GeminiTTSService against FakeGoogleTTSGrpcServer: one
``StreamingSynthesize`` call per sentence."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.cloud import texttospeech_v1 as tts

from callpipe.errors import ConfigurationError, MissingDependencyError
from callpipe.frames.frames import (
    Frame,
    InterruptionFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.services.google.tts import (
    GeminiTTSService,
    GoogleTTSService,
    language_to_gemini_tts_language,
)
from callpipe.testing import run_test
from callpipe.testing.fakes.google_tts import FakeGoogleTTSServer
from callpipe.testing.fakes.google_tts_grpc import FakeGoogleTTSGrpcServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import (
    PHONE,
    WIDE,
    after_barge_in,
    audio_secs,
    errors,
    reply,
    service_account_info,
    spoken,
)


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeGoogleTTSGrpcServer]:
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    async with FakeGoogleTTSGrpcServer(secs_per_word=0.1, chunk_secs=0.05) as server:
        monkeypatch.setenv("CALLPIPE_GOOGLE_TTS_GRPC_URL", server.url)
        yield server


def played(down: list[Frame]) -> bytes:
    return b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame))


def config(fake: FakeGoogleTTSGrpcServer, call: int = 0) -> tts.StreamingSynthesizeConfig:
    return fake.first_requests[call].streaming_config


async def test_phone_call_streams_pcm_at_8khz_sentence_by_sentence(
    fake: FakeGoogleTTSGrpcServer,
) -> None:
    down, up = await run_test(GoogleTTSService(), reply("Hi there.", " How are you?"), params=PHONE)
    assert not errors(up)
    first = config(fake)
    assert first.voice.name == "en-US-Chirp3-HD-Charon"
    assert first.voice.language_code == "en-US"
    audio = first.streaming_audio_config
    assert audio.audio_encoding == tts.AudioEncoding.PCM and audio.sample_rate_hertz == 8000
    assert "speaking_rate" not in audio  # unset: the voice's own speed
    assert [i.text for i in fake.inputs] == ["Hi there.", "How are you?"]
    assert fake.completed_streams == 2  # one call per sentence, each half-closed by the client
    # The audio is the fake's, byte for byte, at the line's rate: nothing was resampled.
    assert played(down) == tone_pcm(0.2, 8000) + tone_pcm(0.3, 8000)
    assert len(fake.responses) == 10  # in 50 ms chunks
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {8000}
    texts = [i for i, f in enumerate(down) if isinstance(f, TTSTextFrame)]
    assert spoken(down) == ["Hi there.", "How are you?"]
    assert isinstance(down[texts[0] - 1], TTSAudioRawFrame)  # each text after its audio


async def test_wideband_asks_for_the_pipeline_rate(fake: FakeGoogleTTSGrpcServer) -> None:
    down, up = await run_test(GoogleTTSService(), [TTSSpeakFrame("One two three.")], params=WIDE)
    assert not errors(up)
    assert config(fake).streaming_audio_config.sample_rate_hertz == 16000
    assert played(down) == tone_pcm(0.3, 16000)


async def test_interruption_cancels_the_call_in_flight(fake: FakeGoogleTTSGrpcServer) -> None:
    fake.chunk_delay = 0.05  # 40 words: 80 chunks, four seconds of sending
    cancelled_before_next_reply: list[int] = []
    frames: list[Frame] = [
        LLMFullResponseStartFrame(),
        LLMTextFrame(" ".join(["word"] * 40) + ". And"),
        SleepFrame(5.0, until=lambda: bool(fake.responses)),
        InterruptionFrame(),
        SleepFrame(5.0, until=lambda: fake.cancelled_streams > 0),
        SleepFrame(0, until=lambda: not cancelled_before_next_reply.append(fake.cancelled_streams)),
        *reply("Fresh start."),
    ]
    down, up = await run_test(GoogleTTSService(), frames, params=PHONE)
    assert not errors(up)
    # The call was cancelled at the interruption, not left running until the channel closed.
    assert cancelled_before_next_reply == [1]
    assert fake.cancelled_streams == 1 and fake.completed_streams == 1  # the next reply's
    assert len(fake.responses) < 80 + 4
    rest = after_barge_in(down)
    assert abs(audio_secs(rest) - 0.2) < 1e-6
    assert spoken(down) == ["Fresh start."]  # the cut sentence is not recorded as spoken


async def test_settings_apply_from_the_next_sentence(
    fake: FakeGoogleTTSGrpcServer, caplog: pytest.LogCaptureFixture
) -> None:
    frames: list[Frame] = [
        TTSSpeakFrame("Hello."),
        TTSUpdateSettingsFrame(
            delta=GoogleTTSService.Settings(voice="de-DE-Chirp3-HD-Kore", language=Language.DE)
        ),
        TTSSpeakFrame("Hallo."),
        TTSUpdateSettingsFrame(delta=GoogleTTSService.Settings(speaking_rate=9.0)),
        TTSSpeakFrame("Noch einmal."),
        TTSUpdateSettingsFrame(delta=GoogleTTSService.Settings(speaking_rate=1.5)),
        TTSSpeakFrame("Schnell."),
    ]
    with caplog.at_level(logging.WARNING):
        _, up = await run_test(GoogleTTSService(), frames, params=PHONE)
    assert not errors(up)
    voices = [
        (c.streaming_config.voice.name, c.streaming_config.voice.language_code)
        for c in fake.first_requests
    ]
    assert voices == [("en-US-Chirp3-HD-Charon", "en-US")] + [("de-DE-Chirp3-HD-Kore", "de-DE")] * 3
    assert "speaking_rate" not in config(fake, 2).streaming_audio_config  # 9.0: refused
    assert "speaking_rate 9.0" in caplog.text
    assert config(fake, 3).streaming_audio_config.speaking_rate == 1.5
    with pytest.raises(ConfigurationError, match="speaking_rate"):
        GoogleTTSService(settings=GoogleTTSService.Settings(speaking_rate=3.0))


async def test_settings_win_over_params_and_voice_cloning(fake: FakeGoogleTTSGrpcServer) -> None:
    params = GoogleTTSService.InputParams(language=Language.FR, speaking_rate=1.1)
    await run_test(
        GoogleTTSService(voice_id="fr-FR-Chirp3-HD-Leda", params=params), [TTSSpeakFrame("Oui.")]
    )
    assert config(fake).voice.language_code == "fr-FR"
    assert config(fake).voice.name == "fr-FR-Chirp3-HD-Leda"
    assert config(fake).streaming_audio_config.speaking_rate == pytest.approx(1.1)
    settings = GoogleTTSService.Settings(language="it-IT")
    await run_test(GoogleTTSService(params=params, settings=settings), [TTSSpeakFrame("Sì.")])
    assert config(fake, 1).voice.language_code == "it-IT"
    assert "speaking_rate" not in config(fake, 1).streaming_audio_config
    await run_test(GoogleTTSService(voice_cloning_key="clone-key"), [TTSSpeakFrame("Me.")])
    voice = config(fake, 2).voice
    assert voice.voice_clone.voice_cloning_key == "clone-key" and not voice.name


async def test_refused_credentials_are_fatal_and_stop_the_calls(
    fake: FakeGoogleTTSGrpcServer,
) -> None:
    fake.token = "only-this-token"  # the service sends none: Google answers UNAUTHENTICATED
    down, up = await run_test(GoogleTTSService(), reply("First one.", " Second one."), params=PHONE)
    [error] = errors(up)
    assert error.fatal and "UNAUTHENTICATED" in error.error
    assert len(fake.metadata) == 1  # the second sentence was not tried
    assert not played(down) and not spoken(down)


async def test_a_service_account_google_refuses_is_fatal_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CALLPIPE_GOOGLE_TTS_GRPC_URL", raising=False)
    async with FakeGoogleTTSServer() as token_server:
        info = service_account_info(token_server.base_url + "/no-such-token-endpoint")
        service = GoogleTTSService(credentials=json.dumps(info))
        down, up = await run_test(service, [TTSSpeakFrame("Hi.")], params=PHONE)
    [error] = errors(up)
    assert error.fatal and "refused the credentials" in error.error
    assert not spoken(down)


async def test_a_failed_sentence_is_not_recorded_as_spoken(fake: FakeGoogleTTSGrpcServer) -> None:
    fake.statuses.append(grpc.StatusCode.INVALID_ARGUMENT)
    down, up = await run_test(GoogleTTSService(), reply("Lost one.", " Kept one."), params=PHONE)
    [error] = errors(up)
    assert not error.fatal and "INVALID_ARGUMENT" in error.error
    assert spoken(down) == ["Kept one."]
    assert played(down) == tone_pcm(0.2, 8000)
    assert any(isinstance(f, TTSStoppedFrame) for f in down)


async def test_an_unavailable_server_is_retried_once(fake: FakeGoogleTTSGrpcServer) -> None:
    fake.statuses.append(grpc.StatusCode.UNAVAILABLE)
    down, up = await run_test(GoogleTTSService(), [TTSSpeakFrame("Try again.")], params=PHONE)
    assert not errors(up) and len(fake.first_requests) == 2
    assert spoken(down) == ["Try again."]
    fake.statuses.extend([grpc.StatusCode.UNAVAILABLE] * 2)
    down, up = await run_test(GoogleTTSService(), [TTSSpeakFrame("Gone.")], params=PHONE)
    assert [e.fatal for e in errors(up)] == [False] and not spoken(down)


async def test_gemini_sends_its_model_voice_and_prompt(fake: FakeGoogleTTSGrpcServer) -> None:
    settings = GeminiTTSService.Settings(
        model="gemini-2.5-flash-tts", voice="Puck", prompt="Say it warmly."
    )
    down, up = await run_test(
        GeminiTTSService(settings=settings), reply("Hello.", " Bye now."), params=PHONE
    )
    assert not errors(up)
    voice = config(fake).voice
    assert (voice.model_name, voice.name, voice.language_code) == (
        "gemini-2.5-flash-tts",
        "Puck",
        "en-US",
    )
    assert [(i.text, i.prompt) for i in fake.inputs] == [
        ("Hello.", "Say it warmly."),
        ("Bye now.", "Say it warmly."),
    ]
    assert played(down) == tone_pcm(0.1, 8000) + tone_pcm(0.2, 8000)


async def test_gemini_defaults_multi_speaker_and_updates(fake: FakeGoogleTTSGrpcServer) -> None:
    speakers: list[dict[str, Any]] = [
        {"speaker_alias": "A", "speaker_id": "Kore"},
        {"speaker_alias": "B"},
    ]
    frames: list[Frame] = [
        TTSSpeakFrame("One."),
        TTSUpdateSettingsFrame(
            delta=GeminiTTSService.Settings(multi_speaker=True, speaker_configs=speakers)
        ),
        TTSSpeakFrame("A: Hi. B: Hello."),
    ]
    _, up = await run_test(GeminiTTSService(voice_id="Charon"), frames, params=PHONE)
    assert not errors(up)
    first = config(fake).voice
    assert (first.model_name, first.name) == ("gemini-3.1-flash-tts-preview", "Charon")
    assert "prompt" not in fake.inputs[0]  # no prompt set: none sent
    multi = config(fake, 1).voice
    assert not multi.name
    assert [
        (s.speaker_alias, s.speaker_id)
        for s in multi.multi_speaker_voice_config.speaker_voice_configs
    ] == [
        ("A", "Kore"),
        ("B", "Charon"),
    ]


def test_gemini_api_backend_is_refused_and_languages_map() -> None:
    with pytest.raises(ConfigurationError, match="Gemini API"):
        GeminiTTSService(api_key="k")
    with pytest.raises(ConfigurationError, match="Gemini API"):
        GeminiTTSService(use_genai=True)
    assert language_to_gemini_tts_language(Language("ar")) == "ar-EG"
    assert language_to_gemini_tts_language(Language("en")) == "en-US"


def test_the_endpoint_comes_from_location_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CALLPIPE_GOOGLE_TTS_GRPC_URL", raising=False)
    info = json.dumps(service_account_info("https://oauth2.googleapis.com/token"))
    assert GoogleTTSService(credentials=info).endpoint == "texttospeech.googleapis.com"
    regional = GoogleTTSService(credentials=info, location="europe-west3")
    assert regional.endpoint == "europe-west3-texttospeech.googleapis.com"
    monkeypatch.setenv("CALLPIPE_GOOGLE_TTS_GRPC_URL", "https://tts.example:8443/")
    assert GoogleTTSService(credentials=info).endpoint == "tts.example:8443"  # TLS, credentials
    monkeypatch.setenv("CALLPIPE_GOOGLE_TTS_GRPC_URL", "http://127.0.0.1:9")
    assert GoogleTTSService().endpoint == "127.0.0.1:9"  # a fake: no credentials needed


def test_without_googles_sdk_the_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLPIPE_GOOGLE_TTS_GRPC_URL", "http://127.0.0.1:9")
    monkeypatch.setitem(sys.modules, "google.cloud.texttospeech_v1", None)
    with pytest.raises(MissingDependencyError, match=r"callpipe\[google\]"):
        GoogleTTSService()
