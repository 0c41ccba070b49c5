"""TTSService on a barge-in: the interruption goes downstream before the service waits on
anything (its output task's end, the provider's cancel), and the old reply stays dropped."""

from __future__ import annotations

import asyncio

from callpipe.frames.frames import (
    Frame,
    InterruptionFrame,
    TTSAudioRawFrame,
    TTSTextFrame,
)
from callpipe.services.tts_service import TTSService
from callpipe.testing.pipeline import SleepFrame

from .helpers import PHONE as PARAMS
from .helpers import audio_secs, interruption_at, reply, run_then


class StreamingTTS(TTSService):
    """A socket-style provider: audio comes later from "the provider"; cancelling a context
    takes as long as the test says (a slow provider socket)."""

    def __init__(self) -> None:
        super().__init__(sample_rate=8000)
        self.cancel_gate = asyncio.Event()
        self.cancel_started: list[str] = []
        self.seen_by_cancel: list[bool] = []
        self.downstream_frames: list[Frame] | None = None

    async def run_tts(self, text: str, context_id: str) -> None:
        async def speak() -> None:
            for _ in range(50):  # 1 s of audio per sentence, in 20 ms chunks
                await self.append_audio(context_id, b"\x01\x00" * 160)
                await asyncio.sleep(0)

        self.create_task(speak(), "speak")

    async def flush_context(self, context_id: str) -> None:
        await asyncio.sleep(0.05)
        await self.finish_context(context_id)

    async def cancel_context(self, context_id: str) -> None:
        self.cancel_started.append(context_id)
        frames = self.downstream_frames or []
        self.seen_by_cancel.append(any(isinstance(f, InterruptionFrame) for f in frames))
        await self.cancel_gate.wait()


async def test_interruption_passes_on_before_the_provider_cancel() -> None:
    tts = StreamingTTS()
    gate = tts.cancel_gate

    async def open_gate_later() -> None:
        await asyncio.sleep(0.1)
        gate.set()

    opener = asyncio.get_running_loop().create_task(open_gate_later())

    def started(out: list[Frame]) -> bool:
        tts.downstream_frames = out
        return any(isinstance(f, TTSAudioRawFrame) for f in out)

    down = await run_then(
        tts,
        reply("A long first answer."),
        [InterruptionFrame(), SleepFrame(0.3), *reply("Fresh start.")],
        when=started,
        params=PARAMS,
    )
    await opener
    assert tts.cancel_started, "the dropped reply was never cancelled at the provider"
    # The provider's cancel began with the interruption already downstream (it used to wait
    # for the output task and every cancel first).
    assert tts.seen_by_cancel == [True] * len(tts.cancel_started)
    cut = interruption_at(down)
    old = {f.context_id for f in down[:cut] if isinstance(f, TTSAudioRawFrame)}
    after = down[cut:]
    assert old and not [f for f in after if isinstance(f, TTSAudioRawFrame) and f.context_id in old]
    assert [f.text for f in after if isinstance(f, TTSTextFrame)] == ["Fresh start."]
    assert abs(audio_secs(after) - 1.0) < 1e-6
