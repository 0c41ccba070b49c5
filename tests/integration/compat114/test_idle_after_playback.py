"""Idle prompts start only after the bot's audio finished *playing* on the phone.

The bot sends a 2.5 s greeting in one burst (the output paces it in real time; the simulator
acknowledges playback marks only once the audio before them has played) and asks for an idle
prompt after 1.0 s of caller silence. The prompt must start about 1.0 s after the greeting
*ended* in the simulator's recording, for both the 1.14 aggregator (``user_idle_timeout`` +
``on_user_turn_idle``) and the standalone ``UserIdleProcessor``. With a network stall in the
middle of the greeting the phone plays its end a second after it was sent; a timer counted from
sending would then fire while the caller still hears the greeting.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest
from fastapi import WebSocket

from callpipe.frames.frames import Frame, TTSAudioRawFrame, TTSStartedFrame, TTSStoppedFrame
from callpipe.pipeline.task import PipelineTask
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from callpipe.processors.frame_processor import FrameProcessor
from callpipe.processors.user_idle_processor import UserIdleProcessor
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.simulator import NetworkFaults
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

IDLE = 1.0
GREETING_SECS = 2.5


def utterance(secs: float, freq: float) -> list[Frame]:
    return [
        TTSStartedFrame(),
        TTSAudioRawFrame(tone_pcm(secs, RATE, freq), RATE, 1),
        TTSStoppedFrame(),
    ]


async def run_bot(websocket: WebSocket, start: dict[str, Any], kind: str) -> None:
    transport = phone_transport(websocket, twilio_serializer(start))
    task: PipelineTask

    async def prompt() -> None:
        await task.queue_frames(utterance(0.4, 660))

    watcher: FrameProcessor
    if kind == "aggregator":
        user, _ = LLMContextAggregatorPair(
            LLMContext(), user_params=LLMUserAggregatorParams(user_idle_timeout=IDLE)
        )
        user.add_event_handler("on_user_turn_idle", lambda aggregator: prompt())
        watcher = user
    else:

        async def on_idle(processor: UserIdleProcessor, retry_count: int) -> bool:
            await prompt()
            return True

        watcher = UserIdleProcessor(callback=on_idle, timeout=IDLE)
    task = phone_task([transport.input(), watcher, transport.output()])

    @transport.event_handler("on_client_connected")
    async def on_connected(transport: Any, client: Any) -> None:
        await task.queue_frames(utterance(GREETING_SECS, 440))

    await run_until_hangup(transport, task)


@pytest.mark.parametrize(
    ("kind", "stall"), [("aggregator", False), ("processor", False), ("aggregator", True)]
)
@virtual_time
async def test_idle_prompt_counts_from_the_end_of_playback(kind: str, stall: bool) -> None:
    faults = NetworkFaults(stall_at=1.2, stall_secs=1.0) if stall else None
    async with call_bot(functools.partial(run_bot, kind=kind), faults=faults) as call:
        assert await call.wait_for_bot_speech(timeout=5)
        await asyncio.sleep(GREETING_SECS + (1.0 if stall else 0.0) + IDLE + 0.8)
        await call.wait_for_bot_silence(quiet_secs=0.2, timeout=3)
        await call.hang_up()
        result = call.result()

    regions = result.bot_regions()
    greeting_end, prompt_region = regions[-2][1], regions[-1]
    heard = sum(e - s for s, e in regions[:-1])
    assert heard == pytest.approx(GREETING_SECS, abs=0.15)  # the whole greeting was played
    assert prompt_region[1] - prompt_region[0] == pytest.approx(0.4, abs=0.1)
    gap = prompt_region[0] - greeting_end
    print(f"bot regions {[(round(s, 2), round(e, 2)) for s, e in regions]}")
    # From the end of what the caller heard; a timer started at send time would have fired
    # while the greeting was still playing (gap < 0) or right at its end.
    assert IDLE - 0.05 <= gap <= IDLE + 0.3, gap
