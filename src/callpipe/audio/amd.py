"""Answering-machine detection from the callee's audio alone (any provider, no service).

Why it works: people answer a call with a short phrase ("Hello?") and then wait for the caller;
a voicemail greeting talks on for seconds with only short breaths, then usually beeps; a fax
machine answers with its CNG tone (1100 Hz, 0.5 s on, 3 s off); a dead line says nothing.

The audio is cut into 20 ms frames. Each frame gets an energy measure (speech when loud enough
above the adaptive noise floor) and a tonality measure: the power of single-bin DFTs at a bank
of frequencies (what a Goertzel filter computes, evaluated for the whole bank as one matrix
product, so there is no per-sample Python) divided by the frame's energy. A pure tone puts
almost all its energy in one bin; speech spreads it over harmonics.

Verdicts (the shared vocabulary, see :data:`AmdResult`), each at most once, in this order:

- ``fax``: a tone within 40 Hz of 1100 Hz for ``fax_min`` seconds before anyone spoke.
- ``human``: speech that stops within ``human_max_greeting`` seconds and is followed by
  ``human_silence`` seconds of silence (the person waits for us). Also a longer answer ("Good
  afternoon, Morgan and Partners, Alex speaking.") that stays under ``machine_min_greeting``, is
  one sentence (no pause of ``sentence_pause`` or more inside it) and is followed by
  ``long_answer_silence`` seconds of silence without a beep: the person said their piece and
  waits for a reply.
- ``machine_start``: a greeting running ``machine_min_greeting`` seconds without a pause of
  ``human_silence`` (pauses shorter than that are the cadence of one monologue); or made of
  several sentences (recorded greetings are: "You have reached ... . Please leave ...") and
  running ``sentence_greeting`` seconds, or over ``human_max_greeting`` when it stops; or any
  speech followed by a beep.
- ``machine_end_beep``: after speech (before or after a machine verdict), a tone of at least
  ``beep_min`` seconds has ended: the recording starts now.
- ``machine_end_silence``: after a machine verdict, ``end_silence`` seconds of silence without a
  beep, or ``max_greeting`` seconds in total.
- ``unknown``: nobody spoke for ``no_speech_timeout`` seconds (a silent line).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import numpy.typing as npt

from callpipe.metrics.registry import REGISTRY

AmdResult = Literal[
    "human", "machine_start", "machine_end_beep", "machine_end_silence", "fax", "unknown"
]
"""Who answered: one vocabulary for provider-native AMD and the local detector."""

AMD_LOCAL_RESULTS = REGISTRY.counter(
    "callpipe_amd_local_results_total",
    "Verdicts of the local answering-machine detector (label: result).",
)

AMD_DECISION_SECONDS = REGISTRY.histogram(
    "callpipe_amd_local_decision_seconds",
    "Seconds of callee audio before the local detector classified the call (label: result).",
    buckets=(0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 12.0),
)

FRAME_MS = 20
TONE_BANK_HZ = tuple(range(350, 2101, 25))
"""Beeps are anywhere from ~400 Hz to ~2 kHz; 25 Hz steps keep any tone near a bin."""
FAX_CNG_HZ = 1100.0


@dataclass(frozen=True, slots=True)
class AmdVerdict:
    result: AmdResult
    at: float
    """Seconds of callee audio heard when the verdict was reached (its decision latency)."""


@dataclass(frozen=True, slots=True)
class AmdSettings:
    """Timing thresholds in seconds (see the module docstring); defaults suit 8-16 kHz calls."""

    human_silence: float = 0.7
    human_max_greeting: float = 1.6
    machine_min_greeting: float = 4.0
    """Unbroken speech this long is a recorded greeting (people answer in under ~4 s)."""
    sentence_greeting: float = 2.2
    """A monologue this long that already has a sentence pause in it is a greeting."""
    long_answer_silence: float = 1.0
    """After a longer one-sentence answer: silence this long (and no beep) makes it a person."""
    sentence_pause: float = 0.22
    """A pause at least this long (and under ``human_silence``) separates two sentences."""
    end_silence: float = 2.5
    max_greeting: float = 25.0
    no_speech_timeout: float = 5.0
    beep_min: float = 0.12
    fax_min: float = 0.3
    speech_floor_dbfs: float = -45.0
    speech_over_noise_db: float = 12.0
    tone_purity: float = 0.85
    """Speech peaks below ~0.8 (eSpeak voices: 99th percentile 0.63); tones score ~1."""


@lru_cache(maxsize=8)
def _bank(
    sample_rate: int, frame: int
) -> tuple[npt.NDArray[np.complex128], npt.NDArray[np.float64]]:
    """Windowed complex exponentials (bank x frame) and their frequencies."""
    freqs = np.array([f for f in TONE_BANK_HZ if f < sample_rate / 2 - 100], dtype=np.float64)
    n = np.arange(frame)
    window = np.hanning(frame)
    kernel = window[None, :] * np.exp(-2j * np.pi * freqs[:, None] * n[None, :] / sample_rate)
    return kernel, freqs


def tone_analysis(
    frames: npt.NDArray[np.float64], sample_rate: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per frame: (purity 0..1 of the strongest bank frequency, that frequency in Hz).

    Purity is the bin's power over what a pure, windowed tone of the frame's energy would put
    there, so a steady sinusoid scores ~1 and speech or noise far less.
    """
    count, size = frames.shape
    kernel, freqs = _bank(sample_rate, size)
    power = np.abs(frames @ kernel.T) ** 2  # (count, bank): Goertzel power at every frequency
    best = power.argmax(axis=1)
    window = np.hanning(size)
    energy = (frames**2).sum(axis=1)
    # A tone A*sin: windowed bin power = (A * sum(w) / 2)^2, frame energy = A^2 * size / 2.
    pure = energy * (window.sum() ** 2) / (2.0 * size)
    purity = np.where(energy > 0, power[np.arange(count), best] / np.maximum(pure, 1e-12), 0.0)
    return np.clip(purity, 0.0, 1.0), freqs[best]


