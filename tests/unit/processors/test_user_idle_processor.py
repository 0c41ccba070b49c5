"""UserIdleProcessor: timer from the end of bot playback, retries, stop, reset by speech."""

from __future__ import annotations

import asyncio

from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.processors.user_idle_processor import UserIdleProcessor
from callpipe.testing import run_test
from callpipe.testing.pipeline import SleepFrame


async def test_retries_count_and_false_stops_watching() -> None:
    counts: list[int] = []

    async def on_idle(processor: UserIdleProcessor, retry_count: int) -> bool:
        counts.append(retry_count)
        if retry_count < 2:
            # The prompt is spoken and played: the next silence counts from its end.
            await processor.queue_frame(BotStartedSpeakingFrame())
            await processor.queue_frame(BotStoppedSpeakingFrame())
        return retry_count < 2

    idle = UserIdleProcessor(callback=on_idle, timeout=0.1)
    frames = [BotStartedSpeakingFrame(), BotStoppedSpeakingFrame(), SleepFrame(0.6)]
    await run_test(idle, frames)
    assert counts == [1, 2]


async def test_speech_resets_and_nothing_fires_while_the_bot_plays() -> None:
    fired: list[float] = []
    loop = asyncio.get_running_loop()

    async def on_idle(processor: UserIdleProcessor) -> None:
        fired.append(loop.time())

    idle = UserIdleProcessor(callback=on_idle, timeout=0.15)
    t0 = loop.time()
    frames = [
        BotStartedSpeakingFrame(),
        SleepFrame(0.3),  # playing
        BotStoppedSpeakingFrame(),
        SleepFrame(0.1),
        UserStartedSpeakingFrame(),  # the caller answers in time
        SleepFrame(0.3),
        UserStoppedSpeakingFrame(),
        BotStartedSpeakingFrame(),
        BotStoppedSpeakingFrame(),
        SleepFrame(0.25),
    ]
    await run_test(idle, frames)
    assert len(fired) == 1 and fired[0] - t0 >= 0.7 + 0.15 - 0.02
