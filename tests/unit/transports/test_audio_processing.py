"""Transport audio options from Pipecat 1.x: in/out filters, volume, mixer, stream-on-start."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from callpipe.audio.filters.base_audio_filter import BaseAudioFilter
from callpipe.audio.mixers.base_audio_mixer import BaseAudioMixer
from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    EndFrame,
    FilterControlFrame,
    FilterEnableFrame,
    Frame,
    InputAudioRawFrame,
    InputTransportStartAudioStreamingFrame,
    MixerControlFrame,
    MixerEnableFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    VolumeFrame,
    VolumeGainFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.worker import PipelineParams, PipelineWorker
from callpipe.testing import run_test
from callpipe.testing.virtual_clock import run_virtual
from callpipe.transports.base_input import BaseInputTransport
from callpipe.transports.base_transport import TransportParams

from ..pipeline.helpers import Recorder
from .test_output_pacing import RATE, FakeOutput, started


class Halve(BaseAudioFilter):
    """Halves every sample; records its lifecycle."""

    def __init__(self) -> None:
        self.rate = 0
        self.stopped = False
        self.enabled = True

    async def start(self, sample_rate: int) -> None:
        self.rate = sample_rate

    async def stop(self) -> None:
        self.stopped = True

    async def process_frame(self, frame: FilterControlFrame) -> None:
        if isinstance(frame, FilterEnableFrame):
            self.enabled = frame.enable

    async def filter(self, audio: bytes) -> bytes:
        if not self.enabled:
            return audio
        return (np.frombuffer(audio, "<i2") // 2).astype("<i2").tobytes()


class Hum(BaseAudioMixer):
    """Adds a constant 100 to every sample while enabled."""

    def __init__(self) -> None:
        self.rate = 0
        self.enabled = True
        self.stopped = False

    async def start(self, sample_rate: int) -> None:
        self.rate = sample_rate

    async def stop(self) -> None:
        self.stopped = True

    async def process_frame(self, frame: MixerControlFrame) -> None:
        if isinstance(frame, MixerEnableFrame):
            self.enabled = frame.enable

    async def mix(self, audio: bytes) -> bytes:
        if not self.enabled:
            return audio
        return (np.frombuffer(audio, "<i2") + 100).astype("<i2").tobytes()


def first_samples(out: FakeOutput) -> list[int]:
    return [int(np.frombuffer(chunk, "<i2")[0]) for _, kind, chunk in out.sent if kind == "audio"]


def bot(value: int, secs: float = 0.1) -> TTSAudioRawFrame:
    return TTSAudioRawFrame(np.full(int(secs * RATE), value, "<i2").tobytes(), RATE)


# ---------------------------------------------------------------------- input side


async def test_audio_in_filter_runs_before_everything_and_takes_control_frames() -> None:
    audio_filter = Halve()
    transport = BaseInputTransport(
        TransportParams(audio_in_enabled=True, audio_in_filter=audio_filter)
    )
    loud = InputAudioRawFrame(np.full(160, 1000, "<i2").tobytes(), 8000)
    params = PipelineParams(audio_in_sample_rate=8000)
    down, _ = await run_test(transport, [loud, FilterEnableFrame(enable=False)], params=params)
    values = [
        int(np.frombuffer(f.audio, "<i2")[0]) for f in down if isinstance(f, InputAudioRawFrame)
    ]
    assert audio_filter.rate == 8000
    assert values[0] == 500  # filtered
    assert audio_filter.stopped


async def test_audio_in_stream_on_start_false_drops_audio_until_asked() -> None:
    transport = BaseInputTransport(
        TransportParams(audio_in_enabled=True, audio_in_stream_on_start=False)
    )
    rec = Recorder()
    worker = PipelineWorker(Pipeline([transport, rec]), idle_timeout_secs=None)
    run = asyncio.create_task(worker.run())
    for frame in [
        InputAudioRawFrame(bytes(320), 8000),  # dropped: not streaming yet
        InputTransportStartAudioStreamingFrame(),
        InputAudioRawFrame(bytes(320), 8000),
        EndFrame(),
    ]:
        await worker.queue_frame(frame)
        await asyncio.sleep(0.05)  # audio is a system frame: let the control frame land first
    await asyncio.wait_for(run, 5)
    assert sum(isinstance(f, InputAudioRawFrame) for f in rec.seen) == 1


# ---------------------------------------------------------------------- output side


def test_volume_and_gain_scale_bot_audio_in_order() -> None:
    async def scenario() -> list[int]:
        out = FakeOutput(audio_out_volume=0.5, audio_out_max_message_ms=0)  # per packet
        await started(out)
        for frame in [bot(1000), VolumeGainFrame(gain=0.5), bot(1000), VolumeFrame(volume=2.0)]:
            await out.queue_frame(frame)
        await out.queue_frame(VolumeGainFrame(gain=1.0))
        await out.queue_frame(bot(1000))
        await out.queue_frame(TTSStoppedFrame())
        await asyncio.sleep(1.0)
        await out.cleanup()
        return first_samples(out)

    values = run_virtual(scenario())
    assert values[:5] == [500] * 5 and values[5:10] == [250] * 5 and values[10:15] == [2000] * 5


def test_audio_out_filter_then_mixer_on_bot_audio() -> None:
    async def scenario() -> tuple[list[int], Halve, Hum]:
        audio_filter, mixer = Halve(), Hum()
        out = FakeOutput(audio_out_filter=audio_filter, audio_out_mixer=mixer)
        await started(out)
        await out.queue_frame(bot(1000))
        await asyncio.sleep(0.5)
        await out.cleanup()
        return first_samples(out), audio_filter, mixer

    values, audio_filter, mixer = run_virtual(scenario())
    assert 600 in values  # 1000 halved, then +100 from the mixer
    assert audio_filter.rate == mixer.rate == RATE
    assert audio_filter.stopped and mixer.stopped


def test_mixer_keeps_the_wire_fed_while_idle_paced_in_real_time() -> None:
    async def scenario() -> tuple[list[tuple[float, str, Any]], float, list[Frame]]:
        mixer = Hum()
        out = FakeOutput(audio_out_mixer=mixer)
        down = await started(out)
        t0 = asyncio.get_running_loop().time()
        await asyncio.sleep(1.0)  # nobody speaks: background only
        await out.queue_frame(MixerEnableFrame(enable=False))
        await asyncio.sleep(0.2)
        await out.cleanup()
        return out.sent, t0, [f for _, f in down.timed]

    sent, t0, frames = run_virtual(scenario())
    idle = [(t - t0, np.frombuffer(c, "<i2")) for t, kind, c in sent if kind == "audio"]
    first_second = [t for t, _ in idle if t < 1.0]
    assert 48 <= len(first_second) <= 51  # one 20 ms packet per 20 ms, no burst
    gaps = np.diff(first_second)
    assert float(gaps.max()) <= 0.0201 and float(gaps.min()) >= 0.0199
    assert all(int(c[0]) == 100 for t, c in idle if t < 0.99)  # mix(silence) = the hum
    assert all(int(c.max()) == 0 for t, c in idle if t > 1.05)  # disabled: silence, still sent
    assert any(t > 1.15 for t, _ in idle)
    assert not any(isinstance(f, BotStartedSpeakingFrame) for f in frames)  # not bot speech


def test_bot_audio_takes_over_from_the_idle_mixer_and_hands_back() -> None:
    async def scenario() -> tuple[list[tuple[float, int]], float]:
        out = FakeOutput(
            audio_out_mixer=Hum(), audio_out_send_ahead_ms=0, audio_out_max_message_ms=0
        )
        await started(out)
        t0 = asyncio.get_running_loop().time()
        await asyncio.sleep(0.2)
        await out.queue_frame(bot(1000, secs=0.2))
        await out.queue_frame(TTSStoppedFrame())
        await asyncio.sleep(1.0)
        await out.cleanup()
        samples = [
            (t - t0, int(np.frombuffer(c, "<i2")[0])) for t, kind, c in out.sent if kind == "audio"
        ]
        return samples, t0

    samples, _ = run_virtual(scenario())
    bot_packets = [t for t, v in samples if v == 1100]
    assert len(bot_packets) == 10  # all bot audio went out, mixed
    during = [v for t, v in samples if bot_packets[0] < t <= bot_packets[-1]]
    assert set(during) == {1100}  # no idle packets interleaved with the bot's
    assert any(v == 100 for t, v in samples if t > bot_packets[-1] + 0.1)  # background resumes
    per_second = [t for t, _ in samples if 0.0 <= t < 1.0]
    assert len(per_second) <= 52  # the takeover did not double the packet rate
