"""GroqSTTService and GroqTTSService against FakeOpenAIServer's Groq routes."""

from __future__ import annotations

import logging
import struct
from collections.abc import AsyncIterator

import pytest

from callpipe.audio.wav import pcm_to_wav
from callpipe.errors import ConfigurationError, ProtocolError
from callpipe.frames.frames import (
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSUpdateSettingsFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.groq.stt import GroqSTTService
from callpipe.services.groq.tts import GroqTTSService, WavStreamReader
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import FakeOpenAIServer, tone_pcm
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE as PARAMS
from .helpers import audio_secs

RATE = 8000


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(speech_secs_per_word=0.1) as fake:
        yield fake


@pytest.fixture(autouse=True)
def openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenAI's variables are set: none of them may reach Groq."""
    monkeypatch.setenv("OPENAI_API_KEY", "openai-key")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-openai")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-openai")
    monkeypatch.delenv("GROQ_API_KEY", raising=False)


def utterance() -> list[Frame]:
    pcm = tone_pcm(0.3, RATE)
    step = RATE // 50 * 2
    return [
        UserStartedSpeakingFrame(),
        *(InputAudioRawFrame(pcm[i : i + step], RATE) for i in range(0, len(pcm), step)),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.3),
    ]


# ---------------------------------------------------------------------------------------- STT


