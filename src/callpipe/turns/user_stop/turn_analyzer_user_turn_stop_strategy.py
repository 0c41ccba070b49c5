"""``TurnAnalyzerUserTurnStopStrategy``: an end-of-turn model decides when the caller finished.

callpipe's user aggregator ends a turn when the VAD reports the caller quiet and the final
transcript is in. With this strategy in ``UserTurnStrategies(stop=[...])`` the aggregator first
asks the analyzer at each VAD stop:

- COMPLETE: the turn ends as usual (waiting for the final transcript, if still due).
- INCOMPLETE: the turn is held open. If the caller speaks again it simply goes on; if not, it
  ends once the caller has been quiet for the analyzer's ``stop_secs`` (3 s for smart-turn),
  as Pipecat 1.14 does.

The strategy is the seam between aggregator and analyzer: the aggregator calls
:meth:`append_audio` per packet (a buffer copy), :meth:`analyze` once per VAD stop (the model
runs on a worker thread), :meth:`clear` when a turn ends. ``wait_for_transcript`` is accepted
for compatibility; callpipe's turn end always waits for a final transcript that is still due.
"""

from __future__ import annotations

import logging
from typing import Any

from callpipe.audio.turn.base_turn_analyzer import BaseTurnAnalyzer, EndOfTurnState
from callpipe.audio.turn.smart_turn.base_smart_turn import STOP_SECS, SmartTurnParams
from callpipe.metrics.metrics import MetricsData
from callpipe.turns.user_turn_strategies import BaseUserTurnStopStrategy, wait_for_stt

logger = logging.getLogger(__name__)


class TurnAnalyzerUserTurnStopStrategy(BaseUserTurnStopStrategy):
    """The turn ends when ``turn_analyzer`` says COMPLETE (see the module docstring)."""

    def __init__(
        self, *, turn_analyzer: BaseTurnAnalyzer, wait_for_transcript: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._turn_analyzer = turn_analyzer
        self.wait_for_transcript = wait_for_transcript

    @property
    def turn_analyzer(self) -> BaseTurnAnalyzer:
        return self._turn_analyzer

    @property
    def fallback_secs(self) -> float:
        """Quiet after an INCOMPLETE verdict that ends the turn anyway."""
        params = self._turn_analyzer.params
        return params.stop_secs if isinstance(params, SmartTurnParams) else STOP_SECS

    def transcript_wait(self, floor: float, vad_stop_secs: float) -> float:
        return wait_for_stt(floor, self.stt_timeout, vad_stop_secs)

    def set_sample_rate(self, sample_rate: int) -> None:
        self._turn_analyzer.set_sample_rate(sample_rate)

    def update_vad_start_secs(self, start_secs: float) -> None:
        self._turn_analyzer.update_vad_start_secs(start_secs)

    def update_vad_stop_secs(self, stop_secs: float) -> None:
        self._turn_analyzer.update_vad_stop_secs(stop_secs)

    def append_audio(self, audio: bytes, is_speech: bool) -> bool:
        """Per packet. True when the analyzer ended the turn by itself (quiet ran out)."""
        return self._turn_analyzer.append_audio(audio, is_speech) is EndOfTurnState.COMPLETE

    async def analyze(self) -> tuple[bool, MetricsData | None]:
        """At a VAD stop: whether the turn is complete, and the model's metrics.

        A failing analyzer must not leave the caller stuck in an endless turn: it counts as
        COMPLETE (logged once per failure, without a traceback at ERROR).
        """
        try:
            state, metrics = await self._turn_analyzer.analyze_end_of_turn()
        except Exception as exc:  # any analyzer failure degrades to a plain VAD stop
            logger.warning("%s: end-of-turn analysis failed (%s); ending the turn", self, exc)
            self._turn_analyzer.clear()
            return True, None
        return state is EndOfTurnState.COMPLETE, metrics

    def clear(self) -> None:
        self._turn_analyzer.clear()

    async def cleanup(self) -> None:
        await self._turn_analyzer.cleanup()
