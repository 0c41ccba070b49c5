"""ESpeakTTSService: offline speech as TTS frames at the pipeline rate, sentence aggregation,
pass-through, and cancellation by an interruption."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("espeakng_loader", reason="needs the espeak extra")

from callpipe.audio.espeak import synthesize
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
