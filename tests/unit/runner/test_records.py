"""Call records and recordings: configuration, atomic files, the ring, flat recording memory."""

from __future__ import annotations

import json
import tracemalloc
import wave
from pathlib import Path

import numpy as np
import pytest

from callpipe.runner.records import RecordsConfig, RecordStore, write_atomically
from callpipe.testing.virtual_calls import virtual_time
from callpipe.transports.call_record import CallRecorder, ended_by, recording_calls
from callpipe.transports.recording import CallRecording, LocalDirectoryStorage


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> float:
        return self.t

    async def sleep_until(self, deadline: float) -> None:
        self.t = max(self.t, deadline)

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


def test_records_on_in_local_mode_opt_in_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CALLPIPE_RECORDS_DIR", "CALLPIPE_RECORDS", "CALLPIPE_RECORDING"):
        monkeypatch.delenv(name, raising=False)
    assert RecordsConfig.resolve(local=True).enabled
    assert not RecordsConfig.resolve(local=False).enabled
    assert not RecordsConfig.resolve(local=True, enabled=False).enabled
    on = RecordsConfig.resolve(local=False, directory="/tmp/r", recording=True)
    assert on.enabled and on.directory == Path("/tmp/r") and on.recording
    monkeypatch.setenv("CALLPIPE_RECORDS_DIR", "/srv/records")
    monkeypatch.setenv("CALLPIPE_RECORDING", "1")
    env = RecordsConfig.resolve(local=False)
    assert env.enabled and env.directory == Path("/srv/records") and env.recording
    monkeypatch.setenv("CALLPIPE_RECORDS", "0")
    assert not RecordsConfig.resolve(local=False).enabled
    assert not RecordsConfig.resolve(local=False).recording  # no recording without records


def test_cli_flags_reach_the_config() -> None:
    from callpipe.runner.run import _config_from_args, build_parser

    config = _config_from_args(build_parser().parse_args(["--records", "/r", "--recording"]))
    assert (config.records_dir, config.records, config.recording) == ("/r", None, True)
    config = _config_from_args(build_parser().parse_args(["--no-records"]))
    assert config.records is False and config.recording is None


def test_write_atomically_replaces_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "abc.json"
    write_atomically(target, {"a": 1})
    write_atomically(target, {"a": 2, "text": "é"})
    assert json.loads(target.read_text(encoding="utf-8")) == {"a": 2, "text": "é"}
    assert [p.name for p in target.parent.iterdir()] == ["abc.json"]


@virtual_time
async def test_ring_keeps_the_most_recent_records() -> None:
    store = RecordStore(RecordsConfig(enabled=True, ring_size=3))
    ids = []
    for _ in range(5):
        record_id, recorder = store.begin(provider="twilio", call_id="CA0123456789")
        recorder.identify("CA0123456789", "twilio")
        assert store.get(record_id) is not None and store.get(record_id)["state"] == "listening"
        store.end(record_id, "ok")
        ids.append(record_id)
    assert list(store.recent) == ids[-3:]
    assert store.get(ids[0]) is None
    assert store.get(ids[-1])["call"]["id"] == "CA01…89"  # type: ignore[index]


@pytest.mark.parametrize(
    ("reason", "outcome", "by"),
    [
        ("caller hung up (remote closed)", "ok", "caller"),
        ("bot ended", "ok", "bot"),
        ("timeout (idle)", "ok", "timeout"),
        ("error (message flood)", "ok", "error"),
        (None, "hangup", "caller"),
        (None, "error", "error"),
        (None, "ok", "unknown"),
    ],
)
def test_who_ended_the_call(reason: str | None, outcome: str, by: str) -> None:
    assert ended_by(reason, outcome) == by


def _tone(secs: float, rate: int = 8000) -> bytes:
    t = np.arange(int(secs * rate)) / rate
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


def test_recording_memory_stays_flat_over_a_long_call(tmp_path: Path) -> None:
    """20 minutes of 20 ms packets on both sides (virtual time): memory does not grow."""
    clock = FakeClock()
    recording = CallRecording(LocalDirectoryStorage(tmp_path), "long.wav")
    recording.start(clock.now())
    packet = _tone(0.02)
    peaks: list[int] = []
    tracemalloc.start()
    try:
        for minute in range(20):
            for _ in range(3000):  # a minute of 20 ms packets
                clock.t += 0.02
                recording.caller_audio(packet, 8000, clock.t)
                recording.bot_audio(packet, 8000, clock.t + 0.04, clock.t)
            if minute in (1, 19):
                peaks.append(tracemalloc.get_traced_memory()[0])
            assert recording.pending_samples < 3 * 8000  # never more than a few seconds held
    finally:
        tracemalloc.stop()
    assert peaks[1] - peaks[0] < 200_000  # flat: no growth with call length
    recording.close()
    with wave.open(str(tmp_path / "long.wav")) as w:
        assert w.getnchannels() == 2 and w.getframerate() == 8000
        assert abs(w.getnframes() / 8000 - 1200) < 0.2


