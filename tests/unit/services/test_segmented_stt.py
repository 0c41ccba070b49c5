"""SegmentedSTTService at the pipeline's end: recorded utterances are transcribed first."""

from __future__ import annotations

import asyncio
import logging

import pytest

from callpipe.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.services.stt_service import SegmentedSTTService
from callpipe.testing import run_test

from .helpers import PHONE as PARAMS

RATE = 8000


class SlowSTT(SegmentedSTTService):
    """Takes ``delay`` seconds of real time per utterance, like a busy provider or model."""

    def __init__(self, delay: float, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.delay = delay
        self.count = 0

    async def run_stt(self, wav: bytes) -> str | None:
        await asyncio.sleep(self.delay)
        self.count += 1
        return f"utterance {self.count}"


def turn() -> list[Frame]:
    step = RATE // 50 * 2
    return [
        UserStartedSpeakingFrame(),
        *[InputAudioRawFrame(b"\x10\x00" * (step // 2), RATE) for _ in range(25)],
        UserStoppedSpeakingFrame(),
    ]


async def test_recorded_utterances_are_transcribed_before_the_end_frame() -> None:
    down, _ = await run_test(SlowSTT(0.2), [*turn(), *turn(), *turn()], params=PARAMS)
    texts = [f.text for f in down if isinstance(f, TranscriptionFrame)]
    assert texts == ["utterance 1", "utterance 2", "utterance 3"]
    last_transcript = max(i for i, f in enumerate(down) if isinstance(f, TranscriptionFrame))
    assert isinstance(down[-1], EndFrame) and last_transcript < len(down) - 1


async def test_the_end_waits_only_end_timeout_secs(caplog: pytest.LogCaptureFixture) -> None:
    stt = SlowSTT(30.0)
    stt.end_timeout_secs = 0.2
    with caplog.at_level(logging.WARNING):
        down, _ = await run_test(stt, [*turn(), *turn()], params=PARAMS)
    assert not [f for f in down if isinstance(f, TranscriptionFrame)]
    assert isinstance(down[-1], EndFrame)
    assert "2 utterance(s) not transcribed within 0.2 s of the end" in caplog.text
