"""RTVI names, so Pipecat bots written for several transports import and run on phone calls.

RTVI (Real-Time Voice Interface) is the message protocol between a Pipecat bot and its browser
or mobile client: "client ready", "bot ready", transcripts and server messages for a web UI. A
phone call has no such client, and callpipe does not speak the protocol. These classes exist so
that a bot file written for Daily, WebRTC *and* Twilio (the quickstart pattern: an
``RTVIProcessor`` in the pipeline, an ``RTVIObserver`` on the task, an ``on_client_ready``
handler calling ``set_bot_ready()``) runs unchanged here, where they have no effect:

- :class:`RTVIProcessor` passes every frame on unchanged; its events (``on_client_ready``,
  ``on_client_message``, ...) never fire on a call, exactly as with Pipecat on a telephony
  transport. The caller's audio steps over it.
- :class:`RTVIObserver` watches nothing: it overrides no per-frame hook, so the pipeline
  reports no frames to it.
- The ``send_*``/``push_transport_message`` methods send nothing and log at debug level.
- The RTVI frames (:mod:`.frames`) never reach the provider (see that module).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from callpipe.frames.frames import Frame
from callpipe.observers.base_observer import BaseObserver
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.processors.frameworks.rtvi.frames import (
    RTVIClientMessageFrame,
    RTVIConfigureObserverFrame,
    RTVISendTextFrame,
    RTVIServerMessageFrame,
    RTVIServerResponseFrame,
    RTVIUICancelJobGroupFrame,
    RTVIUICommandFrame,
    RTVIUIEventFrame,
    RTVIUIJobGroupFrame,
    RTVIUISnapshotFrame,
)

logger = logging.getLogger(__name__)

__all__ = [
    "BotOutputTransformResult",
    "RTVIClientMessageFrame",
    "RTVIConfig",
    "RTVIConfigureObserverFrame",
    "RTVIFunctionCallReportLevel",
    "RTVIObserver",
    "RTVIObserverParams",
    "RTVIProcessor",
    "RTVISendTextFrame",
    "RTVIServerMessageFrame",
    "RTVIServerResponseFrame",
    "RTVIServiceConfig",
    "RTVIServiceOptionConfig",
    "RTVIUICancelJobGroupFrame",
    "RTVIUICommandFrame",
    "RTVIUIEventFrame",
    "RTVIUIJobGroupFrame",
    "RTVIUISnapshotFrame",
    "SpokenProgressData",
]


# ---------------------------------------------------------------------- configuration


@dataclass
class RTVIServiceOptionConfig:
    """One option of a service in an (older Pipecat) RTVI client configuration."""

    name: str
    value: Any


@dataclass
class RTVIServiceConfig:
    """A service's options in an (older Pipecat) RTVI client configuration."""

    service: str
    options: list[RTVIServiceOptionConfig] = field(default_factory=list)


@dataclass
class RTVIConfig:
    """The RTVI client configuration older Pipecat bots pass as ``RTVIProcessor(config=...)``;
    stored, unused (there is no client to configure on a phone call)."""

    config: list[RTVIServiceConfig] = field(default_factory=list)


@dataclass
class SpokenProgressData:
    """Word progress of a spoken segment, as RTVI clients receive it (nothing is sent here)."""

    accumulated_text: str
    remaining_text: str


@dataclass
class BotOutputTransformResult:
    """What a bot-output transform returns for the RTVI client (transforms never run here)."""

    text: str
    accumulated_text: str | None = None
    remaining_text: str | None = None


class RTVIFunctionCallReportLevel(StrEnum):
    """How much of a function call the RTVI client is told (nothing is told here)."""

    DISABLED = "disabled"
    NONE = "none"
    NAME = "name"
    ARGUMENTS = "arguments"
    FULL = "full"


@dataclass
class RTVIObserverParams:
    """Which RTVI messages Pipecat's observer sends its client. Accepted for compatibility;
    no message is sent on a phone call, so none of these changes anything."""

    bot_output_enabled: bool = True
    bot_llm_enabled: bool = True
    bot_llm_marker_enabled: bool = False
    bot_tts_enabled: bool = True
    bot_speaking_enabled: bool = True
    bot_audio_level_enabled: bool = False
    user_llm_enabled: bool = True
    user_speaking_enabled: bool = True
    vad_user_speaking_enabled: bool = False
    user_mute_enabled: bool = True
    user_transcription_enabled: bool = True
    user_input_enabled: bool = True
    user_audio_level_enabled: bool = False
    metrics_enabled: bool = True
    system_logs_enabled: bool = False
    stt_raw_text_enabled: bool = False
    llm_raw_text_enabled: bool = False
    tts_raw_text_enabled: bool = False
    ignored_sources: list[FrameProcessor] = field(default_factory=list)
    skip_text_types: list[Any] | None = None
    bot_output_transforms: list[tuple[Any, Any]] | None = None
    audio_level_period_secs: float = 0.15
    function_call_report_level: dict[str, RTVIFunctionCallReportLevel] = field(
        default_factory=lambda: {"*": RTVIFunctionCallReportLevel.NONE}
    )
    skip_aggregator_types: list[Any] | None = field(default=None, kw_only=True)