async def test_stt_defaults_key_and_path(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "test-key")
    server.transcripts.append("Hola.")
    stt = GroqSTTService(base_url=server.groq_base_url)
    down, up = await run_test(stt, utterance(), params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["Hola."]
    [request] = server.transcription_requests
    form = {k: v for k, v in request.items() if k != "file"}
    assert form == {
        "model": "whisper-large-v3-turbo",
        "response_format": "json",
        "language": "en",
        "file.filename": "utterance.wav",
    }
    [headers] = server.request_headers
    assert headers["authorization"] == "Bearer test-key"
    assert "openai-organization" not in headers and "openai-project" not in headers


async def test_stt_settings_languages_and_probabilities(
    server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    stt = GroqSTTService(
        api_key="test-key",
        base_url=server.groq_base_url,
        include_prob_metrics=True,
        settings=GroqSTTService.Settings(
            language=Language("yue"), prompt="menu", temperature=0.2, keywords=["Callpipe"]
        ),
    )
    assert stt.settings.model == "whisper-large-v3-turbo"
    assert isinstance(stt.settings, GroqSTTService.Settings)
    update = GroqSTTService.Settings(language=Language("nb-NO"), model="whisper-large-v3")
    with caplog.at_level(logging.WARNING):
        frames = [*utterance(), STTUpdateSettingsFrame(delta=update), *utterance()]
        _, up = await run_test(stt, frames, params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    first, second = server.transcription_requests
    # Cantonese is one of Groq's codes (OpenAI's list has no "yue"); nb goes as Groq's "no".
    assert (first["language"], second["language"]) == ("yue", "no")
    assert (first["model"], second["model"]) == ("whisper-large-v3-turbo", "whisper-large-v3")
    for request in (first, second):
        assert request["prompt"] == "menu" and request["temperature"] == "0.2"
        assert request["response_format"] == "verbose_json"
        assert "keywords[]" not in request
    assert sum("no keywords" in r.getMessage() for r in caplog.records) == 1


async def test_stt_missing_and_rejected_keys_name_groq(server: FakeOpenAIServer) -> None:
    with pytest.raises(ConfigurationError, match="GROQ_API_KEY"):
        GroqSTTService()
    stt = GroqSTTService(api_key="wrong", base_url=server.groq_base_url)
    _, up = await run_test(stt, utterance(), params=PARAMS)
    [error] = [f for f in up if isinstance(f, ErrorFrame)]
    assert error.fatal and "401" in error.error and "GROQ_API_KEY" in error.error


# ---------------------------------------------------------------------------------------- TTS


def make_tts(server: FakeOpenAIServer, **kwargs: object) -> GroqTTSService:
    return GroqTTSService(api_key="test-key", base_url=server.groq_base_url, **kwargs)  # type: ignore[arg-type]


async def test_tts_asks_for_wav_at_the_line_rate(server: FakeOpenAIServer) -> None:
    down, up = await run_test(
        make_tts(server), [TTSSpeakFrame("Hello there friend.")], params=PARAMS
    )
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert server.speech_requests == [
        {
            "model": "canopylabs/orpheus-v1-english",
            "input": "Hello there friend.",
            "voice": "autumn",
            "response_format": "wav",
            "speed": 1.0,
            "sample_rate": RATE,
        }
    ]
    assert "openai-organization" not in server.request_headers[-1]
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert audio and {f.sample_rate for f in audio} == {RATE}
    # The samples only: the 44-byte header is not played (3 words x 0.1 s).
    assert sum(len(f.audio) for f in audio) == int(0.3 * RATE) * 2


async def test_tts_other_line_rate_is_resampled_from_groqs_default(
    server: FakeOpenAIServer,
) -> None:
    params = PipelineParams(audio_in_sample_rate=11025, audio_out_sample_rate=11025)
    down, up = await run_test(
        make_tts(server), [TTSSpeakFrame("One two three four.")], params=params
    )
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert "sample_rate" not in server.speech_requests[0]
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert {f.sample_rate for f in audio} == {11025}
    assert abs(audio_secs(down) - 0.4) < 0.01


async def test_tts_older_arguments_settings_and_updates(server: FakeOpenAIServer) -> None:
    tts = make_tts(
        server,
        model_name="canopylabs/orpheus-arabic-saudi",
        voice_id="fahad",
        params=GroqTTSService.InputParams(language="ar", speed=1.2),
    )
    assert (tts.settings.language, tts.settings.speed) == ("ar", 1.2)
    update = GroqTTSService.Settings(voice="noura")
    frames = [TTSSpeakFrame("One."), TTSUpdateSettingsFrame(delta=update), TTSSpeakFrame("Two.")]
    await run_test(tts, frames, params=PARAMS)
    first, second = server.speech_requests
    assert (first["model"], first["voice"], first["speed"]) == (
        "canopylabs/orpheus-arabic-saudi",
        "fahad",
        1.2,
    )
    assert second["voice"] == "noura"
    # As in Pipecat, params are ignored when settings are given; settings win over the rest.
    tts = make_tts(
        server,
        voice_id="troy",
        params=GroqTTSService.InputParams(speed=2.0),
        settings=GroqTTSService.Settings(voice="diana"),
    )
    assert (tts.settings.voice, tts.settings.speed) == ("diana", 1.0)
    with pytest.raises(ConfigurationError, match="output_format"):
        make_tts(server, output_format="mp3")


# ------------------------------------------------------------------------------ WAV stream


def wav_with_list_chunk(pcm: bytes, rate: int, data_size: int | None = None) -> bytes:
    plain = pcm_to_wav(pcm, rate)
    info = b"LIST" + struct.pack("<I", 5) + b"INFO\x00\x00"  # odd size: one pad byte
    size = len(pcm) if data_size is None else data_size
    return plain[:36] + info + b"data" + struct.pack("<I", size) + pcm


def test_wav_reader_takes_the_header_in_any_pieces() -> None:
    pcm = bytes(range(200))
    body = wav_with_list_chunk(pcm, 16000, data_size=0xFFFFFFFF)
    reader = WavStreamReader()
    out = b"".join(reader.feed(body[i : i + 1]) for i in range(len(body)))
    assert out == pcm and reader.sample_rate == 16000


def test_wav_reader_honours_a_stated_data_size() -> None:
    body = wav_with_list_chunk(bytes(100), 24000, data_size=60) + b"trailing chunk"
    reader = WavStreamReader()
    assert reader.feed(body[:70]) + reader.feed(body[70:]) == bytes(60)


def test_wav_reader_refuses_what_it_cannot_play() -> None:
    with pytest.raises(ProtocolError, match="not a WAV"):
        WavStreamReader().feed(b"ID3\x04" + bytes(40))
    stereo = bytearray(pcm_to_wav(bytes(8), 8000, num_channels=2))
    with pytest.raises(ProtocolError, match="2 channels"):
        WavStreamReader().feed(bytes(stereo))
