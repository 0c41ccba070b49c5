"""AudioBufferProcessor on a real call: its two tracks line up with what the caller heard.

The call simulator records what a phone would have played (bot) and what it sent (caller). The
bot here plays two tones at known times and the caller plays one in between; the recorder after
``transport.output()`` must place each onset and end where the simulator heard it, within 20 ms
(both recordings start at different instants, so onsets are compared relative to each other).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import numpy as np
import pytest
from fastapi import WebSocket

from callpipe.frames.frames import TTSAudioRawFrame, TTSStartedFrame, TTSStoppedFrame
from callpipe.processors.audio.audio_buffer_processor import AudioBufferProcessor
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.virtual_calls import virtual_time

from ..call_bot import (
    RATE,
    call_bot,
    phone_task,
    phone_transport,
    run_until_hangup,
    twilio_serializer,
)

pytestmark = pytest.mark.integration

TOLERANCE = 0.020


def regions(
    samples: np.ndarray, threshold: int = 1500, gap: float = 0.1
) -> list[tuple[float, float]]:
    """(start, end) seconds of stretches above ``threshold``, merging gaps shorter than ``gap``."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    if loud.size == 0:
        return []
    out: list[list[int]] = [[int(loud[0]), int(loud[0])]]
    for i in loud[1:]:
        if i - out[-1][1] > gap * RATE:
            out.append([int(i), int(i)])
        else:
            out[-1][1] = int(i)
    return [(s / RATE, e / RATE) for s, e in out]


async def run_bot(
    websocket: WebSocket, start: dict[str, Any], recorded: dict[str, bytes], underrun: bool
) -> None:
    transport = phone_transport(websocket, twilio_serializer(start))
    recorder = AudioBufferProcessor(num_channels=2, auto_start_recording=True)

    @recorder.event_handler("on_track_audio_data")
    async def on_tracks(p: Any, user: bytes, bot: bytes, rate: int, ch: int) -> None:
        recorded["user"] = recorded.get("user", b"") + user
        recorded["bot"] = recorded.get("bot", b"") + bot

    task = phone_task([transport.input(), transport.output(), recorder])

    async def speak(secs: float, freq: float) -> None:
        await task.queue_frames(
            [
                TTSStartedFrame(),
                TTSAudioRawFrame(tone_pcm(secs, RATE, freq), RATE, 1),
                TTSStoppedFrame(),
            ]
        )

    async def script() -> None:
        if underrun:
            # One reply whose second half comes 0.3 s late: the phone runs dry in between.
            await task.queue_frames(
                [TTSStartedFrame(), TTSAudioRawFrame(tone_pcm(0.4, RATE, 440), RATE, 1)]
            )
            await asyncio.sleep(0.7)
            await task.queue_frames(
                [TTSAudioRawFrame(tone_pcm(0.4, RATE, 440), RATE, 1), TTSStoppedFrame()]
            )
        else:
            await speak(0.6, 440)
        await asyncio.sleep(2.2)
        await speak(0.5, 660)

    scripts: list[asyncio.Task[None]] = []

    @transport.event_handler("on_client_connected")
    async def on_connected(transport: Any, client: Any) -> None:
        scripts.append(asyncio.get_running_loop().create_task(script()))

    await run_until_hangup(transport, task)


@pytest.mark.parametrize("underrun", [False, True])
@virtual_time
async def test_recorder_tracks_line_up_with_the_simulator_recording(underrun: bool) -> None:
    recorded: dict[str, bytes] = {}
    bot = functools.partial(run_bot, recorded=recorded, underrun=underrun)
    async with call_bot(bot) as call:
        assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.3)
        await call.pause(0.3)
        await call.say(tone_pcm(0.4, RATE, 1000, amplitude=6000))
        assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.3)
        await call.hang_up()
        result = call.result()

    sim_bot, sim_caller = regions(result.bot), regions(result.caller)
    our_bot = regions(np.frombuffer(recorded["bot"], dtype=np.int16))
    our_caller = regions(np.frombuffer(recorded["user"], dtype=np.int16))
    expected_bot = 3 if underrun else 2
    assert len(sim_bot) == len(our_bot) == expected_bot, (sim_bot, our_bot)
    assert len(sim_caller) == len(our_caller) == 1, (sim_caller, our_caller)

    def relative(bot: list[tuple[float, float]], caller: list[tuple[float, float]]) -> list[float]:
        origin = bot[0][0]
        edges = [t for region in bot for t in region][1:]
        return [t - origin for t in edges] + [caller[0][0] - origin, caller[0][1] - origin]

    sim = relative(sim_bot, sim_caller)
    ours = relative(our_bot, our_caller)
    errors = [abs(a - b) for a, b in zip(sim, ours, strict=True)]
    print(f"alignment errors (s): {[round(e, 4) for e in errors]}")
    assert max(errors) <= TOLERANCE, (sim, ours)