class AnsweringMachineDetector:
    """Feed the callee's PCM16 audio; collect the verdicts (:class:`AmdVerdict`) as reached.

    Sans-I/O and incremental: ``feed`` takes any chunk size and returns the verdicts reached
    within it. The first of ``human``/``machine_start``/``fax``/``unknown`` is the
    classification; ``machine_end_*`` follows a machine verdict when the greeting is over.
    """

    def __init__(self, sample_rate: int = 8000, settings: AmdSettings | None = None) -> None:
        self.sample_rate = sample_rate
        self.settings = settings or AmdSettings()
        self._frame = sample_rate * FRAME_MS // 1000
        self._dt = FRAME_MS / 1000.0
        self._pending = np.zeros(0, dtype=np.float64)
        self.verdicts: list[AmdVerdict] = []
        self._t = 0.0
        self._noise_db = -70.0
        self._first_speech: float | None = None
        self._speech_secs = 0.0
        self._last_speech_end: float | None = None
        self._in_speech = False
        self._silence = 0.0
        self._segment_start: float | None = None
        self._sentence_breaks = 0
        self._tone = 0.0
        self._tone_hz = 0.0
        self._machine = False
        self._classified = False
        self._ended = False

    @property
    def classification(self) -> AmdVerdict | None:
        return next((v for v in self.verdicts if not v.result.startswith("machine_end")), None)

    @property
    def seconds(self) -> float:
        """Seconds of audio analysed so far."""
        return self._t

    @property
    def done(self) -> bool:
        """Nothing more will be decided (a final verdict was reached)."""
        return self._ended

    def feed(self, pcm: bytes) -> list[AmdVerdict]:
        if self._ended or not pcm:
            return []
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)
        data = np.concatenate([self._pending, samples / 32768.0])
        count = len(data) // self._frame
        self._pending = data[count * self._frame :]
        if count == 0:
            return []
        frames = data[: count * self._frame].reshape(count, self._frame)
        rms = np.sqrt((frames**2).mean(axis=1))
        level_db = 20.0 * np.log10(np.maximum(rms, 1e-7))
        purity, freq = tone_analysis(frames, self.sample_rate)
        before = len(self.verdicts)
        for i in range(count):
            self._step(float(level_db[i]), float(purity[i]), float(freq[i]))
            if self._ended:
                break
        return self.verdicts[before:]

    # ------------------------------------------------------------------ the decision rules

    def _emit(self, result: AmdResult) -> None:
        self.verdicts.append(AmdVerdict(result, round(self._t, 3)))
        AMD_LOCAL_RESULTS.inc(result=result)
        if not result.startswith("machine_end"):
            AMD_DECISION_SECONDS.observe(self._t, result=result)
        if result in ("human", "fax", "unknown") or result.startswith("machine_end"):
            self._ended = True

    def _step(self, level_db: float, purity: float, freq: float) -> None:
        s = self.settings
        self._t += self._dt
        loud = level_db > max(s.speech_floor_dbfs, self._noise_db + s.speech_over_noise_db)
        tonal = loud and purity >= s.tone_purity
        if not loud:  # track the noise floor on quiet frames only
            self._noise_db += 0.05 * (level_db - self._noise_db)
        if tonal:
            if self._tone == 0.0 or abs(freq - self._tone_hz) > 50:
                self._tone, self._tone_hz = 0.0, freq  # a new tone (a steady one keeps its pitch)
            self._tone += self._dt
            self._silence = 0.0
            if (
                not self._classified
                and self._first_speech is None
                and abs(self._tone_hz - FAX_CNG_HZ) <= 40
                and self._tone >= s.fax_min
            ):
                self._classified = True
                self._emit("fax")
            return
        if self._tone > 0.0:
            tone, self._tone = self._tone, 0.0
            # A beep after speech: the greeting is over (people do not beep at callers).
            if tone >= s.beep_min and self._first_speech is not None and not self._ended:
                if not self._machine:
                    self._machine = self._classified = True
                    self._emit("machine_start")
                self._emit("machine_end_beep")
                return
        if loud:
            if not self._in_speech:
                self._in_speech = True
                if self._first_speech is None:
                    self._first_speech = self._t
                if self._segment_start is None or self._silence >= s.human_silence:
                    self._segment_start = self._t
                    self._sentence_breaks = 0
                elif self._silence >= s.sentence_pause:
                    self._sentence_breaks += 1
            self._speech_secs += self._dt
            self._silence = 0.0
        else:
            if self._in_speech:
                self._in_speech = False
                self._last_speech_end = self._t
            self._silence += self._dt
        self._decide()

    def _decide(self) -> None:
        s = self.settings
        t = self._t
        if self._first_speech is None:
            if not self._classified and t >= s.no_speech_timeout:
                self._classified = True
                self._emit("unknown")
            return
        segment = (t - self._segment_start) if self._segment_start is not None else 0.0
        if not self._classified:
            long_enough = segment >= s.machine_min_greeting or (
                self._sentence_breaks > 0 and segment >= s.sentence_greeting
            )
            if self._in_speech and long_enough:
                self._machine = self._classified = True
                self._emit("machine_start")
            elif not self._in_speech and self._silence >= s.human_silence:
                self._after_speech(segment)
            return
        if self._machine and (
            self._silence >= s.end_silence or t - self._first_speech >= s.max_greeting
        ):
            self._emit("machine_end_silence")

    def _after_speech(self, segment: float) -> None:
        """A real pause before any verdict: a short answer, a long one, or a greeting?"""
        s = self.settings
        monologue = segment - self._silence  # the speech up to the pause
        if self._speech_secs <= s.human_max_greeting:
            self._classified = True
            self._emit("human")
        elif self._sentence_breaks > 0 or monologue >= s.machine_min_greeting:
            # Several sentences (or a very long one), then a pause: a recorded greeting.
            self._machine = self._classified = True
            self._emit("machine_start")
        elif self._silence >= s.long_answer_silence:
            # One longer sentence, then quiet with no beep: a person waiting for an answer.
            self._classified = True
            self._emit("human")
