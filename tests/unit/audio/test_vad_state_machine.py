"""The VAD state machine, driven by a scripted analyzer (no model)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from callpipe.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState
from callpipe.errors import InvalidStateError

RATE = 8000
WINDOW = 160  # 20 ms


class ScriptedVAD(VADAnalyzer):
    """Confidence 1.0 for windows whose first sample is non-zero, else 0.0."""

    def num_frames_required(self) -> int:
        return WINDOW

    def voice_confidence(self, buffer: bytes) -> float:
        return 1.0 if np.frombuffer(buffer, dtype="<i2")[0] != 0 else 0.0


def windows(*runs: tuple[int, int]) -> bytes:
    """Concatenate (count, level) runs of constant-level windows."""
    return b"".join(np.full(WINDOW * n, level, dtype="<i2").tobytes() for n, level in runs)


async def states_per_window(
    vad: VADAnalyzer, audio: bytes, chunk: int = WINDOW * 2
) -> list[VADState]:
    out = []
    for i in range(0, len(audio), chunk):
        out.append(await vad.analyze_audio(audio[i : i + chunk]))
    return out


def make(**params: float) -> ScriptedVAD:
    vad = ScriptedVAD(params=VADParams(**params))
    vad.set_sample_rate(RATE)
    return vad


LOUD, QUIET_VOICE, SILENT = 8000, 30, 0


async def test_starts_after_start_secs_of_voice() -> None:
    vad = make(start_secs=0.2)  # 10 windows of 20 ms
    states = await states_per_window(vad, windows((9, LOUD)))
    assert states[-1] == VADState.STARTING
    assert await vad.analyze_audio(windows((1, LOUD))) == VADState.SPEAKING


async def test_short_blip_returns_to_quiet_without_dip_tolerance() -> None:
    vad = make(start_secs=0.2, start_dip_secs=0.0)  # Pipecat's rule: any dip restarts
    states = await states_per_window(vad, windows((5, LOUD), (1, SILENT), (5, LOUD)))
    assert VADState.SPEAKING not in states
    assert states[2] == VADState.STARTING
    assert states[5] == VADState.QUIET
    assert vad.state == VADState.STARTING  # the second run restarted the count


async def test_dips_inside_a_start_run_are_tolerated_but_not_counted() -> None:
    vad = make(start_secs=0.2, start_dip_secs=0.04)  # 10 voice windows, 2 dip windows
    states = await states_per_window(vad, windows((4, LOUD), (1, SILENT), (3, LOUD), (1, SILENT)))
    assert VADState.QUIET not in states[:9]
    assert vad.state == VADState.STARTING
    states = await states_per_window(vad, windows((2, LOUD)))
    assert states == [VADState.STARTING, VADState.STARTING]  # 9 voice windows so far
    assert await vad.analyze_audio(windows((1, LOUD))) == VADState.SPEAKING


async def test_more_dips_than_tolerated_in_one_start_run_return_to_quiet() -> None:
    vad = make(start_secs=0.2, start_dip_secs=0.04)
    # Spread-out dips count together: alternating noise must not add up to a start.
    states = await states_per_window(
        vad, windows((2, LOUD), (1, SILENT), (2, LOUD), (1, SILENT), (2, LOUD), (1, SILENT))
    )
    assert states[-1] == VADState.QUIET
    assert VADState.SPEAKING not in states
    # The next voice starts a fresh run with a fresh allowance.
    states = await states_per_window(vad, windows((5, LOUD), (2, SILENT), (5, LOUD)))
    assert VADState.SPEAKING in states


def test_dip_tolerance_is_validated() -> None:
    with pytest.raises(ValidationError):
        VADParams(start_dip_secs=-0.1)


async def test_stops_after_stop_secs_and_resumes_on_voice() -> None:
    vad = make(start_secs=0.04, stop_secs=0.1)  # 2 and 5 windows
    await states_per_window(vad, windows((4, LOUD)))
    assert vad.state == VADState.SPEAKING
    await states_per_window(vad, windows((4, SILENT)))
    assert vad.state == VADState.STOPPING
    assert await vad.analyze_audio(windows((1, LOUD))) == VADState.SPEAKING
    await states_per_window(vad, windows((4, SILENT)))
    assert await vad.analyze_audio(windows((1, SILENT))) == VADState.QUIET


async def test_voice_below_min_volume_is_ignored() -> None:
    vad = make(start_secs=0.04)
    states = await states_per_window(vad, windows((50, QUIET_VOICE)))
    assert set(states) == {VADState.QUIET}
    vad_no_gate = make(start_secs=0.04, min_volume=0.0)
    assert (await states_per_window(vad_no_gate, windows((4, QUIET_VOICE))))[
        -1
    ] == VADState.SPEAKING


async def test_volume_falls_gradually_and_rises_at_once() -> None:
    vad = make()
    await vad.analyze_audio(windows((1, LOUD)))
    loud = vad.last_volume
    await vad.analyze_audio(windows((1, SILENT)))
    assert 0.6 < vad.last_volume < loud  # one silent window does not close the gate
    await vad.analyze_audio(windows((1, LOUD)))
    assert vad.last_volume == loud


@pytest.mark.parametrize("chunk_ms", [10, 20, 40, 100])
async def test_decisions_do_not_depend_on_chunk_size(chunk_ms: int) -> None:
    audio = windows((3, LOUD), (1, SILENT), (15, LOUD), (12, SILENT), (2, LOUD), (30, SILENT))
    window_bytes = WINDOW * 2
    reference = make(start_secs=0.1, stop_secs=0.2)
    expected = await states_per_window(reference, audio, chunk=window_bytes)  # one per window
    assert VADState.SPEAKING in expected and expected[-1] == VADState.QUIET
    vad = make(start_secs=0.1, stop_secs=0.2)
    chunk = RATE * chunk_ms // 1000 * 2
    for i in range(0, len(audio), chunk):
        state = await vad.analyze_audio(audio[i : i + chunk])
        windows_done = (i + chunk) // window_bytes
        if windows_done:
            assert state == expected[min(windows_done, len(expected)) - 1]


async def test_less_than_a_window_keeps_the_state() -> None:
    vad = make(start_secs=0.02)
    assert await vad.analyze_audio(windows((1, LOUD))) == VADState.SPEAKING
    assert await vad.analyze_audio(b"\x00\x00" * 10) == VADState.SPEAKING


async def test_set_params_restarts_quiet_and_rounds_to_windows() -> None:
    vad = make(start_secs=0.02)
    await vad.analyze_audio(windows((1, LOUD)))
    vad.set_params(VADParams(start_secs=0.05, stop_secs=0.8))  # 2.5 → 2 windows, 40 windows
    assert vad.state == VADState.QUIET
    assert vad._start_windows == 2 and vad._stop_windows == 40
    assert vad.params.start_secs == 0.05


async def test_requires_sample_rate() -> None:
    with pytest.raises(InvalidStateError):
        await ScriptedVAD().analyze_audio(b"\x00" * 320)


def test_constructor_rate_overrides_pipeline_rate() -> None:
    vad = ScriptedVAD(sample_rate=16000)
    vad.set_sample_rate(8000)
    assert vad.sample_rate == 16000


def test_params_defaults_and_validation() -> None:
    params = VADParams()
    assert (params.confidence, params.start_secs, params.stop_secs, params.min_volume) == (
        0.7,
        0.2,
        0.8,
        0.6,
    )
    with pytest.raises(ValidationError):
        VADParams(confidance=0.5)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        VADParams(confidence=1.5)
    assert [s.value for s in VADState] == [1, 2, 3, 4]
