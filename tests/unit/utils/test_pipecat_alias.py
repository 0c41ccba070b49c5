"""The pipecat → callpipe import hook, and the portable example built through it."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import callpipe.frames.frames
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.utils.pipecat_alias import install_pipecat_alias, uninstall_pipecat_alias

PORTABLE = Path(__file__).resolve().parents[3] / "examples" / "pipecat114-portable" / "bot.py"


def test_pipecat_names_are_callpipe_modules() -> None:
    install_pipecat_alias()
    try:
        frames = importlib.import_module("pipecat.frames.frames")
        assert frames is callpipe.frames.frames
        context_module = importlib.import_module("pipecat.processors.aggregators.llm_context")
        assert context_module.LLMContext is LLMContext
        with pytest.raises(ModuleNotFoundError, match="callpipe"):
            importlib.import_module("pipecat.services.not_a_provider")
    finally:
        uninstall_pipecat_alias()
    assert "pipecat.frames.frames" not in sys.modules


def test_portable_bot_builds_on_callpipe() -> None:
    out = subprocess.run(
        [sys.executable, str(PORTABLE), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip().startswith("callpipe: pipeline built:")
    assert "LLMUserAggregator" in out.stdout and "OpenAILLMService" in out.stdout


def test_smart_turn_imports_resolve_under_pipecat_names() -> None:
    from callpipe.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
    from callpipe.turns.user_stop import TurnAnalyzerUserTurnStopStrategy

    install_pipecat_alias()
    try:
        v3 = importlib.import_module("pipecat.audio.turn.smart_turn.local_smart_turn_v3")
        assert v3.LocalSmartTurnAnalyzerV3 is LocalSmartTurnAnalyzerV3
        params = importlib.import_module("pipecat.audio.turn.smart_turn.base_smart_turn")
        assert params.SmartTurnParams().stop_secs == 3.0
        stop = importlib.import_module(
            "pipecat.turns.user_stop.turn_analyzer_user_turn_stop_strategy"
        )
        assert stop.TurnAnalyzerUserTurnStopStrategy is TurnAnalyzerUserTurnStopStrategy
    finally:
        uninstall_pipecat_alias()
