"""Serializer log lines name the call by its masked id: a refusal of bad input is one line
that says which call without printing the provider's id whole."""

from __future__ import annotations

import logging

import pytest

from callpipe.frames.frames import StartFrame, TransportMessageFrame
from callpipe.serializers.asterisk import AsteriskFrameSerializer
from callpipe.serializers.twilio import TwilioFrameSerializer

CALL_SID = "CA0123456789abcdef0123456789abcdef"
CHANNEL = "pbx1-1761245643.12"


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("callpipe.serializers")]


async def test_twilio_malformed_input_and_bad_message_log_the_masked_sid(
    caplog: pytest.LogCaptureFixture,
) -> None:
    params = TwilioFrameSerializer.InputParams(auto_hang_up=False)
    ser = TwilioFrameSerializer("MZ0", CALL_SID, params=params)
    await ser.setup(StartFrame(audio_in_sample_rate=8000, audio_out_sample_rate=8000))
    with caplog.at_level(logging.DEBUG, logger="callpipe"):
        assert await ser.deserialize("{not json") is None
        assert await ser.serialize(TransportMessageFrame(message={"x": object()})) is None
    lines = _lines(caplog)
    assert len(lines) >= 3  # malformed (WARNING + DEBUG detail), message not JSON
    assert all("CA01…ef" in line and CALL_SID not in line for line in lines), lines


async def test_asterisk_refused_command_logs_the_masked_channel(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ser = AsteriskFrameSerializer(CHANNEL)
    await ser.setup(StartFrame(audio_in_sample_rate=8000, audio_out_sample_rate=8000))
    with caplog.at_level(logging.DEBUG, logger="callpipe"):
        assert await ser.serialize(TransportMessageFrame(message={"command": "nope"})) is None
    lines = _lines(caplog)
    assert len(lines) == 1 and "pbx1…12" in lines[0] and CHANNEL not in lines[0], lines
