"""Pipecat 1.x audio API: utils, resamplers, volume tracker, DTMF paths, filter and mixer."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from callpipe.audio.dtmf.types import KeypadEntry
from callpipe.audio.dtmf.utils import load_dtmf_audio
from callpipe.audio.g711 import pcm_to_ulaw as sync_pcm_to_ulaw
from callpipe.audio.mixers.soundfile_mixer import SoundfileMixer
from callpipe.audio.resamplers.soxr_resampler import SOXRAudioResampler
from callpipe.audio.resamplers.soxr_stream_resampler import SOXRStreamAudioResampler
from callpipe.audio.utils import (
    calculate_audio_volume,
    create_stream_resampler,
    exp_smoothing,
    interleave_stereo_audio,
    is_silence,
    mix_audio,
    pcm_to_alaw,
    pcm_to_ulaw,
    pcm_to_wav,
    scale_audio,
    ulaw_to_pcm,
)
from callpipe.audio.volume import AudioVolumeTracker
from callpipe.frames.frames import FilterEnableFrame, MixerEnableFrame, MixerUpdateSettingsFrame


def tone(freq: float, secs: float, rate: int, amp: float = 8000.0) -> bytes:
    t = np.arange(int(secs * rate)) / rate
    return (amp * np.sin(2 * math.pi * freq * t)).astype("<i2").tobytes()


def samples(pcm: bytes) -> np.ndarray:  # type: ignore[type-arg]
    return np.frombuffer(pcm, dtype="<i2")


def test_mix_scale_interleave_and_silence() -> None:
    a = np.array([1000, -1000, 30000], dtype="<i2").tobytes()
    b = np.array([500, 500], dtype="<i2").tobytes()
    assert samples(mix_audio(a, b)).tolist() == [1500, -500, 30000]
    assert samples(mix_audio(a, a)).tolist()[2] == 32767  # clipped, not wrapped
    assert samples(scale_audio(a, 0.5)).tolist() == [500, -500, 15000]
    assert scale_audio(a, 1.0) is a
    assert samples(interleave_stereo_audio(a, b)).tolist() == [1000, 500, -1000, 500]
    assert is_silence(bytes(320)) and not is_silence(tone(440, 0.02, 8000))
    assert exp_smoothing(1.0, 0.0, 0.25) == 0.25
    assert pcm_to_wav(bytes(4), 8000)[:4] == b"RIFF"


async def test_g711_helpers_resample_on_the_way() -> None:
    resampler = create_stream_resampler()
    pcm16k = tone(440, 0.2, 16000)
    ulaw = await pcm_to_ulaw(pcm16k, 16000, 8000, resampler)
    assert len(ulaw) == pytest.approx(0.2 * 8000, abs=80)  # stream resampler holds a little back
    same_rate = await pcm_to_ulaw(tone(440, 0.02, 8000), 8000, 8000, resampler)
    assert same_rate == sync_pcm_to_ulaw(tone(440, 0.02, 8000))
    back = await ulaw_to_pcm(same_rate, 8000, 8000, resampler)
    assert len(back) == 320
    alaw = await pcm_to_alaw(tone(440, 0.02, 8000), 8000, 8000, SOXRAudioResampler())
    assert len(alaw) == 160 and alaw != same_rate


async def test_stream_resampler_is_steady_and_flushes_the_rest() -> None:
    resampler = SOXRStreamAudioResampler()
    pcm = tone(300, 1.0, 8000)
    out = b"".join(
        [await resampler.resample(pcm[i : i + 320], 8000, 16000) for i in range(0, len(pcm), 320)]
    )
    out += await resampler.flush()
    assert len(out) == 2 * len(pcm)  # exactly twice the samples once flushed
    one_shot = await SOXRAudioResampler().resample(pcm, 8000, 24000)
    assert len(one_shot) == 3 * len(pcm)


def test_volume_tracker_window() -> None:
    tracker = AudioVolumeTracker()
    loud = tone(440, 0.02, 8000, amp=12000)
    tracker.update(loud, 8000)
    assert tracker.volume == 0.0  # window (0.4 s) not full yet
    for _ in range(25):
        tracker.update(loud, 8000)
    assert tracker.volume == pytest.approx(calculate_audio_volume(loud, 8000), abs=0.02)
    for _ in range(25):
        tracker.update(bytes(320), 8000)
    assert tracker.volume == 0.0  # the loud part has left the window
    tracker.update(loud, 16000)  # new rate: new window
    assert tracker.volume == 0.0


async def test_dtmf_paths() -> None:
    assert KeypadEntry.POUND == "#"
    audio = await load_dtmf_audio(KeypadEntry.FIVE, sample_rate=8000)
    assert len(audio) > 0 and not is_silence(audio)


def write_wav(path: Path, pcm: bytes, rate: int, channels: int = 1) -> str:
    import soundfile

    data = np.frombuffer(pcm, dtype="<i2").reshape(-1, channels)
    soundfile.write(str(path), data, rate, subtype="PCM_16")
    return str(path)


async def test_soundfile_mixer_loops_converts_and_obeys_controls(tmp_path: Path) -> None:
    hold = write_wav(tmp_path / "hold.wav", tone(300, 0.05, 16000, amp=10000), 16000)
    other = write_wav(tmp_path / "other.wav", bytes(1600), 8000)
    mixer = SoundfileMixer(
        sound_files={"hold": hold, "other": other}, default_sound="hold", volume=0.5
    )
    await mixer.start(8000)  # the 16 kHz file is converted to the wire rate
    chunks = [samples(await mixer.mix(bytes(320))) for _ in range(6)]  # 120 ms > 50 ms: loops
    peak = max(int(np.abs(c.astype(np.int32)).max()) for c in chunks)
    assert 4000 < peak <= 5200  # about half of 10000
    bot = np.full(160, 1000, dtype="<i2").tobytes()
    mixed = samples(await mixer.mix(bot))
    assert mixed.tolist() != [1000] * 160  # the sound is mixed under the bot
    await mixer.process_frame(MixerEnableFrame(enable=False))
    assert await mixer.mix(bot) == bot
    await mixer.process_frame(MixerEnableFrame(enable=True))
    await mixer.process_frame(MixerUpdateSettingsFrame(settings={"sound": "other"}))
    assert await mixer.mix(bot) == bot  # "other" is silence
    await mixer.stop()


async def test_soundfile_mixer_without_loop_goes_quiet(tmp_path: Path) -> None:
    clip = write_wav(tmp_path / "c.wav", tone(300, 0.03, 8000), 8000)
    mixer = SoundfileMixer(sound_files={"c": clip}, default_sound="c", loop=False, volume=1.0)
    await mixer.start(8000)
    first, second, third = [await mixer.mix(bytes(320)) for _ in range(3)]
    assert not is_silence(first) and not is_silence(second[:160])
    assert third == bytes(320)


async def test_rnnoise_filter_reduces_noise_and_keeps_length() -> None:
    pytest.importorskip("pyrnnoise")
    from callpipe.audio.filters.rnnoise_filter import RNNoiseFilter

    rng = np.random.default_rng(7)
    noise = (rng.normal(0, 2500, 8000 * 2)).astype("<i2").tobytes()  # 2 s of white noise
    audio_filter = RNNoiseFilter()
    await audio_filter.start(8000)
    out = b"".join(
        [await audio_filter.filter(noise[i : i + 320]) for i in range(0, len(noise), 320)]
    )
    assert abs(len(out) - len(noise)) <= 2 * 480  # holds back less than ~60 ms
    tail_in, tail_out = samples(noise)[-4000:], samples(out)[-4000:]
    rms_in = float(np.sqrt(np.mean(tail_in.astype(np.float64) ** 2)))
    rms_out = float(np.sqrt(np.mean(tail_out.astype(np.float64) ** 2)))
    assert rms_out < rms_in / 4  # RNNoise removes most of stationary noise
    await audio_filter.process_frame(FilterEnableFrame(enable=False))
    assert await audio_filter.filter(noise[:320]) == noise[:320]
    await audio_filter.stop()
