"""The session configuration of OpenAI Realtime (GA interface), as Pipecat 1.14 names it.

Only what a phone bot configures is modelled: the ``session.update`` body
(:class:`SessionProperties`) and its parts. Field names are the API's own (the ``openai`` SDK's
``RealtimeSessionCreateRequest``), so :meth:`SessionProperties.to_wire` is a plain dump. Client
and server events are plain dicts in :mod:`callpipe.services.openai.realtime.llm`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

OPENAI_SAMPLE_RATE = 24000
"""The only rate of ``audio/pcm`` in the Realtime API."""

Modality = Literal["text", "audio"]
ImageDetail = Literal["auto", "low", "high"]


class PCMAudioFormat(BaseModel):
    """16-bit little-endian PCM, mono, 24 kHz."""

    type: Literal["audio/pcm"] = "audio/pcm"
    rate: Literal[24000] = 24000


class PCMUAudioFormat(BaseModel):
    """G.711 mu-law at 8 kHz: a phone line's own bytes."""

    type: Literal["audio/pcmu"] = "audio/pcmu"


class PCMAAudioFormat(BaseModel):
    """G.711 A-law at 8 kHz."""

    type: Literal["audio/pcma"] = "audio/pcma"


AudioFormat = PCMAudioFormat | PCMUAudioFormat | PCMAAudioFormat


class InputAudioTranscription(BaseModel):
    """Transcribe the caller's audio (the transcript is not what the model hears)."""

    model: str = "gpt-4o-transcribe"
    language: str | None = None
    prompt: str | None = None


class TurnDetection(BaseModel):
    """``server_vad``: end of turn after ``silence_duration_ms`` of silence."""

    type: Literal["server_vad"] = "server_vad"
    threshold: float | None = 0.5
    prefix_padding_ms: int | None = 300
    silence_duration_ms: int | None = 500
    create_response: bool | None = None
    interrupt_response: bool | None = None
    idle_timeout_ms: int | None = None


class SemanticTurnDetection(BaseModel):
    """``semantic_vad``: the model judges when the caller has finished."""

    type: Literal["semantic_vad"] = "semantic_vad"
    eagerness: Literal["low", "medium", "high", "auto"] | None = None
    create_response: bool | None = None
    interrupt_response: bool | None = None


class InputAudioNoiseReduction(BaseModel):
    type: Literal["near_field", "far_field"] | None = None


class AudioInput(BaseModel):
    """``audio.input``. ``turn_detection=False`` switches server turn detection off (sent as
    ``null``); None leaves the server's default (``server_vad``)."""

    format: AudioFormat | None = None
    transcription: InputAudioTranscription | None = None
    noise_reduction: InputAudioNoiseReduction | None = None
    turn_detection: TurnDetection | SemanticTurnDetection | bool | None = None


class AudioOutput(BaseModel):
    format: AudioFormat | None = None
    voice: str | None = None
    speed: float | None = None


class AudioConfiguration(BaseModel):
    input: AudioInput | None = None
    output: AudioOutput | None = None


class Reasoning(BaseModel):
    effort: str | None = None


class SessionProperties(BaseModel):
    """The ``session`` of a ``session.update`` (None fields are not sent).

    ``tools``: a ``ToolsSchema``, a list of ``FunctionSchema`` or the API's own tool dicts;
    the context's tools, when it has any, are sent instead.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    type: Literal["realtime"] = "realtime"
    model: str | None = None
    output_modalities: list[Modality] | None = None
    instructions: str | None = None
    audio: AudioConfiguration | None = None
    tools: Any = None
    tool_choice: Literal["auto", "none", "required"] | None = None
    max_output_tokens: int | Literal["inf"] | None = None
    tracing: Literal["auto"] | dict[str, Any] | None = None
    prompt: dict[str, Any] | None = None
    include: list[str] | None = None
    reasoning: Reasoning | None = None

    def to_wire(self, tools: list[dict[str, Any]] | None) -> dict[str, Any]:
        """The JSON body: None fields left out, ``turn_detection=False`` as ``null``."""
        body = self.model_dump(exclude_none=True, exclude={"tools"})
        audio_in = self.audio.input if self.audio is not None else None
        if audio_in is not None and audio_in.turn_detection is False:
            body["audio"]["input"]["turn_detection"] = None
        elif audio_in is not None and audio_in.turn_detection is True:
            del body["audio"]["input"]["turn_detection"]  # the server's default
        if tools is not None:
            body["tools"] = tools
        return body

    @property
    def turn_detection_disabled(self) -> bool:
        audio_in = self.audio.input if self.audio is not None else None
        return audio_in is not None and audio_in.turn_detection is False
