"""Smart-turn analyzers: buffer the caller's turn, ask a model once the VAD reports quiet.

The per-packet work is a copy into a fixed ring of int16 samples holding the last
``max_duration_secs`` of audio (8 s by default: 128 KB per call at 8 kHz), plus a few integer
updates; nothing is allocated per packet. Positions are counted in samples, not wall-clock time,
so what the model sees depends only on the audio.

When the VAD reports the caller quiet, :meth:`BaseSmartTurn.analyze_end_of_turn` copies out the
turn (from ``pre_speech_ms`` + the VAD's ``start_secs`` before speech was reported, at most
``max_duration_secs``) on the event loop and runs the model on a worker thread, so other calls
keep flowing. The worker pool is process-wide and small (one session serves every call; 100
analyzers do not mean 100 threads).

The model was trained on turns ending 200 ms after speech (Pipecat's VAD ``stop_secs``).
callpipe's VAD waits 0.8 s by default, and that much trailing quiet makes the model call almost
anything complete (measured: a trailing-off "Can you tell me um" scores 0.02 with 0.2 s of quiet,
0.94 with 0.8 s). So the VAD's ``stop_secs`` is passed in (:meth:`update_vad_stop_secs`) and the
model is shown only the first 200 ms of it.

Fallback: after an INCOMPLETE verdict, ``append_audio`` answers COMPLETE once the caller has been
quiet for ``stop_secs`` (3 s by default), so a turn always ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import abstractmethod
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import Field

from callpipe.audio.turn.base_turn_analyzer import BaseTurnAnalyzer, BaseTurnParams, EndOfTurnState
from callpipe.errors import CallpipeError
from callpipe.metrics.metrics import MetricsData, TurnMetricsData
from callpipe.utils.pydantic_docs import document_fields
from callpipe.utils.threads import model_threads

logger = logging.getLogger(__name__)

STOP_SECS = 3.0
PRE_SPEECH_MS = 500.0
MAX_DURATION_SECONDS = 8.0
_DEFAULT_RATE = 16000
_POOL_THREADS = 2
MODEL_TRAILING_QUIET_SECS = 0.2
"""Quiet after speech the model expects at the end of its input (see the module docstring)."""


def model_pool() -> ThreadPoolExecutor:
    """The process-wide threads that run end-of-turn models (started on first use)."""
    return model_threads("smart-turn", _POOL_THREADS)


class SmartTurnParams(BaseTurnParams):
    """Timing of a smart-turn analyzer (Pipecat's names and defaults)."""

    stop_secs: float = Field(
        default=STOP_SECS,
        ge=0.0,
        description="Quiet after the caller stopped that ends the turn even when the model said "
        "INCOMPLETE: the longest a caller's pause can hold the turn open.",
    )
    pre_speech_ms: float = Field(
        default=PRE_SPEECH_MS,
        ge=0.0,
        description="Audio from before the VAD reported speech (plus its start_secs) shown to "
        "the model, so the first syllable is not cut.",
    )
    max_duration_secs: float = Field(
        default=MAX_DURATION_SECONDS,
        gt=0.0,
        description="The most audio kept and shown to the model (the latest part of the turn). "
        "Also the per-call buffer size: 8 s is 128 KB at 8 kHz.",
    )


document_fields(SmartTurnParams)


class SmartTurnTimeoutException(CallpipeError, TimeoutError):
    """A model that gives up (e.g. a remote one timing out) raises this: the turn is COMPLETE."""


class BaseSmartTurn(BaseTurnAnalyzer):
    """Buffering and scheduling for a model-based analyzer; subclasses implement the model."""

    def __init__(
        self, *, sample_rate: int | None = None, params: SmartTurnParams | None = None
    ) -> None:
        super().__init__(sample_rate=sample_rate)
        self._params = params or SmartTurnParams()
        self._ring = np.zeros(0, dtype=np.int16)
        self._ring_rate = 0
        self._written = 0  # samples ever appended
        self._valid_from = 0  # first sample of the current turn's buffer
        self._speech_start: int | None = None
        self._speech_end = 0  # position after the last packet heard as speech
        self._silence = 0
        self._speech_triggered = False
        self._vad_start_secs = 0.0
        self._vad_stop_secs = 0.0

    @property
    def speech_triggered(self) -> bool:
        return self._speech_triggered

    @property
    def params(self) -> SmartTurnParams:
        return self._params

    def _rate(self) -> int:
        return self._sample_rate or self._init_sample_rate or _DEFAULT_RATE

    def _ensure_ring(self) -> None:
        rate = self._rate()
        if rate != self._ring_rate:
            self._ring = np.zeros(max(1, int(self._params.max_duration_secs * rate)), np.int16)
            self._ring_rate = rate
            self._written = self._valid_from = 0
            self._speech_start = None

    def append_audio(self, buffer: bytes, is_speech: bool) -> EndOfTurnState:
        self._ensure_ring()
        samples = np.frombuffer(buffer, dtype=np.int16, count=len(buffer) // 2)
        size = len(self._ring)
        if len(samples) >= size:
            samples = samples[-size:]
            self._written += len(buffer) // 2 - size
        at = self._written % size
        first = min(len(samples), size - at)
        self._ring[at : at + first] = samples[:first]
        self._ring[: len(samples) - first] = samples[first:]
        self._written += len(samples)
        if is_speech:
            self._speech_end = self._written
            self._silence = 0
            self._speech_triggered = True
            if self._speech_start is None:
                self._speech_start = self._written - len(samples)
        elif self._speech_triggered:
            self._silence += len(samples)
            if self._silence >= self._params.stop_secs * self._ring_rate:
                logger.debug("end of turn after %.1f s of quiet", self._params.stop_secs)
                self._clear(EndOfTurnState.COMPLETE)
                return EndOfTurnState.COMPLETE
        return EndOfTurnState.INCOMPLETE

    def _segment(self) -> npt.NDArray[np.int16]:
        """A copy of the current turn's audio (see the module docstring for its bounds)."""
        self._ensure_ring()
        start = self._valid_from
        if self._speech_start is not None:
            lead = (self._params.pre_speech_ms / 1000 + self._vad_start_secs) * self._ring_rate
            start = max(start, self._speech_start - int(lead))
        size = len(self._ring)
        start = max(start, self._written - size)
        excess_quiet = max(0.0, self._vad_stop_secs - MODEL_TRAILING_QUIET_SECS)
        end = max(start, self._written - int(excess_quiet * self._ring_rate))
        count = end - start
        if count <= 0:
            return np.zeros(0, dtype=np.int16)
        at = start % size
        if at + count <= size:
            return self._ring[at : at + count].copy()
        return np.concatenate([self._ring[at:], self._ring[: count - (size - at)]])

    async def analyze_end_of_turn(self) -> tuple[EndOfTurnState, MetricsData | None]:
        segment = self._segment()
        if len(segment) == 0:
            return EndOfTurnState.INCOMPLETE, None
        rate, analysed_to = self._ring_rate, self._written
        loop = asyncio.get_running_loop()
        state, metrics = await loop.run_in_executor(model_pool(), self._decide, segment, rate)
        # Speech that arrived while the model ran continues the turn: keep it all.
        if state is EndOfTurnState.COMPLETE and self._speech_end <= analysed_to:
            self._clear(state)
        return state, metrics

    def _decide(
        self, segment: npt.NDArray[np.int16], rate: int
    ) -> tuple[EndOfTurnState, MetricsData | None]:
        """On a worker thread: run the model on one turn."""
        audio = segment.astype(np.float32) / 32768.0
        began = time.perf_counter()
        try:
            result = self._predict_endpoint(audio, rate)
        except SmartTurnTimeoutException:
            return EndOfTurnState.COMPLETE, None
        complete = result["prediction"] == 1
        metrics = TurnMetricsData(
            processor=type(self).__name__,
            is_complete=complete,
            probability=float(result["probability"]),
            e2e_processing_time_ms=(time.perf_counter() - began) * 1000,
        )
        logger.debug(
            "end of turn %s (p=%.3f, %.0f ms)",
            "complete" if complete else "incomplete",
            metrics.probability,
            metrics.e2e_processing_time_ms,
        )
        state = EndOfTurnState.COMPLETE if complete else EndOfTurnState.INCOMPLETE
        return state, metrics

    def update_vad_start_secs(self, vad_start_secs: float) -> None:
        self._vad_start_secs = max(0.0, vad_start_secs)

    def update_vad_stop_secs(self, vad_stop_secs: float) -> None:
        self._vad_stop_secs = max(0.0, vad_stop_secs)

    def clear(self) -> None:
        self._clear(EndOfTurnState.COMPLETE)

    def _clear(self, state: EndOfTurnState) -> None:
        self._speech_triggered = state is EndOfTurnState.INCOMPLETE
        self._valid_from = self._written
        self._speech_start = None
        self._silence = 0

    @abstractmethod
    def _predict_endpoint(self, audio_array: npt.NDArray[np.float32], rate: int) -> dict[str, Any]:
        """``{"prediction": 1 | 0, "probability": p}`` for float audio at ``rate`` Hz."""
