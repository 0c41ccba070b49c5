"""1.14 service settings on the STT/TTS services: settings=, optional voice_id, updates."""

from __future__ import annotations

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    Frame,
    InputAudioRawFrame,
    STTUpdateSettingsFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    TTSUpdateSettingsFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.deepgram.stt import DeepgramSTTService
from callpipe.services.elevenlabs.tts import ElevenLabsTTSService
from callpipe.services.openai.stt import OpenAISTTService
from callpipe.services.openai.tts import OpenAITTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.cartesia import FakeCartesiaServer
from callpipe.testing.fakes.deepgram import FakeDeepgramServer
from callpipe.testing.fakes.elevenlabs import FakeElevenLabsServer
from callpipe.testing.fakes.openai import FakeOpenAIServer, tone_pcm
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE as PARAMS
from .helpers import reply


async def test_cartesia_settings_and_runtime_voice_change() -> None:
    async with FakeCartesiaServer(secs_per_word=0.05, chunk_secs=0.04) as server:
        tts = CartesiaTTSService(
            api_key="test-key",
            url=server.url,
            settings=CartesiaTTSService.Settings(voice="voice-a", model="sonic-3", language="fr"),
        )
        assert tts.model_name == "sonic-3" and tts.settings.voice == "voice-a"
        frames = [
            *reply("One."),
            TTSUpdateSettingsFrame(delta=CartesiaTTSService.Settings(voice="voice-b")),
            *reply("Two."),
        ]
        await run_test(tts, frames, params=PARAMS)  # type: ignore[arg-type]
    inputs = [m for m in server.messages if m.get("transcript")]
    assert [m["voice"]["id"] for m in inputs] == ["voice-a", "voice-b"]
    assert inputs[0]["model_id"] == "sonic-3" and inputs[0]["language"] == "fr"


def test_voice_is_required_from_one_place_or_the_other() -> None:
    with pytest.raises(ConfigurationError, match="voice"):
        CartesiaTTSService(api_key="test-key")
    tts = ElevenLabsTTSService(
        api_key="test-key", settings=ElevenLabsTTSService.Settings(voice="v9")
    )
    assert tts.settings.voice == "v9" and tts.model_name == "eleven_flash_v2_5"


async def test_push_silence_after_stop_is_honoured() -> None:
    async with FakeCartesiaServer(secs_per_word=0.05, chunk_secs=0.04) as server:
        tts = CartesiaTTSService(
            api_key="test-key",
            voice_id="v",
            url=server.url,
            push_silence_after_stop=True,
            silence_time_s=0.5,
        )
        down, _ = await run_test(tts, reply("Hello."), params=PARAMS)  # type: ignore[arg-type]
    stop = next(i for i, f in enumerate(down) if isinstance(f, TTSStoppedFrame))
    after = [f for f in down[stop:] if isinstance(f, TTSAudioRawFrame)]
    assert len(after) == 1 and after[0].audio == b"\x00" * 8000  # 0.5 s at 8 kHz, 16-bit


async def test_elevenlabs_voice_settings_from_settings_object() -> None:
    async with FakeElevenLabsServer() as server:
        tts = ElevenLabsTTSService(
            api_key="test-key",
            url=server.url,
            settings=ElevenLabsTTSService.Settings(voice="v1", stability=0.3, speed=1.1),
        )
        await run_test(tts, reply("Hi."), params=PARAMS)  # type: ignore[arg-type]
    assert tts._voice_id == "v1"
    init = next(m for m in server.messages if "voice_settings" in m)
    assert init["voice_settings"] == {"stability": 0.3, "speed": 1.1}


async def test_deepgram_settings_become_query_options() -> None:
    async with FakeDeepgramServer() as server:
        stt = DeepgramSTTService(
            api_key="test-key",
            url=server.url,
            settings=DeepgramSTTService.Settings(model="nova-2", language="es", smart_format=False),
        )
        assert stt.model_name == "nova-2"
        query = stt._query()
        assert query["model"] == "nova-2" and query["language"] == "es"
        assert query["smart_format"] is False
        frames = [STTUpdateSettingsFrame(delta=DeepgramSTTService.Settings(language="de"))]
        await run_test(stt, frames, params=PARAMS)
        assert stt.settings.language == "de"
        assert stt._query()["language"] == "de"  # a running call reopens with it


