"""Pipecat's Daily names import (for multi-transport bot files); a Daily room is refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from callpipe.errors import ConfigurationError
from callpipe.transports.base_transport import TransportParams
from callpipe.transports.daily.transport import (
    DailyDialinSettings,
    DailyParams,
    DailyTranscriptionSettings,
    DailyTransport,
)


def test_daily_params_take_pipecats_daily_options() -> None:
    params = DailyParams(
        audio_in_enabled=True,
        audio_out_enabled=True,
        api_url="https://api.daily.co/v1",
        api_key="key",
        dialin_settings=DailyDialinSettings(call_id="c", call_domain="d"),
        transcription_enabled=True,
        transcription_settings=DailyTranscriptionSettings(language="de"),
        video_out_enabled=False,
        camera_out_enabled=False,
    )
    assert isinstance(params, TransportParams)
    assert params.audio_in_enabled and params.transcription_settings.language == "de"
    assert params.dialin_settings is not None and params.dialin_settings.call_id == "c"


def test_daily_params_still_refuse_a_misspelt_option() -> None:
    with pytest.raises(ValidationError):
        DailyParams(transcription_enabeld=True)  # type: ignore[call-arg]


def test_a_daily_transport_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ConfigurationError, match="Daily WebRTC rooms are not provided"):
        DailyTransport("https://x.daily.co/room", None, "Pipecat Bot", params=DailyParams())
