"""Bots import the 1.14 turn classes from their submodules; each path gives the one class."""

from __future__ import annotations

import importlib

import pytest

from callpipe.turns.user_start import (
    ExternalUserTurnStartStrategy,
    UserTurnStartedParams,
    VADUserTurnStartStrategy,
    WakePhraseUserTurnStartStrategy,
)
from callpipe.turns.user_start.wake_phrase_user_turn_start_strategy import WakeState
from callpipe.turns.user_stop import SpeechTimeoutUserTurnStopStrategy, UserTurnStoppedParams
from callpipe.turns.user_turn_strategies import ExternalUserTurnStrategies, UserTurnStrategies

PATHS = {
    "types": ["ProcessFrameResult", "UserTurnSpeculation"],
    "user_start.base_user_turn_start_strategy": [
        "BaseUserTurnStartStrategy",
        "UserTurnStartedParams",
    ],
    "user_start.vad_user_turn_start_strategy": ["VADUserTurnStartStrategy"],
    "user_start.transcription_user_turn_start_strategy": ["TranscriptionUserTurnStartStrategy"],
    "user_start.min_words_user_turn_start_strategy": ["MinWordsUserTurnStartStrategy"],
    "user_start.external_user_turn_start_strategy": ["ExternalUserTurnStartStrategy"],
    "user_start.wake_phrase_user_turn_start_strategy": ["WakePhraseUserTurnStartStrategy"],
    "user_stop.base_user_turn_stop_strategy": ["BaseUserTurnStopStrategy", "UserTurnStoppedParams"],
    "user_stop.speech_timeout_user_turn_stop_strategy": ["SpeechTimeoutUserTurnStopStrategy"],
    "user_stop.external_user_turn_stop_strategy": ["ExternalUserTurnStopStrategy"],
    "user_stop.turn_analyzer_user_turn_stop_strategy": ["TurnAnalyzerUserTurnStopStrategy"],
    "user_mute.base_user_mute_strategy": ["BaseUserMuteStrategy"],
    "user_mute.always_user_mute_strategy": ["AlwaysUserMuteStrategy"],
    "user_mute.first_speech_user_mute_strategy": ["FirstSpeechUserMuteStrategy"],
    "user_mute.function_call_user_mute_strategy": ["FunctionCallUserMuteStrategy"],
    "user_mute.mute_until_first_bot_complete_user_mute_strategy": [
        "MuteUntilFirstBotCompleteUserMuteStrategy"
    ],
    "user_idle_controller": ["UserIdleController"],
    "empty_user_turn": ["EmptyUserTurnConfig"],
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_submodule_paths_give_the_package_classes(path: str) -> None:
    module = importlib.import_module(f"callpipe.turns.{path}")
    for name in PATHS[path]:
        cls = getattr(module, name)
        if "." in path:  # one implementation: the package exports the same object
            package = importlib.import_module("callpipe.turns." + path.rpartition(".")[0])
            assert getattr(package, name) is cls


def test_started_params_follow_the_strategy_unless_overridden() -> None:
    quiet = ExternalUserTurnStartStrategy(enable_interruptions=False)
    assert quiet.turn_started_params() == UserTurnStartedParams(False, True)
    adopted = VADUserTurnStartStrategy().turn_started_params(
        enable_interruptions=False, enable_user_speaking_frames=False
    )
    assert adopted == UserTurnStartedParams(False, False)
    assert UserTurnStoppedParams(enable_user_speaking_frames=True).confirms_speculation is False


def test_external_strategies_resolve_proposals() -> None:
    strategies = ExternalUserTurnStrategies(enable_interruptions=False)
    start = strategies.proposed_start_resolver()
    assert isinstance(start, ExternalUserTurnStartStrategy) and not start.enable_interruptions
    assert strategies.proposed_stop_resolver() is not None
    assert UserTurnStrategies().proposed_start_resolver() is None


def test_the_stt_latency_sets_the_speech_timeout_wait() -> None:
    strategies = UserTurnStrategies(stop=[SpeechTimeoutUserTurnStopStrategy()])
    assert strategies.transcript_wait(0.5, 0.2) == 0.5
    strategies.update_stt_timeout(1.5)
    assert strategies.transcript_wait(0.5, 0.2) == pytest.approx(1.3)
    assert strategies.transcript_wait(0.5, 1.4) == 0.5


async def test_wake_phrase_matching_ignores_case_punctuation_and_splits() -> None:
    wake = WakePhraseUserTurnStartStrategy(phrases=["ok robot"])
    heard: list[str] = []
    wake.add_event_handler("on_wake_phrase_detected", lambda s, phrase: heard.append(phrase))
    assert not await wake.check_transcript("robots are ok")
    assert wake.state is WakeState.IDLE
    assert not await wake.check_transcript("so, OK,")
    assert await wake.check_transcript("Robot! Lights on")
    assert wake.awake and heard == ["ok robot"]
    await wake.cleanup()
