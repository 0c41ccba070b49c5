"""An uninterruptible ``TTSSpeakFrame`` (``interruptible = False``, Pipecat 1.14) is spoken to
the end when the caller barges in while it plays: the TTS keeps its reply and the output
transport keeps its audio. Ordinary speech is cut as before, and what was queued behind the
uninterruptible speech is dropped."""

from __future__ import annotations

import pytest

from callpipe.frames.frames import (
    BotInterruptedFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterruptionFrame,
    TTSSpeakFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.testing.pipeline import SleepFrame, run_test
from callpipe.testing.virtual_clock import run_virtual

from ..transports.test_output_pacing import FakeOutput
from .helpers import PHONE as PARAMS
from .helpers import interruption_at
from .test_tts_interruption import StreamingTTS

SPEECH_SECS = 1.0  # StreamingTTS gives each utterance a second of audio


def speak(text: str, *, interruptible: bool) -> TTSSpeakFrame:
    frame = TTSSpeakFrame(text)
    frame.interruptible = interruptible
    return frame


def barge_in_while_speaking(first: TTSSpeakFrame) -> tuple[FakeOutput, list[Frame]]:
    """Speak ``first`` and then an ordinary utterance; the caller barges in 0.3 s into the
    first. Returns the output transport and the frames that left it."""
    tts = StreamingTTS()
    tts.cancel_gate.set()  # the provider acknowledges cancels at once
    out = FakeOutput(audio_out_send_ahead_ms=40)

    async def scenario() -> list[Frame]:
        down, _ = await run_test(
            Pipeline([tts, out]),
            [
                first,
                speak("Queued behind it.", interruptible=True),
                SleepFrame(0.3),
                InterruptionFrame(),
                SleepFrame(3.0),
            ],
            params=PARAMS,
        )
        return down

    return out, run_virtual(scenario())


def written_secs(out: FakeOutput) -> float:
    return sum(len(chunk) for _, kind, chunk in out.sent if kind == "audio") / 2 / 8000


def test_uninterruptible_speech_is_played_to_the_end_through_a_barge_in() -> None:
    out, down = barge_in_while_speaking(speak("Please hold.", interruptible=False))
    # All of it reached the far end, and nothing of the utterance queued behind it.
    assert written_secs(out) == pytest.approx(SPEECH_SECS)
    assert "clear" not in [kind for _, kind, _ in out.sent]
    assert not [f for f in down if isinstance(f, BotInterruptedFrame)]
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ["Please hold."]
    stopped = [i for i, f in enumerate(down) if isinstance(f, TTSStoppedFrame)]
    bot_stopped = [i for i, f in enumerate(down) if isinstance(f, BotStoppedSpeakingFrame)]
    assert len(stopped) == 1 and len(bot_stopped) == 1
    assert bot_stopped[0] > interruption_at(down)


def test_ordinary_speech_is_cut_by_the_same_barge_in() -> None:
    out, down = barge_in_while_speaking(speak("Please hold.", interruptible=True))
    assert written_secs(out) < 0.5  # the barge-in came 0.3 s in (plus the send-ahead)
    assert "clear" in [kind for _, kind, _ in out.sent]
    assert [f for f in down if isinstance(f, BotInterruptedFrame)]
