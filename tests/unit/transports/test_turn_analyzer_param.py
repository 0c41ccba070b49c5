"""`TransportParams(turn_analyzer=...)`: older bots construct; ignored, as in Pipecat 1.14."""

from __future__ import annotations

import logging

import pytest

from callpipe.transports.websocket.fastapi import FastAPIWebsocketParams


def test_older_transport_turn_analyzer_is_accepted_and_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    analyzer = object()
    with caplog.at_level(logging.WARNING):
        params = FastAPIWebsocketParams(audio_in_enabled=True, turn_analyzer=analyzer)
    assert params.turn_analyzer is analyzer
    assert "TurnAnalyzerUserTurnStopStrategy" in caplog.text
    caplog.clear()
    FastAPIWebsocketParams(audio_in_enabled=True)
    assert caplog.text == ""
