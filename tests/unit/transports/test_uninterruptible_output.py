"""BaseOutputTransport and uninterruptible audio (``frame.interruptible = False``): a barge-in
while it plays leaves the stream alone; audio and frames that may be cut still are."""

from __future__ import annotations

import asyncio

import pytest

from callpipe.frames.frames import (
    BotInterruptedFrame,
    BotStoppedSpeakingFrame,
    InterruptionFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from callpipe.testing.virtual_clock import run_virtual

from .test_output_pacing import FakeOutput, TimedCollector, speech, started


def kept(frame: TTSTextFrame | TTSStoppedFrame) -> TTSTextFrame | TTSStoppedFrame:
    frame.interruptible = False
    return frame


def written_secs(out: FakeOutput) -> float:
    return sum(len(chunk) for _, kind, chunk in out.sent if kind == "audio") / 2 / 8000


async def interrupt_at(out: FakeOutput, down: TimedCollector, secs: float) -> None:
    await asyncio.sleep(secs)
    await out.queue_frame(InterruptionFrame())
    await asyncio.sleep(2.0)
    await out.cleanup()
    await down.cleanup()


def test_a_barge_in_does_not_cut_uninterruptible_audio() -> None:
    async def scenario() -> tuple[FakeOutput, TimedCollector]:
        out = FakeOutput(audio_out_send_ahead_ms=40)
        down = await started(out)
        held = speech(1.0)
        held.interruptible = False
        await out.queue_frame(held)
        await out.queue_frame(kept(TTSTextFrame("please hold")))
        await out.queue_frame(kept(TTSStoppedFrame()))
        await out.queue_frame(speech(1.0))  # an ordinary reply queued behind it
        await out.queue_frame(TTSTextFrame("dropped"))
        await interrupt_at(out, down, 0.3)
        return out, down

    out, down = run_virtual(scenario())
    assert written_secs(out) == pytest.approx(1.0)
    assert "clear" not in [kind for _, kind, _ in out.sent]
    assert not [f for f in down.frames if isinstance(f, BotInterruptedFrame)]
    assert [f.text for f in down.frames if isinstance(f, TTSTextFrame)] == ["please hold"]
    # The bot stops speaking once, when the kept audio has played (about 1 s in).
    (stopped_at,) = [t for t, f in down.timed if isinstance(f, BotStoppedSpeakingFrame)]
    (cut_at,) = [t for t, f in down.timed if isinstance(f, InterruptionFrame)]
    assert stopped_at - cut_at >= 0.6


def test_an_uninterruptible_frame_behind_ordinary_audio_does_not_save_it() -> None:
    async def scenario() -> tuple[FakeOutput, TimedCollector]:
        out = FakeOutput(audio_out_send_ahead_ms=40)
        down = await started(out)
        await out.queue_frame(speech(0.2))
        await out.queue_frame(kept(TTSTextFrame("held until played")))
        await out.queue_frame(speech(1.0))
        # Cut while the text still waits for the end of the first audio to be played.
        await interrupt_at(out, down, 0.17)
        return out, down

    out, down = run_virtual(scenario())
    assert written_secs(out) < 0.4
    assert [kind for _, kind, _ in out.sent].count("clear") == 1
    assert [f for f in down.frames if isinstance(f, BotInterruptedFrame)]
