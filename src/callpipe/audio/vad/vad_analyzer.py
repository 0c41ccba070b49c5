"""The VAD state machine shared by every analyzer, and its parameters.

An analyzer scores fixed windows of audio (32 ms for Silero) with a voice probability; this module
turns those per-window scores into the four states a transport acts on::

    QUIET ──voice──▶ STARTING ──start_secs of voice──▶ SPEAKING
      ▲                 │ no voice                        │ no voice
      └─────────────────┘                                 ▼
    QUIET ◀──stop_secs without voice── STOPPING ◀─────────┘  (voice again → SPEAKING)

A window counts as voice when the model's confidence reaches ``params.confidence`` *and* the
smoothed volume reaches ``params.min_volume``. While STARTING, up to ``start_dip_secs`` of
windows without voice (one Silero window by default, counted over the whole run) neither count
nor restart the run: Silero's confidence often dips for a single window at a consonant just after
speech begins, and restarting there delayed barge-in by 100–180 ms on real speech (Silero's own
reference iterator uses hysteresis for the same reason). ``start_dip_secs=0`` restores the strict
rule, where any dip returns to QUIET. ``start_secs``/``stop_secs`` become window counts
(rounded), and transitions are checked after every window, so event timing is accurate to one
window however the caller chunks its audio.

``analyze_audio`` is a coroutine so an analyzer can hand windows to a shared batching engine
(``SileroVADAnalyzer(shared=True)``); the per-call path computes inline without suspending.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod

from pydantic import BaseModel, ConfigDict, Field

from callpipe.audio.volume import calculate_volume
from callpipe.errors import InvalidStateError
from callpipe.utils.pydantic_docs import document_fields

__all__ = ["VADAnalyzer", "VADParams", "VADState"]

# Volume smoothing: falls by this fraction of the gap per window, rises at once. Instant attack
# keeps the gate from delaying speech start; slow release bridges short dips inside words.
_VOLUME_RELEASE = 0.2


class VADState(enum.IntEnum):
    """Where the caller is in a speech turn."""

    QUIET = 1
    STARTING = 2
    SPEAKING = 3
    STOPPING = 4


class VADParams(BaseModel):
    """Thresholds of the state machine (unknown fields are rejected)."""

    model_config = ConfigDict(extra="forbid")

    confidence: float = Field(
        default=0.7,
        ge=0.0,
        le=1.0,
        description="Model confidence from which a window counts as voice.",
    )
    start_secs: float = Field(
        default=0.2,
        ge=0.0,
        description="Seconds of voice before the caller counts as speaking (and a barge-in "
        "cuts the bot off). Shorter reacts faster; longer ignores coughs and clicks.",
    )
    stop_secs: float = Field(
        default=0.8,
        ge=0.0,
        description="Seconds of silence before the caller's turn counts as over. Most of the "
        "gap before the bot answers: shorter answers sooner but cuts in on callers who pause.",
    )
    min_volume: float = Field(
        default=0.6,
        ge=0.0,
        le=1.0,
        description="Smoothed volume (0 to 1) a window needs to count as voice; quieter "
        "windows are not even scored while the caller is quiet. 0 scores every window.",
    )
    #: Windows without voice tolerated in all of a start run (rounded like ``start_secs``; the
    #: default is one 32 ms Silero window). 0 restarts the run at any dip, as Pipecat does.
    start_dip_secs: float = Field(
        default=0.04,
        ge=0.0,
        description="Silence tolerated once while start_secs of voice is being counted, so a "
        "one-window dip at a consonant does not restart the count. 0: Pipecat's strict rule.",
    )


document_fields(VADParams)


class VADAnalyzer(ABC):
    """Buffers audio, scores complete windows and runs the state machine.

    Subclasses provide :meth:`num_frames_required` and :meth:`voice_confidence`; a subclass that
    scores asynchronously (batched) overrides :meth:`_score_window`, and one whose model runs at
    another rate than its input overrides :meth:`_analysis_window` and :meth:`_convert`.
    """

    def __init__(self, *, sample_rate: int | None = None, params: VADParams | None = None) -> None:
        self._init_sample_rate = sample_rate
        self._sample_rate = 0
        self._params = params or VADParams()
        self._buffer = bytearray()
        self._window_bytes = 0
        self._start_windows = 1
        self._stop_windows = 1
        self._state = VADState.QUIET
        self._voice_run = 0  # windows of voice while STARTING
        self._start_dips = 0  # windows without voice while STARTING
        self._dip_windows = 0
        self._silence_run = 0  # windows without voice while STOPPING
        self._volume = 0.0
        self._volume_primed = False
        self.last_confidence = 0.0  # of the last scored window, for metrics and debugging
        self.last_volume = 0.0  # smoothed

    @property
    def sample_rate(self) -> int:
        """The rate audio is given in (0 until :meth:`set_sample_rate`)."""
        return self._sample_rate

    @property
    def num_channels(self) -> int:
        return 1

    @property
    def params(self) -> VADParams:
        return self._params

    @property
    def state(self) -> VADState:
        """The state after the last analysed window."""
        return self._state

    @abstractmethod
    def num_frames_required(self) -> int:
        """Samples (at :attr:`sample_rate`) in one scored window."""

    @abstractmethod
    def voice_confidence(self, buffer: bytes) -> float:
        """Probability in [0, 1] that one window of 16-bit PCM is voice."""

    def set_sample_rate(self, sample_rate: int) -> None:
        """Called when the pipeline starts; a rate given to the constructor takes precedence."""
        self._sample_rate = self._init_sample_rate or sample_rate
        self.set_params(self._params)

    def set_params(self, params: VADParams) -> None:
        """Apply new thresholds; the state machine restarts in QUIET."""
        self._params = params
        self._buffer.clear()
        self._state = VADState.QUIET
        self._voice_run = self._silence_run = self._start_dips = 0
        if not self._sample_rate:
            return
        frames, rate = self._analysis_window()
        self._window_bytes = frames * 2
        window_secs = frames / rate
        self._start_windows = max(1, round(params.start_secs / window_secs))
        self._stop_windows = max(1, round(params.stop_secs / window_secs))
        self._dip_windows = round(params.start_dip_secs / window_secs)

    async def analyze_audio(self, buffer: bytes) -> VADState:
        """Add audio and return the state after the last complete window."""
        if not self._window_bytes:
            if not self._sample_rate:
                raise InvalidStateError("VAD analyzer used before set_sample_rate()")
            self.set_params(self._params)
        self._buffer += self._convert(buffer)
        size = self._window_bytes
        min_volume = self._params.min_volume
        while len(self._buffer) >= size:
            window = bytes(self._buffer[:size])
            del self._buffer[:size]
            self.last_volume = volume = self._smoothed_volume(window)
            if volume < min_volume and self._state == VADState.QUIET:
                # Too quiet to start speech whatever the model says: don't run it. (Inside a
                # turn the model keeps scoring, so its view of a trailing sound stays exact.)
                self._skip_window(window)
                self.last_confidence = confidence = 0.0
            else:
                self.last_confidence = confidence = await self._score_window(window)
            self._advance(confidence, volume)
        return self._state

    def _analysis_window(self) -> tuple[int, int]:
        """(samples, rate) of one scored window after :meth:`_convert`."""
        return self.num_frames_required(), self._sample_rate

    def _convert(self, buffer: bytes) -> bytes:
        """Turn input audio into the audio that is windowed and scored (identity here)."""
        return buffer

    async def _score_window(self, window: bytes) -> float:
        """Confidence for one window; the default scores it inline."""
        return self.voice_confidence(window)

    def _skip_window(self, window: bytes) -> None:
        """A window below ``min_volume`` went by unscored (a recurrent model may note the gap)."""
        del window  # stateless analyzers have nothing to note

    def _smoothed_volume(self, window: bytes) -> float:
        volume = calculate_volume(window, self._sample_rate)  # RMS: rate-independent
        if not self._volume_primed or volume >= self._volume:
            self._volume, self._volume_primed = volume, True
        else:
            self._volume -= _VOLUME_RELEASE * (self._volume - volume)
        return self._volume

    def _advance(self, confidence: float, volume: float) -> None:
        voice = confidence >= self._params.confidence and volume >= self._params.min_volume
        state = self._state
        if voice:
            self._silence_run = 0
            if state == VADState.QUIET:
                self._state, self._voice_run, self._start_dips = VADState.STARTING, 1, 0
            elif state == VADState.STARTING:
                self._voice_run += 1
            elif state == VADState.STOPPING:
                self._state = VADState.SPEAKING
        else:
            if state == VADState.STARTING:
                self._start_dips += 1
                if self._start_dips > self._dip_windows:
                    self._state, self._voice_run = VADState.QUIET, 0
            elif state == VADState.SPEAKING:
                self._state, self._silence_run = VADState.STOPPING, 1
            elif state == VADState.STOPPING:
                self._silence_run += 1
        if self._state == VADState.STARTING and self._voice_run >= self._start_windows:
            self._state = VADState.SPEAKING
        elif self._state == VADState.STOPPING and self._silence_run >= self._stop_windows:
            self._state = VADState.QUIET
