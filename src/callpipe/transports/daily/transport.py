"""Pipecat's Daily names, so a bot written for Daily *and* a phone provider imports here.

callpipe answers phone calls over a telephony provider's WebSocket; it does not join Daily
WebRTC rooms (nor any browser transport). A bot file that offers several transports
(``transport_params = {"daily": lambda: DailyParams(...), "twilio": lambda: ...}``) imports
and runs on its phone branch: :class:`DailyParams` accepts Pipecat's Daily options (they are
never used, since that factory is only called for a Daily room), and :class:`DailyTransport`
refuses to be built with a :class:`~callpipe.errors.ConfigurationError` that says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from pydantic import BaseModel, Field

from callpipe.errors import ConfigurationError
from callpipe.transports.base_transport import BaseTransport, TransportParams
from callpipe.utils.pydantic_docs import document_fields

__all__ = [
    "DailyDialinSettings",
    "DailyParams",
    "DailyTranscriptionSettings",
    "DailyTransport",
]

NOT_PROVIDED = (
    "Daily WebRTC rooms are not provided by callpipe: it answers phone calls through a "
    "telephony provider's WebSocket (run the bot with -t twilio, telnyx, plivo, exotel, ...)"
)


class DailyDialinSettings(BaseModel):
    """Daily PSTN dial-in identifiers (used only by a Daily room)."""

    call_id: str = ""
    call_domain: str = ""


class DailyTranscriptionSettings(BaseModel):
    """Daily's built-in transcription options (used only by a Daily room)."""

    language: str = "en"
    model: str = "nova-2-general"
    profanity_filter: bool = True
    redact: bool = False
    endpointing: bool = True
    punctuate: bool = True
    includeRawResponse: bool = True  # Daily's own field name
    extra: Mapping[str, Any] = Field(default_factory=lambda: {"interim_results": True})


_UNUSED = "Daily room option; unused by callpipe, which joins no Daily room."


class DailyParams(TransportParams):
    """Pipecat's ``DailyParams``: callpipe's :class:`TransportParams` plus the Daily options.

    Accepted so that a ``"daily"`` factory in ``transport_params`` can be written as for
    Pipecat; no callpipe transport uses it (see the module docstring). Unknown names are still
    refused, as on every callpipe params class.
    """

    api_url: str = Field(default="https://api.daily.co/v1", description=_UNUSED)
    api_key: str = Field(default="", description=_UNUSED)
    audio_in_user_tracks: bool = Field(default=True, description=_UNUSED)
    camera_out_enabled: bool = Field(default=True, description=_UNUSED)
    camera_out_send_settings: dict[str, Any] | None = Field(default=None, description=_UNUSED)
    custom_audio_track_params: Mapping[str, Any] | None = Field(default=None, description=_UNUSED)
    custom_video_track_params: Mapping[str, Any] | None = Field(default=None, description=_UNUSED)
    dialin_settings: DailyDialinSettings | None = Field(default=None, description=_UNUSED)
    initial_receive_bitrate: int | None = Field(default=None, description=_UNUSED)
    microphone_out_enabled: bool = Field(default=True, description=_UNUSED)
    transcription_enabled: bool = Field(default=False, description=_UNUSED)
    transcription_settings: DailyTranscriptionSettings = Field(
        default_factory=DailyTranscriptionSettings, description=_UNUSED
    )


document_fields(DailyParams)


class DailyTransport(BaseTransport):
    """Pipecat's Daily WebRTC transport, which callpipe does not provide: building one raises
    :class:`~callpipe.errors.ConfigurationError`."""

    def __init__(
        self,
        room_url: str = "",
        token: str | None = None,
        bot_name: str = "",
        params: DailyParams | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        _refuse()


def _refuse() -> NoReturn:
    raise ConfigurationError(NOT_PROVIDED)
