"""UtteranceEchoProcessor: what the caller said comes back, with pre-roll, once per utterance."""

from __future__ import annotations

from callpipe.frames.frames import (
    InputAudioRawFrame,
    SpeechOutputAudioRawFrame,
    TTSStoppedFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.processors.audio.utterance_echo import UtteranceEchoProcessor
from callpipe.testing import run_test


def packet(value: int) -> InputAudioRawFrame:
    return InputAudioRawFrame(bytes([value, 0]) * 160, 8000)  # 20 ms at 8 kHz


async def test_echoes_utterance_with_preroll() -> None:
    echo = UtteranceEchoProcessor(preroll_secs=0.04)
    frames = [packet(1), packet(2), packet(3)]  # silence before speech: only 40 ms kept
    frames += [UserStartedSpeakingFrame(), packet(4), packet(5), UserStoppedSpeakingFrame()]
    frames += [packet(6)]
    down, _ = await run_test(echo, frames)
    replies = [f for f in down if isinstance(f, SpeechOutputAudioRawFrame)]
    assert len(replies) == 1
    audio = replies[0].audio
    assert [audio[i * 320] for i in range(len(audio) // 320)] == [2, 3, 4, 5]
    assert replies[0].sample_rate == 8000
    kinds = [type(f).__name__ for f in down]
    assert kinds.index("UserStoppedSpeakingFrame") < kinds.index("SpeechOutputAudioRawFrame")
    assert isinstance(down[kinds.index("SpeechOutputAudioRawFrame") + 1], TTSStoppedFrame)
    assert echo.utterances == 1


async def test_caps_a_never_ending_utterance() -> None:
    echo = UtteranceEchoProcessor(preroll_secs=0.0, max_secs=0.1)
    frames = [
        UserStartedSpeakingFrame(),
        *(packet(7) for _ in range(50)),
        UserStoppedSpeakingFrame(),
    ]
    down, _ = await run_test(echo, frames)
    (reply,) = [f for f in down if isinstance(f, SpeechOutputAudioRawFrame)]
    assert len(reply.audio) == 5 * 320  # 100 ms, not 1 s


async def test_no_reply_without_speech() -> None:
    down, _ = await run_test(UtteranceEchoProcessor(), [packet(1), packet(2)])
    assert not [f for f in down if isinstance(f, SpeechOutputAudioRawFrame)]
