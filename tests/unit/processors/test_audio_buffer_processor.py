"""AudioBufferProcessor: tracks, mono/stereo, bounded memory, turn audio (pipeline-level).

The alignment with what the caller heard is tested end to end against the call simulator in
tests/integration/compat114/test_recording_alignment.py.
"""

from __future__ import annotations

import numpy as np

from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.audio.audio_buffer_processor import AudioBufferProcessor, TurnAudioData
from callpipe.testing import run_test
from callpipe.testing.pipeline import SleepFrame

PARAMS = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)


def pcm(value: int, secs: float, rate: int = 8000) -> bytes:
    return np.full(int(secs * rate), value, dtype=np.int16).tobytes()


async def test_stereo_tracks_and_mono_mix() -> None:
    stereo = AudioBufferProcessor(num_channels=2, auto_start_recording=True)
    mono = AudioBufferProcessor(num_channels=1, auto_start_recording=True)
    got: dict[str, list[bytes]] = {"stereo": [], "mono": [], "user": [], "bot": []}
    stereo.add_event_handler("on_audio_data", lambda p, a, r, c: got["stereo"].append(a))
    stereo.add_event_handler("on_track_audio_data", lambda p, u, b, r, c: got["user"].append(u))
    stereo.add_event_handler("on_track_audio_data", lambda p, u, b, r, c: got["bot"].append(b))
    mono.add_event_handler("on_audio_data", lambda p, a, r, c: got["mono"].append(a))
    frames = [
        InputAudioRawFrame(pcm(100, 0.02), 8000, 1),
        BotStartedSpeakingFrame(),
        OutputAudioRawFrame(pcm(1000, 0.02), 8000, 1),
        InputAudioRawFrame(pcm(100, 0.02), 8000, 1),
    ]
    from callpipe.pipeline.pipeline import Pipeline

    await run_test(Pipeline([stereo, mono]), frames, params=PARAMS)
    user = np.frombuffer(got["user"][0], dtype=np.int16)
    bot = np.frombuffer(got["bot"][0], dtype=np.int16)
    assert len(user) == len(bot) == 320  # both tracks on one timeline, same length
    assert set(user.tolist()) == {100}
    both = np.frombuffer(got["stereo"][0], dtype=np.int16)
    assert both[0::2].tolist() == user.tolist() and both[1::2].tolist() == bot.tolist()
    mixed = np.frombuffer(got["mono"][0], dtype=np.int16)
    assert mixed.max() == 1100  # caller + bot where both sound


async def test_buffer_size_bounds_memory_on_a_long_call() -> None:
    recorder = AudioBufferProcessor(buffer_size=16000, auto_start_recording=True)  # 1 s/track
    peak = 0
    total = 0

    def on_tracks(p: AudioBufferProcessor, user: bytes, bot: bytes, rate: int, ch: int) -> None:
        nonlocal peak, total
        peak = max(peak, p.buffered_bytes())
        total += len(user)

    recorder.add_event_handler("on_track_audio_data", on_tracks)
    minutes = 10
    chunk = pcm(5, 0.1)
    frames = [InputAudioRawFrame(chunk, 8000, 1) for _ in range(minutes * 600)]
    await run_test(recorder, frames, params=PARAMS)
    assert total == minutes * 60 * 16000  # every byte handed out once
    assert peak <= 2 * 16000  # never more than ~buffer_size per track held


async def test_turn_audio_events() -> None:
    recorder = AudioBufferProcessor(enable_turn_audio=True, auto_start_recording=True)
    user_turns: list[TurnAudioData] = []
    bot_turns: list[TurnAudioData] = []
    recorder.add_event_handler("on_user_turn_audio", lambda p, t: user_turns.append(t))
    recorder.add_event_handler("on_bot_turn_audio", lambda p, t: bot_turns.append(t))
    frames = [
        *[InputAudioRawFrame(pcm(1, 0.1), 8000, 1) for _ in range(20)],  # 2 s before the turn
        UserStartedSpeakingFrame(),
        InputAudioRawFrame(pcm(2, 0.5), 8000, 1),
        SleepFrame(0.01),
        UserStoppedSpeakingFrame(),
        BotStartedSpeakingFrame(),
        OutputAudioRawFrame(pcm(3, 0.3), 8000, 1),
        SleepFrame(0.01),
        BotStoppedSpeakingFrame(),
    ]
    await run_test(recorder, frames, params=PARAMS)
    [user] = user_turns
    samples = np.frombuffer(user.audio, dtype=np.int16)
    assert user.turn_number == 1 and len(samples) == 8000 + 4000  # 1 s lead-in + the turn
    assert samples[-1] == 2 and samples[0] == 1
    [bot] = bot_turns
    assert len(bot.audio) == 2 * 2400


async def test_start_and_stop_frames() -> None:
    from callpipe.frames.frames import AudioBufferStartRecordingFrame, AudioBufferStopRecordingFrame

    recorder = AudioBufferProcessor()
    events: list[str] = []
    got: list[bytes] = []
    recorder.add_event_handler("on_recording_started", lambda p: events.append("started"))
    recorder.add_event_handler("on_recording_stopped", lambda p: events.append("stopped"))
    recorder.add_event_handler("on_track_audio_data", lambda p, u, b, r, c: got.append(u))
    frames = [
        InputAudioRawFrame(pcm(7, 0.1), 8000, 1),  # not recording yet
        AudioBufferStartRecordingFrame(),
        SleepFrame(0.01),
        InputAudioRawFrame(pcm(8, 0.1), 8000, 1),
        SleepFrame(0.01),
        AudioBufferStopRecordingFrame(),
        SleepFrame(0.01),
        InputAudioRawFrame(pcm(9, 0.1), 8000, 1),  # stopped again
    ]
    await run_test(recorder, frames, params=PARAMS)
    assert events == ["started", "stopped"]
    assert set(np.frombuffer(b"".join(got), dtype=np.int16).tolist()) == {8}