def test_recording_places_bot_audio_at_play_time_and_cuts_it(tmp_path: Path) -> None:
    clock = FakeClock()
    recording = CallRecording(LocalDirectoryStorage(tmp_path), "cut.wav")
    recording.start(clock.now())
    silence = bytes(320)
    # The bot sends 2 s of audio at t=1 s, all at once, due to play from t=1.5 s; the caller
    # barges in at t=2.5 s: only 1 s of it was played.
    for _ in range(50):
        clock.t += 0.02
        recording.caller_audio(silence, 8000, clock.t)
    recording.bot_audio(_tone(2.0), 8000, clock.t + 0.5, clock.t)
    for _ in range(75):
        clock.t += 0.02
        recording.caller_audio(silence, 8000, clock.t)
    recording.bot_cut(clock.t)
    for _ in range(100):
        clock.t += 0.02
        recording.caller_audio(silence, 8000, clock.t)
    recording.close()
    with wave.open(str(tmp_path / "cut.wav")) as w:
        bot = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)[:, 1]
    voiced = np.flatnonzero(np.abs(bot.astype(np.int32)) > 1000)
    assert abs(voiced[0] / 8000 - 1.5) < 0.02
    assert abs(voiced[-1] / 8000 - 2.5) < 0.02


def test_recorder_with_a_recording_closes_it_on_finish(tmp_path: Path) -> None:
    clock = FakeClock()
    recording = CallRecording(LocalDirectoryStorage(tmp_path), "r.wav")
    recorder = CallRecorder(clock=clock, recording=recording)
    clock.t += 0.5
    recording.caller_audio(_tone(0.5), 8000, clock.t)
    record = recorder.finish("error")
    assert recording.closed and record["recording"]["complete"]
    assert record["end"]["by"] == "error" and record["state"] == "ended"
    assert recorder.finish("ok") is record  # idempotent


def test_local_banner_points_at_the_inspector() -> None:
    from callpipe.runner.local import banner

    assert "http://localhost:7860/calls" in banner("bot", "127.0.0.1", 7860, None, calls=True)
    assert "/calls" not in banner("bot", "127.0.0.1", 7860, None)


def test_deepgram_confidence_and_words_reach_the_transcript() -> None:
    from callpipe.frames.frames import TranscriptionFrame
    from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
    from callpipe.services.deepgram.stt import _words
    from callpipe.transports.record_hooks import note_transcript_detail

    alternative = {
        "transcript": "two people",
        "confidence": 0.91,
        "words": [
            {"word": "two", "start": 1.25, "end": 1.5, "confidence": 0.93},
            {"word": "people", "punctuated_word": "people.", "start": 1.5, "end": 1.9},
            "junk",
        ],
    }
    recorder = CallRecorder(clock=FakeClock())
    with recording_calls(recorder):
        note_transcript_detail(0.91, _words(alternative))
    recorder.on_push_frame(
        FrameProcessor(), FrameProcessor(), TranscriptionFrame("two people"), FrameDirection(1)
    )
    [turn] = recorder.finish("ok")["turns"]
    [entry] = turn["caller"]["transcripts"]
    assert entry["confidence"] == 0.91
    assert entry["words"] == [
        {"word": "two", "start": 1.25, "end": 1.5, "confidence": 0.93},
        {"word": "people.", "start": 1.5, "end": 1.9, "confidence": None},
    ]


def test_an_unfinished_recording_still_plays(tmp_path: Path) -> None:
    """A process killed mid-call leaves a WAV whose header claims "as long as it gets"."""
    recording = CallRecording(LocalDirectoryStorage(tmp_path), "killed.wav")
    recording.start(0.0)
    for i in range(200):  # 4 s: three of them flushed to the file
        recording.caller_audio(_tone(0.02), 8000, (i + 1) * 0.02)
    recording._file.flush()  # type: ignore[union-attr]  # what the OS has when we are killed
    with wave.open(str(tmp_path / "killed.wav")) as w:
        frames = w.readframes(10**9)
    assert len(frames) // 4 >= 2 * 8000
