"""TransportParams and BaseTransport: what every transport shares."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from callpipe.processors.base_object import BaseObject
from callpipe.processors.frame_processor import FrameProcessor


class TransportParams(BaseModel):
    """Audio and VAD settings of a transport.

    Unknown options are rejected (``extra="forbid"``): a misspelt ``vad_analyser`` must fail at
    construction, not silently run a call without barge-in.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    audio_in_enabled: bool = False
    audio_in_sample_rate: int | None = None
    audio_in_channels: int = 1
    audio_in_passthrough: bool = True

    audio_out_enabled: bool = False
    audio_out_sample_rate: int | None = None
    audio_out_channels: int = 1
    audio_out_10ms_chunks: int = Field(default=2, ge=1, le=20)
    audio_out_send_ahead_ms: int = Field(default=80, ge=0, le=1000)
    audio_out_write_timeout: float = Field(default=5.0, gt=0)
    audio_out_end_silence_secs: float = Field(default=0.0, ge=0)

    vad_analyzer: Any = None
    vad_enabled: bool | None = None
    vad_audio_passthrough: bool | None = None

    playback_tracking: bool = True
    bot_speaking_period_secs: float = 0.2
    playback_ack_grace_secs: float = 1.0

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

    @model_validator(mode="after")
    def _legacy_flags(self) -> TransportParams:
        if self.vad_enabled and self.vad_analyzer is None:
            raise ValueError("vad_enabled=True needs vad_analyzer=... (e.g. SileroVADAnalyzer())")
        if self.vad_audio_passthrough is not None:
            self.audio_in_passthrough = self.vad_audio_passthrough
        return self


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
        self._input_name = input_name
        self._output_name = output_name

    def input(self) -> FrameProcessor:
        raise NotImplementedError

    def output(self) -> FrameProcessor:
        raise NotImplementedError