# ---------------------------------------------------------------------- processor, observer


class RTVIProcessor(FrameProcessor):
    """A pass-through stand-in for Pipecat's RTVI processor (see the module docstring).

    ``config`` (older Pipecat) and ``transport`` (deprecated in Pipecat) are accepted and kept;
    neither changes anything. Events: ``on_bot_started``, ``on_client_ready``,
    ``on_client_message``, ``on_ui_message``; none fires on a phone call unless the bot calls
    :meth:`set_client_ready` itself.
    """

    direct = True  # only passes frames on: no queue, no task of its own
    passes_input_audio = True  # the caller's audio steps over it (see FrameProcessor)

    def __init__(
        self, *, config: RTVIConfig | None = None, transport: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._config = config or RTVIConfig()
        self._transport = transport
        self._bot_ready = False
        self._client_ready = False
        for event in ("on_bot_started", "on_client_ready", "on_client_message", "on_ui_message"):
            self._register_event_handler(event)

    @property
    def config(self) -> RTVIConfig:
        return self._config

    @property
    def client_version(self) -> list[int]:
        """The RTVI client's protocol version: ``[0, 0, 0]``, there is none on a call."""
        return [0, 0, 0]

    @property
    def bot_ready(self) -> bool:
        return self._bot_ready

    @property
    def client_ready(self) -> bool:
        return self._client_ready

    def create_rtvi_observer(
        self, *, params: RTVIObserverParams | None = None, **kwargs: Any
    ) -> RTVIObserver:
        return RTVIObserver(self, params=params, **kwargs)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)

    async def set_client_ready(self) -> None:
        """Mark the client ready and run the ``on_client_ready`` handlers (only ever called by
        the bot itself here: no client announces itself on a phone call)."""
        logger.debug("%s: client marked ready (no RTVI client on a phone call)", self)
        self._client_ready = True
        await self._call_event_handler("on_client_ready")

    async def set_bot_ready(self, about: Mapping[str, Any] | None = None) -> None:
        """Mark the bot ready; no "bot-ready" message is sent (there is no client)."""
        logger.debug("%s: bot ready (nothing sent: no RTVI client on a phone call)", self)
        self._bot_ready = True

    async def interrupt_bot(self) -> None:
        """Interrupt the bot, as any processor's ``broadcast_interruption`` does."""
        await self.broadcast_interruption()

    async def send_server_message(self, data: Any) -> None:
        self._not_sent("server message")

    async def send_server_response(self, client_msg: Any, data: Any) -> None:
        self._not_sent("server response")

    async def send_error_response(self, client_msg: Any, error: str) -> None:
        self._not_sent("error response")

    async def send_error(self, error: str) -> None:
        self._not_sent("error")

    async def push_transport_message(self, model: Any, exclude_none: bool = True) -> None:
        self._not_sent("transport message")

    async def handle_message(self, message: Any, user_id: str | None = None) -> None:
        self._not_sent("incoming message (ignored)")

    def _not_sent(self, what: str) -> None:
        logger.debug("%s: RTVI %s not sent: no RTVI client on a phone call", self, what)


class RTVIObserver(BaseObserver):
    """Pipecat's RTVI observer, reduced to nothing: it overrides no frame hook, so the worker
    reports no frames to it and the pipeline does no per-frame work for it."""

    def __init__(
        self,
        rtvi: RTVIProcessor | None = None,
        *,
        params: RTVIObserverParams | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._rtvi = rtvi
        self._params = params or RTVIObserverParams()

    @property
    def params(self) -> RTVIObserverParams:
        return self._params

    def add_bot_output_transformer(self, *args: Any, **kwargs: Any) -> None:
        """Accepted; there is no bot output to transform for a client here."""

    def remove_bot_output_transformer(self, *args: Any, **kwargs: Any) -> None:
        """Accepted; see :meth:`add_bot_output_transformer`."""

    def add_ignored_source(self, source: FrameProcessor) -> None:
        self._params.ignored_sources.append(source)

    def remove_ignored_source(self, source: FrameProcessor) -> None:
        if source in self._params.ignored_sources:
            self._params.ignored_sources.remove(source)

    async def send_rtvi_message(self, model: Any, exclude_none: bool = True) -> None:
        logger.debug("%s: RTVI message not sent: no RTVI client on a phone call", self)
