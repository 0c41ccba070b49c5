"""HoldMusicMixer: silent until enabled, the built-in tune, a WAV file of your own."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from callpipe.audio.mixers.hold_music import HoldMusicMixer, hold_tune
from callpipe.frames.frames import MixerEnableFrame, MixerUpdateSettingsFrame

CHUNK = bytes(320)  # 20 ms of silence at 8 kHz


def test_tune_is_an_eight_second_loop_in_the_phone_band() -> None:
    tune = hold_tune(8000)
    assert len(tune) == 8 * 8000
    peak = int(np.max(np.abs(tune.astype(np.int32))))
    assert 0.25 * 32767 < peak <= 0.31 * 32767
    spectrum = np.abs(np.fft.rfft(tune.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(tune), 1 / 8000)
    in_band = spectrum[(freqs >= 150) & (freqs <= 1100)].sum()
    assert in_band / spectrum.sum() > 0.99
    # The loop point does not click: the jump from the end to the start is small.
    assert abs(int(tune[-1]) - int(tune[0])) < 0.05 * 32767


async def test_silent_until_enabled_then_restarts_from_the_top() -> None:
    mixer = HoldMusicMixer(volume=1.0)
    await mixer.start(8000)
    assert await mixer.mix(CHUNK) == CHUNK
    await mixer.process_frame(MixerEnableFrame(enable=True))
    first = await mixer.mix(CHUNK)
    assert first != CHUNK and np.array_equal(np.frombuffer(first, "<i2"), hold_tune(8000)[:160])
    await mixer.mix(CHUNK)
    await mixer.process_frame(MixerEnableFrame(enable=False))
    assert await mixer.mix(CHUNK) == CHUNK
    await mixer.process_frame(MixerEnableFrame(enable=True))
    assert await mixer.mix(CHUNK) == first


async def test_volume_scales_the_music_under_the_bot() -> None:
    mixer = HoldMusicMixer(volume=1.0, enabled=True)
    await mixer.start(8000)
    loud = np.frombuffer(await mixer.mix(CHUNK), "<i2").astype(np.int32)
    await mixer.process_frame(MixerUpdateSettingsFrame(settings={"volume": 0.25}))
    await mixer.process_frame(MixerEnableFrame(enable=False))
    await mixer.process_frame(MixerEnableFrame(enable=True))  # back to the top
    quiet = np.frombuffer(await mixer.mix(CHUNK), "<i2").astype(np.int32)
    assert np.abs(quiet).max() <= np.abs(loud).max() * 0.25 + 1
    assert np.abs(quiet).max() > 0


async def test_a_wav_file_is_used_and_resampled(tmp_path: Path) -> None:
    path = tmp_path / "hold.wav"
    tone = (np.ones(16000) * 1000).astype("<i2")  # 1 s of DC at 16 kHz, stereo below
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.repeat(tone, 2).tobytes())
    mixer = HoldMusicMixer(file=str(path), volume=1.0, enabled=True)
    await mixer.start(8000)
    out = np.frombuffer(await mixer.mix(bytes(1600)), "<i2")[200:]  # past the resampler's edge
    assert np.all(np.abs(out.astype(np.int32) - 1000) < 30)


async def test_an_unreadable_file_falls_back_to_the_tune(tmp_path: Path) -> None:
    path = tmp_path / "broken.wav"
    path.write_bytes(b"not a wav")
    mixer = HoldMusicMixer(file=str(path), volume=1.0, enabled=True)
    await mixer.start(8000)
    assert np.array_equal(np.frombuffer(await mixer.mix(CHUNK), "<i2"), hold_tune(8000)[:160])
