"""ESpeakTTSService: offline speech as TTS frames at the pipeline rate, sentence aggregation,
pass-through, and cancellation by an interruption."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("espeakng_loader", reason="needs the espeak extra")

from callpipe.audio.espeak import synthesize
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMTextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services import espeak as espeak_service
from callpipe.services.espeak import ESpeakTTSService
from callpipe.testing.pipeline import SleepFrame, run_test


def params(rate: int) -> PipelineParams:
    return PipelineParams(audio_in_sample_rate=rate, audio_out_sample_rate=rate)


def test_synthesize_speaks_at_the_requested_rate() -> None:
    pcm8 = synthesize("Hello from the demo bot.", 8000)
    pcm16 = synthesize("Hello from the demo bot.", 16000)
    secs8, secs16 = len(pcm8) / 16000, len(pcm16) / 32000
    assert 0.8 < secs8 < 4.0
    assert secs16 == pytest.approx(secs8, abs=0.01)
    samples = np.frombuffer(pcm8, dtype="<i2").astype(np.float64)
    assert np.sqrt(np.mean(samples**2)) > 300  # speech, not silence
    assert synthesize("   ", 8000) == b""
    with pytest.raises(ValueError, match="no voice"):
        synthesize("hi", 8000, voice="xx-not-a-voice")


def test_the_same_sentence_gives_the_same_samples_whatever_came_before() -> None:
    # eSpeak NG's flutter counter runs on between utterances: without the steady variant the
    # second and third renderings differ from the first (by ~190 samples in length, here).
    sentence = "Please transfer me to a real person."
    first = synthesize(sentence, 8000)
    synthesize("Something else, said in between.", 8000)
    assert synthesize(sentence, 8000) == first
    assert synthesize(sentence, 8000) == first
    # A variant the caller names is kept (it may flutter: no claim on its samples).
    assert synthesize(sentence, 8000, voice="en-us+f3") != first


@pytest.mark.parametrize("voice", ["en-us" * 60, "en-us+/tmp/variant", "../en-us", "en us"])
def test_a_malformed_voice_name_is_refused_before_it_reaches_the_library(voice: str) -> None:
    # A long name overflows a fixed buffer in eSpeak NG and aborts the process.
    with pytest.raises(ConfigurationError, match="not an eSpeak NG voice name"):
        synthesize("hi", 8000, voice=voice)


@pytest.mark.parametrize("rate", [8000, 16000])
async def test_speak_frame_becomes_started_audio_text_stopped(rate: int) -> None:
    down, _ = await run_test(
        ESpeakTTSService(chunk_ms=40), [TTSSpeakFrame("Welcome to callpipe.")], params=params(rate)
    )
    kinds = [type(f) for f in down]
    assert kinds[0] is TTSStartedFrame
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert audio and all(f.sample_rate == rate for f in audio)
    assert all(len(f.audio) == rate * 40 // 1000 * 2 for f in audio[:-1])
    assert sum(len(f.audio) for f in audio) / (2 * rate) > 0.5
    assert len({f.context_id for f in audio}) == 1
    text_at = kinds.index(TTSTextFrame)
    assert text_at > kinds.index(TTSAudioRawFrame)  # the text follows its audio
    assert kinds[text_at + 1] is TTSStoppedFrame
    assert down[text_at].text == "Welcome to callpipe."  # type: ignore[attr-defined]


async def test_llm_chunks_are_spoken_sentence_by_sentence() -> None:
    frames = [
        LLMTextFrame("Hello there. How"),
        LLMTextFrame(" are you"),
        LLMTextFrame("?"),
        LLMFullResponseEndFrame(),
    ]
    down, _ = await run_test(ESpeakTTSService(), frames, params=params(8000))
    spoken = [f.text for f in down if isinstance(f, TTSTextFrame)]
    assert spoken == ["Hello there.", "How are you?"]
    assert isinstance(down[-2], LLMFullResponseEndFrame)


async def test_transcriptions_pass_through_unspoken() -> None:
    frame = TranscriptionFrame("caller words", user_id="u", timestamp="t")
    down, _ = await run_test(ESpeakTTSService(), [frame], params=params(8000))
    assert frame in down
    assert not any(isinstance(f, TTSStartedFrame) for f in down)


async def test_interruption_cancels_the_utterance_in_progress(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = threading.Event()

    def slow(text: str, rate: int, voice: str, wpm: int) -> bytes:
        started.set()
        if text.startswith("long"):
            time.sleep(0.3)
        return synthesize(text, rate, voice, wpm)

    monkeypatch.setattr(espeak_service, "synthesize", slow)
    frames = [
        TTSSpeakFrame("long sentence that gets interrupted"),
        SleepFrame(0.1),
        InterruptionFrame(),
        TTSSpeakFrame("after"),
    ]
    down, _ = await run_test(ESpeakTTSService(), frames, params=params(8000))
    assert started.is_set()
    spoken = [f.text for f in down if isinstance(f, TTSTextFrame)]
    assert spoken == ["after"]
    stops = [f for f in down if isinstance(f, TTSStoppedFrame)]
    assert len(stops) == 1
    assert any(isinstance(f, InterruptionFrame) for f in down)


def test_the_steady_data_directory_is_made_once_and_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import espeakng_loader

    from callpipe.audio import espeak

    real = Path(espeakng_loader.get_data_path())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = espeak._data_with_steady_variant(real)
    assert Path(first).parent == tmp_path / "callpipe"
    variant = Path(first) / "espeak-ng-data" / "voices" / "!v" / espeak.STEADY_VARIANT
    assert "flutter 0" in variant.read_text()
    assert (Path(first) / "espeak-ng-data" / "phondata").resolve() == (real / "phondata")
    assert espeak._data_with_steady_variant(real) == first  # reused, nothing new built
    assert [p.name for p in (tmp_path / "callpipe").iterdir()] == [Path(first).name]

    # No writable cache: a temporary directory (removed at exit) still gives steady speech.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    fallback = espeak._data_with_steady_variant(real)
    assert Path(fallback).name.startswith("callpipe-espeak-")
    assert (Path(fallback) / "espeak-ng-data" / "voices" / "!v" / espeak.STEADY_VARIANT).is_file()


def test_no_home_directory_still_gives_steady_speech(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import espeakng_loader

    from callpipe.audio import espeak

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    made = espeak._data_with_steady_variant(Path(espeakng_loader.get_data_path()))
    assert Path(made).name.startswith("callpipe-espeak-")
    assert (Path(made) / "espeak-ng-data" / "voices" / "!v" / espeak.STEADY_VARIANT).is_file()


async def test_language_picks_espeak_s_own_voice_at_start_and_mid_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from callpipe.frames.frames import ErrorFrame, TTSUpdateSettingsFrame
    from callpipe.services.settings import TTSSettings
    from callpipe.transcriptions.language import Language

    voices: list[str] = []

    def spy(text: str, rate: int, voice: str, rate_wpm: int) -> bytes:
        voices.append(voice)
        return synthesize(text, rate, voice, rate_wpm)

    monkeypatch.setattr(espeak_service, "synthesize", spy)
    tts = ESpeakTTSService(language=Language("es-MX"))
    assert tts.voice == "es-419" and tts.model_name == "espeak-ng:es-419"
    frames = [
        TTSSpeakFrame("Hola."),
        TTSUpdateSettingsFrame(delta=TTSSettings(language=Language("pt-BR"))),
        TTSSpeakFrame("Olá."),
        TTSUpdateSettingsFrame(settings={"language": "en-GB"}),
        TTSSpeakFrame("Hello."),
        TTSUpdateSettingsFrame(delta=TTSSettings(voice="de")),
        TTSSpeakFrame("Hallo."),
    ]
    down, up = await run_test(tts, frames, params=params(8000))
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    # eSpeak NG's names: Latin American Spanish, Brazilian Portuguese, "en" (British English).
    assert voices == ["es-419", "pt-br", "en", "de"]
    assert all(type(v) is str for v in voices)
    assert not [f for f in down if isinstance(f, TTSUpdateSettingsFrame)]


def test_an_explicit_voice_wins_and_an_unknown_language_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from callpipe.transcriptions.language import Language

    assert ESpeakTTSService().voice == "en-us"
    assert ESpeakTTSService(voice="en-us+f3", language=Language("fr-FR")).voice == "en-us+f3"
    assert ESpeakTTSService(language=Language("zh-CN")).voice == "cmn"
    with caplog.at_level("WARNING"):
        assert ESpeakTTSService(language="xx-YY").voice == "xx"
    assert len([r for r in caplog.records if "xx-YY" in r.getMessage()]) == 1
