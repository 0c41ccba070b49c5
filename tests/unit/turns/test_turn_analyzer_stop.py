"""``TurnAnalyzerUserTurnStopStrategy`` over a scripted analyzer (no model)."""

from __future__ import annotations

import pytest

from callpipe.audio.turn.base_turn_analyzer import BaseTurnAnalyzer, BaseTurnParams, EndOfTurnState
from callpipe.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
from callpipe.metrics.metrics import MetricsData, TurnMetricsData
from callpipe.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
from callpipe.turns.user_turn_strategies import UserTurnStrategies


class ScriptedAnalyzer(BaseTurnAnalyzer):
    """Answers from a script; records what it was fed."""

    def __init__(
        self, verdicts: list[EndOfTurnState | Exception], params: BaseTurnParams | None = None
    ) -> None:
        super().__init__()
        self.verdicts = list(verdicts)
        self.fed: list[tuple[int, bool]] = []
        self.cleared = 0
        self.vad_start_secs = 0.0
        self.vad_stop_secs = 0.0
        self._params = params or SmartTurnParams(stop_secs=0.3)
        self.quiet_ends_turn = False

    @property
    def speech_triggered(self) -> bool:
        return bool(self.fed)

    @property
    def params(self) -> BaseTurnParams:
        return self._params

    def append_audio(self, buffer: bytes, is_speech: bool) -> EndOfTurnState:
        self.fed.append((len(buffer), is_speech))
        if self.quiet_ends_turn and not is_speech:
            return EndOfTurnState.COMPLETE
        return EndOfTurnState.INCOMPLETE

    async def analyze_end_of_turn(self) -> tuple[EndOfTurnState, MetricsData | None]:
        verdict = self.verdicts.pop(0) if len(self.verdicts) > 1 else self.verdicts[0]
        if isinstance(verdict, Exception):
            raise verdict
        complete = verdict is EndOfTurnState.COMPLETE
        return verdict, TurnMetricsData(
            processor="scripted", is_complete=complete, probability=0.9 if complete else 0.1
        )

    def update_vad_start_secs(self, vad_start_secs: float) -> None:
        self.vad_start_secs = vad_start_secs

    def update_vad_stop_secs(self, vad_stop_secs: float) -> None:
        self.vad_stop_secs = vad_stop_secs

    def clear(self) -> None:
        self.cleared += 1


async def test_analyze_maps_the_verdicts() -> None:
    analyzer = ScriptedAnalyzer([EndOfTurnState.INCOMPLETE, EndOfTurnState.COMPLETE])
    strategy = TurnAnalyzerUserTurnStopStrategy(turn_analyzer=analyzer)
    assert strategy.turn_analyzer is analyzer
    complete, metrics = await strategy.analyze()
    assert not complete and isinstance(metrics, TurnMetricsData) and metrics.probability == 0.1
    complete, _ = await strategy.analyze()
    assert complete


async def test_a_failing_analyzer_ends_the_turn(caplog: pytest.LogCaptureFixture) -> None:
    analyzer = ScriptedAnalyzer([RuntimeError("model exploded")])
    strategy = TurnAnalyzerUserTurnStopStrategy(turn_analyzer=analyzer)
    assert await strategy.analyze() == (True, None)
    assert analyzer.cleared == 1
    assert "model exploded" in caplog.text
    assert all(r.levelname != "ERROR" for r in caplog.records)


def test_fallback_is_the_analyzers_stop_secs_and_audio_is_forwarded() -> None:
    analyzer = ScriptedAnalyzer([EndOfTurnState.COMPLETE], SmartTurnParams(stop_secs=1.5))
    strategy = TurnAnalyzerUserTurnStopStrategy(turn_analyzer=analyzer, wait_for_transcript=False)
    assert strategy.fallback_secs == 1.5
    assert not strategy.wait_for_transcript
    assert not strategy.append_audio(b"\0" * 320, True)
    analyzer.quiet_ends_turn = True
    assert strategy.append_audio(b"\0" * 320, False)
    assert analyzer.fed == [(320, True), (320, False)]
    strategy.set_sample_rate(8000)
    strategy.update_vad_start_secs(0.2)
    assert analyzer.sample_rate == 8000 and analyzer.vad_start_secs == 0.2
    plain = ScriptedAnalyzer([EndOfTurnState.COMPLETE], BaseTurnParams())
    assert TurnAnalyzerUserTurnStopStrategy(turn_analyzer=plain).fallback_secs == 3.0


def test_strategy_goes_in_user_turn_strategies() -> None:
    strategy = TurnAnalyzerUserTurnStopStrategy(
        turn_analyzer=ScriptedAnalyzer([EndOfTurnState.COMPLETE])
    )
    strategies = UserTurnStrategies(stop=[strategy])
    assert strategies.stop == [strategy]
    assert strategies.speech_timeout is None