async def test_elevenlabs_text_normalization_setting_is_a_socket_option() -> None:
    async with FakeElevenLabsServer() as server:
        tts = ElevenLabsTTSService(
            api_key="test-key",
            url=server.url,
            settings=ElevenLabsTTSService.Settings(voice="v1", apply_text_normalization="on"),
        )
        frames = [
            *reply("Hi."),
            TTSUpdateSettingsFrame(
                delta=ElevenLabsTTSService.Settings(apply_text_normalization="off")
            ),
        ]
        await run_test(tts, frames, params=PARAMS)  # type: ignore[arg-type]
    assert server.queries[0]["apply_text_normalization"] == ["on"]
    assert tts.settings.apply_text_normalization == "off"  # type: ignore[attr-defined]


async def test_openai_tts_settings_and_runtime_update() -> None:
    async with FakeOpenAIServer(speech_secs_per_word=0.05) as server:
        tts = OpenAITTSService(
            api_key="test-key",
            base_url=server.base_url,
            voice="alloy",
            speed=2.0,
            settings=OpenAITTSService.Settings(
                voice="nova", model="tts-1", instructions="Be warm.", speed=1.2
            ),
        )
        assert tts.model_name == "tts-1" and tts.settings.voice == "nova"
        frames = [
            *reply("One."),
            TTSUpdateSettingsFrame(
                delta=OpenAITTSService.Settings(voice="echo", model="gpt-4o-mini-tts", speed=0.9)
            ),
            *reply("Two."),
        ]
        await run_test(tts, frames, params=PARAMS)  # type: ignore[arg-type]
    first, second = server.speech_requests
    assert (first["voice"], first["model"], first["speed"]) == ("nova", "tts-1", 1.2)
    assert first["instructions"] == "Be warm."
    assert (second["voice"], second["model"], second["speed"]) == ("echo", "gpt-4o-mini-tts", 0.9)
    assert second["instructions"] == "Be warm."


async def test_openai_stt_settings_and_runtime_update() -> None:
    def utterance() -> list[Frame]:
        pcm = tone_pcm(0.3, 8000)
        audio = [InputAudioRawFrame(pcm[i : i + 320], 8000) for i in range(0, len(pcm), 320)]
        return [UserStartedSpeakingFrame(), *audio, UserStoppedSpeakingFrame(), SleepFrame(0.3)]

    async with FakeOpenAIServer() as server:
        stt = OpenAISTTService(
            api_key="test-key",
            base_url=server.base_url,
            prompt="ignored",
            settings=OpenAISTTService.Settings(
                model="whisper-1",
                language=Language("pt-BR"),
                prompt="A clinic.",
                temperature=0.2,
                keywords=["Acme"],
            ),
        )
        assert stt.model_name == "whisper-1"
        frames = [
            *utterance(),
            STTUpdateSettingsFrame(
                delta=OpenAISTTService.Settings(model="gpt-4o-transcribe", prompt="A pharmacy.")
            ),
            *utterance(),
        ]
        await run_test(stt, frames, params=PARAMS)
    first, second = server.transcription_requests
    assert (first["model"], first["language"], first["prompt"]) == ("whisper-1", "pt", "A clinic.")
    assert first["temperature"] == "0.2" and first["keywords[]"] == "Acme"
    assert (second["model"], second["prompt"]) == ("gpt-4o-transcribe", "A pharmacy.")
    assert second["language"] == "pt" and second["keywords[]"] == "Acme"


def test_validate_complete_names_the_fields_a_custom_store_left_unset(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from callpipe.services.settings import TTSSettings

    with caplog.at_level("WARNING"):
        assert TTSSettings(model=None, voice="v", language=None).validate_complete() == []
        assert TTSSettings(voice="v").validate_complete() == ["model", "language"]
    assert caplog.text.count("NOT_GIVEN") == 1 and "model, language" in caplog.text
