"""VADController: turns a VAD analyzer's states into speech start/stop decisions.

One place decides when the caller started or stopped speaking, so the input transport
(``vad_analyzer`` in its params) and ``VADProcessor`` (Pipecat 1.x style, a processor after
``transport.input()``) make exactly the same decisions. Pure logic: no frames, no tasks.

Decisions: a start when the analyzer reaches SPEAKING from any other state (the STARTING and
STOPPING states in between are hysteresis, not decisions); a stop when it falls back to QUIET
after a start. ``speech_activity`` is due at most every ``speech_activity_period`` seconds
while speaking.
"""

from __future__ import annotations

import enum
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from callpipe.audio.vad.vad_analyzer import VADParams, VADState

logger = logging.getLogger(__name__)

_EVENTS = ("on_speech_started", "on_speech_stopped", "on_speech_activity")


class _Analyzer(Protocol):
    @property
    def params(self) -> VADParams: ...

    def set_sample_rate(self, sample_rate: int) -> None: ...

    def set_params(self, params: VADParams) -> None: ...

    async def analyze_audio(self, buffer: bytes) -> Any: ...


class SpeechChange(enum.IntEnum):
    NONE = 0
    STARTED = 1
    STOPPED = 2


class VADController:
    """Feed caller audio to :meth:`process_audio`; it returns (and reports) the decision.

    Handlers registered with ``@controller.event_handler("on_speech_started")`` (also
    ``on_speech_stopped``, ``on_speech_activity``) are awaited with the controller.
    """

    def __init__(
        self,
        vad_analyzer: _Analyzer,
        *,
        speech_activity_period: float = 0.2,
        audio_idle_timeout: float = 1.0,
    ) -> None:
        self.vad_analyzer = vad_analyzer
        self.speech_activity_period = speech_activity_period
        self.audio_idle_timeout = audio_idle_timeout
        self._state = int(VADState.QUIET)
        self._speaking = False
        self._last_activity = 0.0
        self.last_audio_time = 0.0
        self._handlers: dict[str, list[Callable[..., Any]]] = {e: [] for e in _EVENTS}

    @property
    def speaking(self) -> bool:
        return self._speaking

    @property
    def params(self) -> VADParams:
        return self.vad_analyzer.params

    def set_sample_rate(self, sample_rate: int) -> None:
        self.vad_analyzer.set_sample_rate(sample_rate)

    def event_handler(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(handler: Callable[..., Any]) -> Callable[..., Any]:
            self.add_event_handler(name, handler)
            return handler

        return register

    def add_event_handler(self, name: str, handler: Callable[..., Any]) -> None:
        if name not in self._handlers:
            raise ValueError(f"unknown VADController event {name!r} (known: {', '.join(_EVENTS)})")
        self._handlers[name].append(handler)

    async def process_audio(self, audio: bytes) -> SpeechChange:
        """Analyze one chunk; return whether the caller just started or stopped speaking."""
        self.last_audio_time = time.monotonic()
        state = int(await self.vad_analyzer.analyze_audio(audio))
        change = SpeechChange.NONE
        if state != self._state:
            self._state = state
            if state == VADState.SPEAKING and not self._speaking:
                change = SpeechChange.STARTED
            elif state == VADState.QUIET and self._speaking:
                change = SpeechChange.STOPPED
        if change is SpeechChange.STARTED:
            self._speaking = True
            await self._emit("on_speech_started")
        elif change is SpeechChange.STOPPED:
            self._speaking = False
            await self._emit("on_speech_stopped")
        if self._speaking and self._handlers["on_speech_activity"]:
            now = time.monotonic()
            if now - self._last_activity >= self.speech_activity_period:
                self._last_activity = now
                await self._emit("on_speech_activity")
        return change

    async def force_stop(self) -> bool:
        """End a speech turn whose audio stopped arriving (the stream went idle mid-speech)."""
        if not self._speaking:
            return False
        self._speaking = False
        self._state = int(VADState.QUIET)
        await self._emit("on_speech_stopped")
        return True

    async def _emit(self, name: str) -> None:
        for handler in self._handlers[name]:
            try:
                result = handler(self)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("VADController: %s handler failed", name)
