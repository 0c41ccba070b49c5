"""BaseOutputTransport pacing, interruption and playback tracking on a virtual clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from callpipe.frames.frames import (
    BotInterruptedFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    StartFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessorSetup
from callpipe.testing.pipeline import FrameCollector
from callpipe.testing.virtual_clock import run_virtual
from callpipe.transports.base_output import BaseOutputTransport
from callpipe.transports.base_transport import TransportParams

RATE = 8000
CHUNK = 320  # 20 ms of PCM16 at 8 kHz


class FakeOutput(BaseOutputTransport):
    def __init__(self, *, marks: bool = False, **params: Any) -> None:
        super().__init__(
            TransportParams(audio_out_enabled=True, audio_out_sample_rate=RATE, **params)
        )
        self.marks = marks
        self.sent: list[tuple[float, str, Any]] = []
        self.stall_at: int | None = None
        self.stall_secs = 0.3

    @property
    def supports_marks(self) -> bool:
        return self.marks

    async def write_audio_chunk(self, chunk: bytes) -> bool:
        loop = asyncio.get_running_loop()
        if self.stall_at is not None and len(self.audio_times()) == self.stall_at:
            await asyncio.sleep(self.stall_secs)  # the event loop was busy elsewhere
        self.sent.append((loop.time(), "audio", chunk))
        return True

    async def send_clear(self) -> None:
        self.sent.append((asyncio.get_running_loop().time(), "clear", None))

    async def send_mark(self, name: str) -> bool:
        self.sent.append((asyncio.get_running_loop().time(), "mark", name))
        return self.marks

    def audio_times(self) -> list[float]:
        return [t for t, kind, _ in self.sent if kind == "audio"]


class TimedCollector(FrameCollector):
    def __init__(self) -> None:
        super().__init__(FrameDirection.DOWNSTREAM)
        self.timed: list[tuple[float, Frame]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        self.timed.append((asyncio.get_running_loop().time(), frame))
        await super().process_frame(frame, direction)


async def started(out: FakeOutput) -> TimedCollector:
    down = TimedCollector()
    out.link(down)
    await out.setup(FrameProcessorSetup())
    await down.setup(FrameProcessorSetup())
    await out.queue_frame(StartFrame(audio_out_sample_rate=16000))
    await down.queue_frame(StartFrame())
    return down


def speech(seconds: float) -> TTSAudioRawFrame:
    return TTSAudioRawFrame(b"\x10\x00" * int(seconds * RATE), RATE)


def test_chunks_follow_the_schedule_without_drift() -> None:
    async def scenario() -> list[float]:
        out = FakeOutput(
            audio_out_send_ahead_ms=40, audio_out_max_message_ms=0
        )  # one message per packet
        await started(out)
        t0 = asyncio.get_running_loop().time()
        await out.queue_frame(speech(1.0))
        await out.queue_frame(TTSStoppedFrame())
        await asyncio.sleep(2.0)
        await out.cleanup()
        await out.next.cleanup()  # type: ignore[union-attr]
        return [t - t0 for t in out.audio_times()]

    times = run_virtual(scenario())
    assert len(times) == 50
    for n, t in enumerate(times):
        assert t == pytest.approx(max(0.0, n * 0.02 - 0.04), abs=1e-6)


def test_a_late_wake_up_does_not_shift_later_packets() -> None:
    async def scenario() -> list[float]:
        out = FakeOutput(
            audio_out_send_ahead_ms=100, audio_out_max_message_ms=0
        )  # one message per packet
        out.stall_at = 10
        out.stall_secs = 0.05
        await started(out)
        t0 = asyncio.get_running_loop().time()
        await out.queue_frame(speech(1.0))
        await asyncio.sleep(2.0)
        await out.cleanup()
        await out.next.cleanup()  # type: ignore[union-attr]
        return [t - t0 for t in out.audio_times()]

    times = run_virtual(scenario())
    # Packet 10 was due at 0.1 s but the loop stalled until 0.15 s. The far end still had
    # audio buffered (the send-ahead), so later packets keep their slots: no drift.
    assert times[10] == pytest.approx(0.15, abs=1e-6)
    assert times[30] == pytest.approx(30 * 0.02 - 0.1, abs=1e-6)


def test_falling_behind_the_far_end_reanchors_the_schedule() -> None:
    async def scenario() -> list[float]:
        out = FakeOutput(
            audio_out_send_ahead_ms=20, audio_out_max_message_ms=0
        )  # one message per packet
        out.stall_at = 5
        await started(out)
        t0 = asyncio.get_running_loop().time()
        await out.queue_frame(speech(0.4))
        await asyncio.sleep(2.0)
        await out.cleanup()
        await out.next.cleanup()  # type: ignore[union-attr]
        return [t - t0 for t in out.audio_times()]

    times = run_virtual(scenario())
    # 5 chunks (0.1 s) were sent by 0.08 s; a 0.3 s stall means the far end ran dry at 0.1 s.
    # Playback restarts when packet 5 arrives (0.38 s), so packet 6 is due 20 ms later.
    assert times[5] == pytest.approx(0.38, abs=1e-6)
    assert times[6] - times[5] == pytest.approx(0.0, abs=1e-6)  # 20 ms send-ahead
    assert times[7] - times[6] == pytest.approx(0.02, abs=1e-6)


def test_interruption_clears_and_reports_what_was_heard() -> None:
    async def scenario() -> tuple[FakeOutput, TimedCollector, float]:
        out = FakeOutput(audio_out_send_ahead_ms=40)
        down = await started(out)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await out.queue_frame(speech(0.5))
        await out.queue_frame(TTSTextFrame("first"))
        await out.queue_frame(speech(1.0))
        await out.queue_frame(TTSTextFrame("second"))
        await asyncio.sleep(0.8)
        await out.queue_frame(InterruptionFrame())
        interrupted_at = loop.time() - t0
        await asyncio.sleep(2.0)
        await out.cleanup()
        await out.next.cleanup()  # type: ignore[union-attr]
        return out, down, interrupted_at

    out, down, interrupted_at = run_virtual(scenario())
    kinds = [kind for _, kind, _ in out.sent]
    assert kinds.count("clear") == 1
    assert "audio" not in kinds[kinds.index("clear") :]  # nothing after the clear
    (report,) = [f for f in down.frames if isinstance(f, BotInterruptedFrame)]
    assert report.heard_secs == pytest.approx(interrupted_at, abs=0.021)
    assert report.heard_text == "first"
    texts = [f.text for f in down.frames if isinstance(f, TTSTextFrame)]
    assert texts == ["first"]  # "second" was never heard, so never released
    assert sum(isinstance(f, BotStartedSpeakingFrame) for f in down.frames) == 1
    assert sum(isinstance(f, BotStoppedSpeakingFrame) for f in down.frames) == 1


def test_bot_stops_speaking_only_when_the_last_mark_comes_back() -> None:
    async def scenario() -> tuple[FakeOutput, TimedCollector, float, float]:
        out = FakeOutput(marks=True, audio_out_send_ahead_ms=40)
        down = await started(out)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await out.queue_frame(speech(0.6))
        await out.queue_frame(TTSStoppedFrame())
        await asyncio.sleep(1.2)  # audio ends at 0.6 s; the ack is late
        ack_at = loop.time() - t0
        for _, kind, name in list(out.sent):
            if kind == "mark":
                out.on_mark(name)
        await asyncio.sleep(0.1)
        stopped = [t for t, f in zip_times(down) if isinstance(f, BotStoppedSpeakingFrame)]
        await out.cleanup()
        await out.next.cleanup()  # type: ignore[union-attr]
        return out, down, ack_at, stopped[0] - t0 if stopped else -1.0

    out, down, ack_at, stopped_at = run_virtual(scenario())
    assert any(kind == "mark" for _, kind, _ in out.sent)
    # Audio played out at 0.6 s by the clock, but the far end confirmed it only at 1.2 s:
    # the bot is speaking until then.
    assert ack_at == pytest.approx(1.2)
    assert stopped_at == pytest.approx(1.2, abs=0.02)


def test_lost_acks_fall_back_to_the_grace_period() -> None:
    async def scenario() -> float:
        out = FakeOutput(marks=True, audio_out_send_ahead_ms=40, playback_ack_grace_secs=0.5)
        down = await started(out)
        t0 = asyncio.get_running_loop().time()
        await out.queue_frame(speech(0.6))
        await out.queue_frame(TTSStoppedFrame())
        await asyncio.sleep(3.0)
        await out.cleanup()
        await out.next.cleanup()  # type: ignore[union-attr]
        stops = [t for t, f in down.timed if isinstance(f, BotStoppedSpeakingFrame)]
        return stops[0] - t0

    assert run_virtual(scenario()) == pytest.approx(1.1, abs=0.05)  # 0.6 s + 0.5 s grace


def zip_times(down: TimedCollector) -> list[tuple[float, Frame]]:
    return down.timed


def test_prompt_ack_ends_speaking_at_playout_end() -> None:
    async def scenario() -> float:
        out = FakeOutput(marks=True, audio_out_send_ahead_ms=40)
        down = TimedCollector()
        out.link(down)
        await out.setup(FrameProcessorSetup())
        await out.queue_frame(StartFrame())
        await down.queue_frame(StartFrame())
        loop = asyncio.get_running_loop()
        t0 = loop.time()

        async def acker() -> None:
            acked: set[str] = set()
            while True:
                await asyncio.sleep(0.01)
                for t, kind, name in list(out.sent):
                    # the far end acks a mark when the audio before it has played
                    if kind == "mark" and name not in acked and loop.time() >= t + 0.05:
                        acked.add(name)
                        out.on_mark(name)

        ack_task = asyncio.create_task(acker())
        await out.queue_frame(speech(0.6))
        await out.queue_frame(TTSStoppedFrame())
        await asyncio.sleep(1.5)
        ack_task.cancel()
        await out.cleanup()
        await out.next.cleanup()  # type: ignore[union-attr]
        stops = [t for t, f in down.timed if isinstance(f, BotStoppedSpeakingFrame)]
        return stops[0] - t0

    stopped_at = run_virtual(scenario())
    assert 0.6 <= stopped_at <= 0.75


def test_end_frame_waits_for_playout() -> None:
    async def scenario() -> tuple[float, list[Frame]]:
        out = FakeOutput(audio_out_send_ahead_ms=40)
        finished: list[float] = []

        async def finish(frame: Any) -> None:
            finished.append(asyncio.get_running_loop().time())

        out.finish_call = finish  # type: ignore[method-assign]
        down = await started(out)
        t0 = asyncio.get_running_loop().time()
        await out.queue_frame(speech(0.5))
        await out.queue_frame(EndFrame())
        await asyncio.sleep(1.0)
        await out.cleanup()
        await out.next.cleanup()  # type: ignore[union-attr]
        return finished[0] - t0, down.frames

    finished_at, frames = run_virtual(scenario())
    assert finished_at >= 0.5  # not when the last byte left (0.46 s), when it played
    assert isinstance(frames[-1], EndFrame)


def test_plain_output_audio_at_another_rate_is_resampled_once() -> None:
    async def scenario() -> int:
        out = FakeOutput()
        await started(out)
        await out.queue_frame(OutputAudioRawFrame(b"\x00\x01" * 16000, 16000))
        await out.queue_frame(TTSStoppedFrame())
        await asyncio.sleep(1.5)
        await out.cleanup()
        await out.next.cleanup()  # type: ignore[union-attr]
        return sum(len(c) for _, kind, c in out.sent if kind == "audio")

    total = run_virtual(scenario())
    assert abs(total - 16000) <= CHUNK  # 1 s at 8 kHz, at most one padded chunk more


class PreferringOutput(FakeOutput):
    @property
    def preferred_10ms_chunks(self) -> int | None:
        return 20


def test_far_end_packet_size_is_used_unless_the_app_chose_one() -> None:
    async def scenario(**params: Any) -> list[int]:
        out = PreferringOutput(**params)
        await started(out)
        await out.queue_frame(speech(0.4))
        await asyncio.sleep(1.0)
        await out.cleanup()
        await out.next.cleanup()  # type: ignore[union-attr]
        return [len(c) for _, kind, c in out.sent if kind == "audio"]

    assert run_virtual(scenario()) == [3200, 3200]  # 200 ms packets, as Exotel asks
    assert run_virtual(scenario(audio_out_10ms_chunks=2, audio_out_max_message_ms=0)) == (
        [320] * 20
    )


def test_frames_behind_audio_pass_on_once_it_was_played() -> None:
    from callpipe.frames.frames import LLMFullResponseEndFrame

    async def scenario() -> list[tuple[float, str]]:
        out = FakeOutput(audio_out_send_ahead_ms=40)
        down = await started(out)
        t0 = asyncio.get_running_loop().time()
        await out.queue_frame(speech(0.5))
        await out.queue_frame(LLMFullResponseEndFrame())
        await asyncio.sleep(1.0)
        await out.cleanup()
        await down.cleanup()
        return [(t - t0, type(f).__name__) for t, f in down.timed]

    timed = dict((name, t) for t, name in run_virtual(scenario()))
    assert timed["TTSAudioRawFrame"] == pytest.approx(0.5, abs=0.03)  # a recorder sees it played
    assert timed["LLMFullResponseEndFrame"] == pytest.approx(0.5, abs=0.03)
    assert timed["LLMFullResponseEndFrame"] >= timed["TTSAudioRawFrame"]


# ---------------------------------------------------------------------- coalescing


def test_audio_at_hand_goes_out_in_messages_of_up_to_max_message_ms() -> None:
    async def scenario() -> list[tuple[float, int]]:
        out = FakeOutput(audio_out_send_ahead_ms=40)  # default: up to 80 ms per message
        await started(out)
        t0 = asyncio.get_running_loop().time()
        await out.queue_frame(speech(1.0))
        await out.queue_frame(TTSStoppedFrame())
        await asyncio.sleep(2.0)
        await out.cleanup()
        await out.next.cleanup()  # type: ignore[union-attr]
        return [(t - t0, len(c)) for t, kind, c in out.sent if kind == "audio"]

    sent = run_virtual(scenario())
    assert [size for _, size in sent] == [4 * CHUNK] * 12 + [2 * CHUNK]  # 1 s, nothing lost
    for m, (t, _) in enumerate(sent):  # each at its first packet's slot, 40 ms ahead
        assert t == pytest.approx(max(0.0, m * 0.08 - 0.04), abs=1e-6)


def test_the_first_packet_of_a_reply_is_not_held_back_for_more() -> None:
    async def scenario() -> list[tuple[float, int]]:
        out = FakeOutput(audio_out_send_ahead_ms=40)
        await started(out)
        t0 = asyncio.get_running_loop().time()
        await out.queue_frame(speech(0.02))
        await asyncio.sleep(0.01)
        await out.queue_frame(speech(0.2))
        await asyncio.sleep(1.0)
        await out.cleanup()
        await out.next.cleanup()  # type: ignore[union-attr]
        return [(t - t0, len(c)) for t, kind, c in out.sent if kind == "audio"]

    sent = run_virtual(scenario())
    assert sent[0] == (pytest.approx(0.0, abs=1e-6), CHUNK)  # at once, alone
    assert sum(size for _, size in sent) == 11 * CHUNK
    assert max(size for _, size in sent) == 4 * CHUNK


def test_queued_audio_frames_are_coalesced_and_pass_on_in_order_once_played() -> None:
    async def scenario() -> tuple[list[int], list[tuple[float, Frame]], float]:
        out = FakeOutput(audio_out_send_ahead_ms=40)
        down = await started(out)
        frames = [TTSAudioRawFrame(bytes([n, 0]) * int(0.04 * RATE), RATE) for n in range(1, 6)]
        t0 = asyncio.get_running_loop().time()
        for frame in frames:  # the TTS ran ahead: five 40 ms frames wait in the queue
            out.enqueue_frame(frame)
        out.enqueue_frame(TTSStoppedFrame())
        await asyncio.sleep(1.0)
        await out.cleanup()
        await down.cleanup()
        sizes = [len(c) for _, kind, c in out.sent if kind == "audio"]
        audio = b"".join(c for _, kind, c in out.sent if kind == "audio")
        assert audio == b"".join(f.audio for f in frames)  # every sample, in order
        return sizes, down.timed, t0

    sizes, timed, t0 = run_virtual(scenario())
    assert sizes == [4 * CHUNK, 4 * CHUNK, 2 * CHUNK]  # 3 messages instead of 10
    passed = [(t - t0, f) for t, f in timed if isinstance(f, TTSAudioRawFrame)]
    assert [f.audio[0] for _, f in passed] == [1, 2, 3, 4, 5]
    for n, (t, _) in enumerate(passed, start=1):  # each once its own audio has played
        assert t == pytest.approx(n * 0.04, abs=0.015)


def test_max_message_of_one_packet_or_less_sends_every_packet_alone() -> None:
    async def scenario(max_ms: int) -> list[int]:
        out = FakeOutput(audio_out_max_message_ms=max_ms)
        await started(out)
        await out.queue_frame(speech(0.2))
        await asyncio.sleep(1.0)
        await out.cleanup()
        await out.next.cleanup()  # type: ignore[union-attr]
        return [len(c) for _, kind, c in out.sent if kind == "audio"]

    assert run_virtual(scenario(0)) == [CHUNK] * 10
    assert run_virtual(scenario(30)) == [CHUNK] * 10
    assert run_virtual(scenario(40)) == [2 * CHUNK] * 5


class BlockingOutput(BaseOutputTransport):
    """A peer that takes no audio: each write waits until ``release`` is set."""

    def __init__(self, timeout_option: str = "audio_out_write_timeout") -> None:
        options: dict[str, Any] = {timeout_option: 0.05}
        super().__init__(
            TransportParams(audio_out_enabled=True, audio_out_sample_rate=RATE, **options)
        )
        self.release = asyncio.Event()
        self.timeouts = 0

    async def write_audio_chunk(self, chunk: bytes) -> bool:
        await self.release.wait()
        return True

    async def on_write_timeout(self) -> None:
        self.timeouts += 1


@pytest.mark.parametrize(
    "timeout_option",
    ["audio_out_write_timeout", "audio_out_write_timeout_secs"],  # callpipe's, Pipecat 1.14's
)
async def test_a_blocked_write_times_out_and_the_writer_carries_on(timeout_option: str) -> None:
    out = BlockingOutput(timeout_option)
    assert out._params.audio_out_write_timeout_secs == 0.05
    assert await out._write_with_timeout(bytes(CHUNK)) is False
    assert out.timeouts == 1
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # the timer's cancellation was taken back
    await asyncio.sleep(0.01)  # and no stray cancellation arrives later
    out.release.set()
    assert await out._write_with_timeout(bytes(CHUNK)) is True
    assert out.timeouts == 1


async def test_a_write_cancelled_from_outside_is_cancelled_not_timed_out() -> None:
    out = BlockingOutput()
    writer = asyncio.ensure_future(out._write_with_timeout(bytes(CHUNK)))
    await asyncio.sleep(0.01)
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    assert out.timeouts == 0


class StuckWriteOutput(FakeOutput):
    """The third packet's write blocks until cancelled (a peer that stopped reading)."""

    def __init__(self) -> None:
        super().__init__(audio_out_write_timeout=30.0)
        self.writes = 0

    async def write_audio_chunk(self, chunk: bytes) -> bool:
        self.writes += 1
        if self.writes == 3:
            try:
                await asyncio.Event().wait()
            finally:
                self.sent.append((asyncio.get_running_loop().time(), "write unwound", None))
        return await super().write_audio_chunk(chunk)


