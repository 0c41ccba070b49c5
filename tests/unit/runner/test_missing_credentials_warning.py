"""Missing provider credentials are worth one WARNING per process, not one per local call."""

from __future__ import annotations

import logging

import pytest

from callpipe.runner import utils
from callpipe.runner.types import CallData
from callpipe.runner.utils import build_serializer


def test_warned_once_then_debug(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(utils, "_WARNED_MISSING", set())
    caplog.set_level(logging.DEBUG, logger="callpipe.runner.utils")
    for n in range(3):
        serializer = build_serializer("twilio", CallData(stream_id=f"MZ{n}", call_id=f"CA{n}"))
        assert serializer.auto_hang_up is False
    levels = [r.levelno for r in caplog.records if "not set" in r.getMessage()]
    assert levels == [logging.WARNING, logging.DEBUG, logging.DEBUG]
