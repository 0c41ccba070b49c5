"""VoicemailDetector and its gate, driven frame by frame (no server, no real time)."""

from __future__ import annotations

import asyncio

import pytest

from callpipe.extensions.voicemail import TTSGate, VoicemailDetector
from callpipe.frames.frames import (
    EndTaskFrame,
    InputAudioRawFrame,
    TextFrame,
    TTSSpeakFrame,
)
from callpipe.testing.pipeline import SleepFrame, run_test
from callpipe.testing.simulator.personas import PERSONAS

pytest.importorskip("espeakng_loader", reason="needs the espeak extra")


def packets(pcm: bytes, rate: int = 8000) -> list[InputAudioRawFrame]:
    step = rate // 50 * 2
    return [InputAudioRawFrame(pcm[i : i + step], rate, 1) for i in range(0, len(pcm), step)]


async def test_voicemail_blocks_the_greeting_then_speaks_and_ends() -> None:
    detector = VoicemailDetector(voicemail_message="Please call back.", timeout=60.0)
    voicemail: list[int] = []

    @detector.event_handler("on_voicemail_detected")
    async def on_voicemail(_: object) -> None:
        voicemail.append(1)

    pcm = await PERSONAS["voicemail"].render(8000)
    down, up = await run_test(detector, packets(pcm))
    audio_out = [f for f in down if isinstance(f, InputAudioRawFrame)]
    # Audio passes only until the machine verdict (2.56 s = 128 packets), never after it.
    assert 100 < len(audio_out) < 140
    assert [f.text for f in down if isinstance(f, TTSSpeakFrame)] == ["Please call back."]
    assert any(isinstance(f, EndTaskFrame) for f in up)
    assert voicemail == [1]
    assert [r for r, _ in detector.results] == ["machine_start", "machine_end_beep"]


async def test_human_passes_everything_and_never_ends_the_call() -> None:
    detector = VoicemailDetector(voicemail_message="Please call back.", timeout=60.0)
    pcm = await PERSONAS["human"].render(8000)
    frames = packets(pcm)
    down, up = await run_test(detector, frames)
    assert len([f for f in down if isinstance(f, InputAudioRawFrame)]) == len(frames)
    assert not any(isinstance(f, TTSSpeakFrame) for f in down)
    assert not any(isinstance(f, EndTaskFrame) for f in up)
    assert detector.result == "human"


async def test_decision_timeout_is_pipecats_name_for_the_human_silence() -> None:
    slow = VoicemailDetector(decision_timeout=1.5, timeout=60.0, llm=object())
    pcm = await PERSONAS["human"].render(8000)
    await run_test(slow, packets(pcm))
    assert slow.results[0][0] == "human" and slow.results[0][1] > 2.0


async def test_gate_holds_in_order_until_released() -> None:
    gate = TTSGate()

    async def release_later() -> None:
        await asyncio.sleep(0.1)
        await gate.release()

    task = asyncio.create_task(release_later())
    down, _ = await run_test(gate, [TextFrame("a"), TextFrame("b"), SleepFrame(0.3)])
    await task
    assert [f.text for f in down if isinstance(f, TextFrame)] == ["a", "b"]


async def test_gate_drop_discards_what_was_held() -> None:
    gate = TTSGate()

    async def drop_later() -> None:
        await asyncio.sleep(0.1)
        gate.drop()

    task = asyncio.create_task(drop_later())
    frames = [TextFrame("greeting"), SleepFrame(0.3), TextFrame("message")]
    down, _ = await run_test(gate, frames)
    await task
    assert [f.text for f in down if isinstance(f, TextFrame)] == ["message"]


async def test_provider_verdict_classifies_before_the_audio_does() -> None:
    detector = VoicemailDetector(voicemail_message="Please call back.", timeout=60.0)

    async def provider_says_beep() -> None:
        await asyncio.sleep(0.05)
        await detector.provider_verdict("machine_end_beep")

    task = asyncio.create_task(provider_says_beep())
    down, up = await run_test(detector, [SleepFrame(0.2)])
    await task
    assert detector.results == [("machine_end_beep", 0.0)]
    assert [f.text for f in down if isinstance(f, TTSSpeakFrame)] == ["Please call back."]
    assert any(isinstance(f, EndTaskFrame) for f in up)