def test_the_clear_does_not_wait_for_the_write_in_progress_to_unwind() -> None:
    async def scenario() -> tuple[StuckWriteOutput, TimedCollector]:
        out = StuckWriteOutput()
        down = await started(out)
        await out.queue_frame(speech(0.5))
        await asyncio.sleep(0.3)  # the third write is stuck by now
        assert out.writes == 3
        await out.queue_frame(InterruptionFrame())
        await asyncio.sleep(0.1)
        await out.queue_frame(speech(0.1))  # a fresh reply plays: the worker came back
        await asyncio.sleep(0.5)
        await out.cleanup()
        await out.next.cleanup()  # type: ignore[union-attr]
        return out, down

    out, down = run_virtual(scenario())
    kinds = [kind for _, kind, _ in out.sent]
    assert kinds[:4] == ["audio", "audio", "clear", "write unwound"]
    assert kinds[4:] == ["audio"] * (len(kinds) - 4) and len(kinds) > 4
    assert any(isinstance(f, InterruptionFrame) for f in down.frames)


def test_pipecat_webrtc_and_video_options_are_accepted_and_unused() -> None:
    from callpipe.transports.websocket.fastapi import FastAPIWebsocketParams

    params = FastAPIWebsocketParams(
        audio_out_auto_silence=False,
        audio_out_bitrate=64000,
        audio_out_destinations=[],
        video_in_enabled=False,
        video_out_enabled=False,
        video_out_width=640,
    )
    assert params.audio_out_auto_silence is False and params.video_out_width == 640
    # Misspelt names are still refused.
    with pytest.raises(ValueError):
        FastAPIWebsocketParams(video_out_enabeld=True)
