"""TransportParams and BaseTransport: what every transport shares."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SkipValidation, model_validator

from callpipe.errors import ConfigurationError
from callpipe.processors.base_object import BaseObject
from callpipe.processors.frame_processor import FrameProcessor
from callpipe.transports.seams import VADAnalyzerLike
from callpipe.utils.heap import freeze_startup_heap
from callpipe.utils.pydantic_docs import document_fields

logger = logging.getLogger(__name__)


_UNUSED_WEBRTC = "WebRTC/video option of Pipecat's transports; unused on a phone call."


class TransportParams(BaseModel):
    """Audio and VAD settings of a transport (all keyword arguments, all optional).

    Unknown options are rejected (``extra="forbid"``): a misspelt ``vad_analyser`` must fail at
    construction, not silently run a call without barge-in. Each field's description is listed
    below (and in ``help()``).
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    audio_in_enabled: bool = Field(
        default=False, description="Receive the caller's audio. True for a phone bot."
    )
    audio_in_sample_rate: int | None = Field(
        default=None,
        description="Rate of the InputAudioRawFrames pushed into the pipeline (the serializer "
        "converts from the wire rate). None: PipelineParams.audio_in_sample_rate.",
    )
    audio_in_channels: int = Field(
        default=1, description="Channels of caller audio. Telephony audio is mono (1)."
    )
    audio_in_passthrough: bool = Field(
        default=True,
        description="Push the caller's audio downstream, as an STT service needs. False keeps "
        "it inside the input transport (VAD only).",
    )

    audio_out_enabled: bool = Field(
        default=False, description="Send the bot's audio. True for a phone bot."
    )
    audio_out_sample_rate: int | None = Field(
        default=None,
        description="Rate the output sends at. None: the serializer's wire rate, else "
        "PipelineParams.audio_out_sample_rate. Bot audio is resampled once, straight to it.",
    )
    audio_out_channels: int = Field(
        default=1, description="Channels of bot audio. Telephony audio is mono (1)."
    )
    audio_out_10ms_chunks: int = Field(
        default=2,
        ge=1,
        le=20,
        description="Packet size in 10 ms units: 2 sends 20 ms packets, one telephony packet.",
    )
    audio_out_send_ahead_ms: int = Field(
        default=80,
        ge=0,
        le=1000,
        description="How far ahead of real time audio is sent, so event-loop hiccups never "
        "reach the caller as gaps. It is also at most what is still queued at the provider "
        "when a barge-in clears it.",
    )
    audio_out_max_message_ms: int = Field(
        default=80,
        ge=0,
        le=1000,
        description="When bot audio is already buffered ahead of its schedule, up to this much "
        "of it (whole packets) goes out in one message, at the first packet's send time; the "
        "provider plays the packets back to back. Fewer messages cost less CPU per call; the "
        "first packet of a reply is never held back for the next. 0 (or at most one packet) "
        "sends every packet as its own message.",
    )
    audio_out_write_timeout: float = Field(
        default=5.0,
        gt=0,
        validation_alias=AliasChoices("audio_out_write_timeout", "audio_out_write_timeout_secs"),
        description="Seconds one send may block (a peer that stopped reading) before the call "
        "is ended, instead of buffering without bound. Pipecat 1.14's name, "
        "audio_out_write_timeout_secs, is accepted too.",
    )
    audio_out_end_silence_secs: float = Field(
        default=0.0,
        ge=0,
        description="Silence sent after the last bot audio when the call ends with an "
        "EndFrame, before the hang-up: a margin for carriers that clip the last syllable. "
        "0 sends none.",
    )

    vad_analyzer: SkipValidation[VADAnalyzerLike | None] = Field(
        default=None,
        description="Voice activity detector run on the caller's audio in the input transport "
        "(e.g. SileroVADAnalyzer()): it finds the caller's turns and barge-ins. None: no VAD.",
    )
    vad_enabled: bool | None = Field(
        default=None,
        description="Older Pipecat flag, kept for compatibility. VAD runs whenever "
        "vad_analyzer is set; True without a vad_analyzer is an error, and False does not "
        "turn a given analyzer off (leave vad_analyzer unset for that).",
    )
    vad_audio_passthrough: bool | None = Field(
        default=None,
        description="Older Pipecat name of audio_in_passthrough; when set, it overrides it.",
    )
    turn_analyzer: Any = Field(
        default=None,
        description="Older Pipecat place for an end-of-turn model; accepted and ignored, as "
        "Pipecat 1.14 does (a warning says so). Pass it to the user aggregator instead: "
        "UserTurnStrategies(stop=[TurnAnalyzerUserTurnStopStrategy(turn_analyzer=...)]).",
    )

    playback_tracking: bool = Field(
        default=True,
        description="Use provider marks (Twilio, Telnyx, Plivo) to learn what the caller has "
        "heard; False, or a provider without marks: estimate it from the clock.",
    )
    bot_speaking_period_secs: float = Field(
        default=0.2,
        description="How often a BotSpeakingFrame is broadcast while bot audio is being sent "
        "(what idle timers and turn logic watch).",
    )
    playback_ack_grace_secs: float = Field(
        default=1.0,
        description="How long past the expected end of playback to wait for a lost mark "
        "acknowledgement before counting the audio as played.",
    )

    # Pipecat 1.x audio processing options (see docs/transport.md, "Audio processing").
    audio_in_filter: Any = Field(
        default=None,
        description="A BaseAudioFilter run on the caller's audio before VAD and before it is "
        "pushed on (e.g. RNNoiseFilter()). FilterControlFrames reach it.",
    )
    audio_in_stream_on_start: bool = Field(
        default=True,
        description="Take the caller's audio from the start. False: caller audio is dropped "
        "(no VAD, no STT) until an InputTransportStartAudioStreamingFrame is pushed.",
    )
    audio_out_filter: Any = Field(
        default=None,
        description="A BaseAudioFilter run on the bot's audio (at the output rate) before "
        "volume and mixer.",
    )
    audio_out_volume: float = Field(
        default=1.0,
        ge=0,
        description="Multiplier on the bot's samples (before the mixer); VolumeFrame changes "
        "it and VolumeGainFrame scales it, in order with the audio.",
    )
    audio_out_mixer: Any = Field(
        default=None,
        description="A BaseAudioMixer (e.g. SoundfileMixer for hold music) mixed into every "
        "packet at the wire rate; while the bot is silent the transport keeps sending "
        "mix(silence), paced like bot audio. A mapping {None: mixer} is accepted too.",
    )

    # Pipecat's WebRTC and video options (every Pipecat params class has them): accepted so a
    # bot's params build unchanged, never used on a phone call.
    audio_out_auto_silence: bool = Field(default=True, description=_UNUSED_WEBRTC)
    audio_out_bitrate: int = Field(default=96000, description=_UNUSED_WEBRTC)
    audio_out_destinations: list[str] = Field(default_factory=list, description=_UNUSED_WEBRTC)
    video_in_enabled: bool = Field(default=False, description=_UNUSED_WEBRTC)
    video_in_sources: dict[str, Any] = Field(default_factory=dict, description=_UNUSED_WEBRTC)
    video_out_enabled: bool = Field(default=False, description=_UNUSED_WEBRTC)
    video_out_is_live: bool = Field(default=False, description=_UNUSED_WEBRTC)
    video_out_width: int = Field(default=1024, description=_UNUSED_WEBRTC)
    video_out_height: int = Field(default=768, description=_UNUSED_WEBRTC)
    video_out_bitrate: int | None = Field(default=None, description=_UNUSED_WEBRTC)
    video_out_framerate: int = Field(default=30, description=_UNUSED_WEBRTC)
    video_out_color_format: str = Field(default="RGB", description=_UNUSED_WEBRTC)
    video_out_codec: str | None = Field(default=None, description=_UNUSED_WEBRTC)
    video_out_destinations: list[str] = Field(default_factory=list, description=_UNUSED_WEBRTC)

    @property
    def audio_out_write_timeout_secs(self) -> float:
        """Pipecat 1.14's name for :attr:`audio_out_write_timeout`."""
        return self.audio_out_write_timeout

    @model_validator(mode="after")
    def _legacy_flags(self) -> TransportParams:
        if self.vad_enabled and self.vad_analyzer is None:
            raise ConfigurationError(
                "vad_enabled=True needs vad_analyzer=... (e.g. SileroVADAnalyzer())"
            )
        if self.vad_audio_passthrough is not None:
            self.audio_in_passthrough = self.vad_audio_passthrough
        if self.turn_analyzer is not None:
            logger.warning(
                "TransportParams(turn_analyzer=...) is ignored (as in Pipecat 1.14); use "
                "UserTurnStrategies(stop=[TurnAnalyzerUserTurnStopStrategy(turn_analyzer=...)])"
            )
        return self


document_fields(TransportParams)


class BaseTransport(BaseObject):
    """A pair of processors (``input()`` and ``output()``) sharing one connection."""

    def __init__(
        self,
        *,
        name: str | None = None,
        input_name: str | None = None,
        output_name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        freeze_startup_heap()  # once per process, before the first call's objects pile up
        self._input_name = input_name
        self._output_name = output_name

    def input(self) -> FrameProcessor:
        raise NotImplementedError

    def output(self) -> FrameProcessor:
        raise NotImplementedError

    def get_client_id(self, client: Any) -> str:
        """The id of ``client`` (as the client events pass it); Pipecat 1.14's API. A transport
        without client ids logs a warning and returns ``""``."""
        logger.warning("%s: this transport has no client ids", self)
        return ""

    async def capture_participant_video(
        self,
        participant_id: str,
        framerate: int | None = 30,
        video_source: str = "camera",
        **kwargs: Any,
    ) -> None:
        """Pipecat 1.14's video capture: callpipe carries phone audio only, so this logs a
        warning and captures nothing."""
        logger.warning("%s: no video on a phone call; nothing to capture", self)
