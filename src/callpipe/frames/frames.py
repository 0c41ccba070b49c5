"""The frame vocabulary: small dataclasses that flow through a pipeline.

Three kinds, and the kind decides how a processor treats a frame:

- ``SystemFrame``: handled at once, ahead of queued work, never dropped by an interruption
  (start, cancel, inbound audio, speaking events, urgent messages, DTMF in).
- ``DataFrame``: queued and handled in order; dropped from queues by an interruption
  (bot audio, text, transcriptions, messages in order with audio).
- ``ControlFrame``: queued in order with data (end, TTS/LLM response boundaries); dropped by an
  interruption unless the class says ``UNINTERRUPTIBLE`` (``EndFrame``, ``StopFrame``).

Frames carry no behaviour. Names and fields mirror the Pipecat API so Pipecat code runs unchanged.
"""

from __future__ import annotations

import itertools
from abc import ABC
from dataclasses import Field, dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Self

from callpipe.errors import ConfigurationError
from callpipe.utils.context.llm_context_summarization import LLMContextSummaryConfig
from callpipe.utils.errors import ErrorCategory
from callpipe.utils.text.base_text_aggregator import TextType as TextType  # Pipecat imports it here

# The counter's own C ``__next__`` as the id factory: no Python frame per frame created.
_next_id = itertools.count(1).__next__


class UninterruptibleFrame:
    """Mixin (Pipecat 1.x): frames of a class that also derives from this survive interruptions.

    ``class MyFrame(DataFrame, UninterruptibleFrame)`` is the same as setting
    ``UNINTERRUPTIBLE = True`` on the class; :class:`Frame` applies it when the class is made.
    """

    __slots__ = ()


class _InterruptibleSlot:
    """Holds the per-frame ``interruptible`` override in a slot that is not a dataclass field:
    it is never written unless code sets ``frame.interruptible``, so making a frame costs
    nothing more, and ``dataclasses.fields()`` does not list it."""

    __slots__ = ("_interruptible",)
    _interruptible: bool
    UNINTERRUPTIBLE: ClassVar[bool]

    @property
    def interruptible(self) -> bool:
        """Whether an interruption may drop this frame from a queue (Pipecat 1.14's field).

        ``not UNINTERRUPTIBLE`` of the class unless set on this frame: ``frame.interruptible =
        False`` keeps one frame through interruptions, ``True`` lets one frame of an
        uninterruptible class be dropped. Read only when an interruption empties a queue.
        """
        try:
            return self._interruptible
        except AttributeError:
            return not self.UNINTERRUPTIBLE

    @interruptible.setter
    def interruptible(self, value: bool) -> None:
        self._interruptible = bool(value)


@dataclass(slots=True)
class Frame(_InterruptibleSlot):
    """Base of every frame: a process-unique ``id``, a readable ``name`` and optional ``pts``."""

    UNINTERRUPTIBLE: ClassVar[bool] = False
    LIFECYCLE: ClassVar[bool] = False
    """True for the few classes ``FrameProcessor.process_frame`` itself acts on (start, cancel,
    interruption, pause/resume): one attribute test per frame instead of a chain of isinstance."""

    def __init_subclass__(cls) -> None:
        # No super() here: slots=True rebuilds the class, which breaks zero-argument super.
        if issubclass(cls, UninterruptibleFrame):
            cls.UNINTERRUPTIBLE = True
        # Pipecat 1.14's spelling in a frame class: ``interruptible: bool = field(default=False,
        # init=False)`` (the class attribute is the Field here, the bare default after
        # @dataclass has run).
        declared = cls.__dict__.get("interruptible")
        if isinstance(declared, Field):
            declared = declared.default
        if isinstance(declared, bool):
            cls.UNINTERRUPTIBLE = not declared

    id: int = field(init=False, default_factory=_next_id, compare=False)
    pts: int | None = field(default=None, kw_only=True, compare=False)
    transport_source: str | None = field(default=None, kw_only=True, compare=False)
    transport_destination: str | None = field(default=None, kw_only=True, compare=False)
    _metadata: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)
    broadcast_sibling_id: int | None = field(default=None, init=False, repr=False, compare=False)
    """Id of the twin frame sent the other way by ``FrameProcessor.broadcast_frame``."""

    @property
    def metadata(self) -> dict[str, Any]:
        """Free-form annotations; the dict is made on first use (most frames never need one)."""
        if self._metadata is None:
            self._metadata = {}
        return self._metadata

    @metadata.setter
    def metadata(self, value: dict[str, Any]) -> None:
        self._metadata = value

    @property
    def name(self) -> str:
        return f"{type(self).__name__}#{self.id}"

    def __str__(self) -> str:
        return self.name


@dataclass(slots=True)
class SystemFrame(Frame):
    """Handled immediately; overtakes queued frames; survives interruptions."""


@dataclass(slots=True)
class DataFrame(Frame):
    """Handled in order; dropped by interruptions."""


@dataclass(slots=True)
class ControlFrame(Frame):
    """Handled in order with data frames."""


# --------------------------------------------------------------------------- audio


class AudioRawFrame(ABC):
    """Virtual base of every PCM16 audio frame, for ``isinstance`` checks.

    Audio frames are ``InputAudioRawFrame`` (system) or ``OutputAudioRawFrame`` (data) and its
    subclasses; they share the fields ``audio``, ``sample_rate``, ``num_channels``.
    """

    audio: bytes
    sample_rate: int
    num_channels: int


class _PCM:
    """Shared behaviour of the audio frames: validation and ``num_frames`` (no fields, no slots).

    The fields are declared by each dataclass, so the mixin stays compatible with ``slots=True``.

    A length that is not a whole number of sample frames (an odd byte count for mono) is
    accepted, as Pipecat does, but the dangling partial sample is dropped here: it carries no
    sound, and every consumer (VAD, resampler, mixer, G.711) can then rely on whole samples,
    so one malformed packet can never raise further down and end a call.
    """

    __slots__ = ()
    audio: bytes
    sample_rate: int
    num_channels: int

    def __post_init__(self) -> None:
        # One comparison chain for the usual mono case (one per 20 ms packet per call).
        if self.num_channels == 1 and self.sample_rate > 0 and not len(self.audio) & 1:
            return
        channels = self.num_channels
        if channels < 1:
            raise ConfigurationError(f"num_channels must be >= 1, got {channels}")
        if self.sample_rate <= 0:
            raise ConfigurationError(f"sample_rate must be > 0, got {self.sample_rate}")
        extra = len(self.audio) % (2 * channels)
        if extra:
            self.audio = bytes(self.audio[:-extra])  # type: ignore[misc]  # field of the dataclass

    @property
    def num_frames(self) -> int:
        return len(self.audio) // (2 * self.num_channels)


@dataclass(slots=True)
class InputAudioRawFrame(_PCM, SystemFrame):
    """Audio received from the caller (PCM16 at the pipeline's input rate)."""

    audio: bytes
    sample_rate: int
    num_channels: int = 1


@dataclass(slots=True)
class OutputAudioRawFrame(_PCM, DataFrame):
    """Audio for the caller; the output transport resamples, chunks and paces it."""

    audio: bytes
    sample_rate: int
    num_channels: int = 1


@dataclass(slots=True)
class TTSAudioRawFrame(OutputAudioRawFrame):
    """Audio produced by a TTS service; counts as bot speech."""

    context_id: str | None = None


@dataclass(slots=True)
class SpeechOutputAudioRawFrame(OutputAudioRawFrame):
    """Bot speech audio that did not come from a TTS service (e.g. an echo of the caller)."""


@dataclass(slots=True)
class UserAudioRawFrame(InputAudioRawFrame):
    """Caller audio tagged with who said it (Pipecat's multi-user input frame)."""

    user_id: str = ""


AudioRawFrame.register(InputAudioRawFrame)
AudioRawFrame.register(OutputAudioRawFrame)


# --------------------------------------------------------------------------- lifecycle


@dataclass(slots=True)
class StartFrame(SystemFrame):
    """First frame through every processor; carries the pipeline-wide settings."""

    LIFECYCLE: ClassVar[bool] = True

    audio_in_sample_rate: int = 16000
    audio_out_sample_rate: int = 16000
    allow_interruptions: bool = True
    enable_metrics: bool = False
    enable_usage_metrics: bool = False
    report_only_initial_ttfb: bool = False


@dataclass(slots=True)
class CancelFrame(SystemFrame):
    """Stop now: processors drop queued work and shut down."""

    LIFECYCLE: ClassVar[bool] = True

    reason: str | None = None


@dataclass(slots=True)
class ErrorFrame(SystemFrame):
    """An error report travelling upstream to the task; ``fatal`` ends the task.

    ``unhandled``: an exception escaped a processor (a bug, not a reported provider hiccup); by
    default the task then ends the call gracefully.
    """

    error: str
    fatal: bool = False
    processor: Any = field(default=None, compare=False)
    unhandled: bool = False
    exception: BaseException | None = field(default=None, compare=False)
    """The exception behind the error, when there was one (Pipecat 1.14's field)."""
    category: ErrorCategory | None = None
    """What kind of failure (Pipecat 1.14's field): set by the services' error reports; None
    when whoever made the frame did not say."""


@dataclass(slots=True)
class FatalErrorFrame(ErrorFrame):
    """An error after which the pipeline cannot continue."""

    fatal: bool = True


@dataclass(slots=True)
class EndFrame(ControlFrame):
    """Graceful end: everything queued before it is processed (and played), then stop."""

    UNINTERRUPTIBLE: ClassVar[bool] = True
    reason: str | None = None


@dataclass(slots=True)
class StopFrame(ControlFrame):
    """Stop processing but keep processors alive."""

    UNINTERRUPTIBLE: ClassVar[bool] = True


@dataclass(slots=True)
class WorkerFrame(ControlFrame):
    """A request to the pipeline worker, in order with data (push it either way)."""


@dataclass(slots=True)
class WorkerSystemFrame(SystemFrame):
    """A request to the pipeline worker, handled at once (push it either way)."""


@dataclass(slots=True)
class EndWorkerFrame(WorkerFrame):
    """Ask the worker to end gracefully: it queues an ``EndFrame`` (what came first plays out)."""

    UNINTERRUPTIBLE: ClassVar[bool] = True
    reason: Any = None


@dataclass(slots=True)
class StopWorkerFrame(WorkerFrame):
    """Ask the worker to stop (``StopFrame``) once what came first is processed."""

    UNINTERRUPTIBLE: ClassVar[bool] = True


@dataclass(slots=True)
class CancelWorkerFrame(WorkerSystemFrame):
    """Ask the worker to cancel now (``CancelFrame``)."""

    reason: Any = None


@dataclass(slots=True)
class InterruptionWorkerFrame(WorkerSystemFrame):
    """Ask the worker to interrupt the pipeline (it sends an ``InterruptionFrame`` down)."""


TaskFrame = WorkerFrame
"""Pipecat's pre-1.4 name for :class:`WorkerFrame`."""
TaskSystemFrame = WorkerSystemFrame
"""Pipecat's pre-1.4 name for :class:`WorkerSystemFrame`."""


@dataclass(slots=True)
class EndTaskFrame(EndWorkerFrame):
    """The spec's name for :class:`EndWorkerFrame` (pushed upstream to end the call gracefully)."""


@dataclass(slots=True)
class StopTaskFrame(StopWorkerFrame):
    """The older name for :class:`StopWorkerFrame`."""


@dataclass(slots=True)
class CancelTaskFrame(CancelWorkerFrame):
    """The spec's name for :class:`CancelWorkerFrame`."""


@dataclass(slots=True)
class InterruptionTaskFrame(InterruptionWorkerFrame):
    """The older name for :class:`InterruptionWorkerFrame`."""


@dataclass(slots=True)
class FrameProcessorPauseFrame(ControlFrame):
    """Pause ``processor``'s queue (in order): queued frames wait until resumed."""

    LIFECYCLE: ClassVar[bool] = True

    processor: Any


@dataclass(slots=True)
class FrameProcessorPauseUrgentFrame(SystemFrame):
    """Pause ``processor``'s queue at once."""

    LIFECYCLE: ClassVar[bool] = True

    processor: Any


@dataclass(slots=True)
class FrameProcessorResumeFrame(SystemFrame):
    """Resume ``processor``'s queue (a system frame, so it cannot get stuck behind the pause)."""

    LIFECYCLE: ClassVar[bool] = True

    processor: Any


FrameProcessorResumeUrgentFrame = FrameProcessorResumeFrame


@dataclass(slots=True)
class HeartbeatFrame(SystemFrame):
    """Liveness probe sent through the pipeline."""

    timestamp: float = 0.0


@dataclass(slots=True)
class MetricsFrame(SystemFrame):
    """Metrics data (TTFB, processing time, latency) when metrics are enabled."""

    data: list[Any] = field(default_factory=list)


# --------------------------------------------------------------------------- interruptions


@dataclass(slots=True)
class InterruptionFrame(SystemFrame):
    """The user barged in: drop queued bot output and tell the provider to clear its buffer."""

    LIFECYCLE: ClassVar[bool] = True


StartInterruptionFrame = InterruptionFrame
"""Legacy name (older Pipecat API) for :class:`InterruptionFrame`."""


@dataclass(slots=True)
class StopInterruptionFrame(SystemFrame):
    """The user stopped speaking after an interruption (legacy, informational)."""


@dataclass(slots=True)
class BotInterruptionFrame(SystemFrame):
    """Pushed upstream to ask the input transport to interrupt the bot."""


# --------------------------------------------------------------------------- speaking state


@dataclass(slots=True)
class UserStartedSpeakingFrame(SystemFrame):
    emulated: bool = False


@dataclass(slots=True)
class UserStoppedSpeakingFrame(SystemFrame):
    emulated: bool = False


@dataclass(slots=True)
class UserSpeakingFrame(SystemFrame):
    """Periodic while the user speaks."""


@dataclass(slots=True)
class VADUserStartedSpeakingFrame(SystemFrame):
    start_secs: float = 0.0
    timestamp: float = 0.0


@dataclass(slots=True)
class VADUserStoppedSpeakingFrame(SystemFrame):
    stop_secs: float = 0.0
    timestamp: float = 0.0


@dataclass(slots=True)
class EmulateUserStartedSpeakingFrame(SystemFrame):
    pass


@dataclass(slots=True)
class EmulateUserStoppedSpeakingFrame(SystemFrame):
    pass


@dataclass(slots=True)
class BotStartedSpeakingFrame(SystemFrame):
    pass


@dataclass(slots=True)
class BotStoppedSpeakingFrame(SystemFrame):
    """The bot's audio finished. With playback tracking: the caller has heard all of it."""


@dataclass(slots=True)
class BotSpeakingFrame(SystemFrame):
    """Periodic while bot audio is being played."""


@dataclass(slots=True)
class BotInterruptedFrame(SystemFrame):
    """Report of an interrupted bot reply: how much the caller actually heard.

    ``heard_secs`` is the playback position of the interrupted reply; ``heard_text`` is the
    text spoken so far when word timing is known (TTS word timestamps), else ``None``.
    """

    heard_secs: float = 0.0
    heard_text: str | None = None


# --------------------------------------------------------------------------- transport io


@dataclass(slots=True)
class ClientConnectedFrame(SystemFrame):
    """The input transport started on a connected client."""


@dataclass(slots=True)
class OutputTransportReadyFrame(ControlFrame):
    """The output transport is ready to send."""


@dataclass(slots=True)
class TransportMessageFrame(DataFrame):
    """An application message for the client, sent in order after preceding audio."""

    message: Any


OutputTransportMessageFrame = TransportMessageFrame


@dataclass(slots=True)
class TransportMessageUrgentFrame(SystemFrame):
    """An application message for the client, sent at once."""

    message: Any


OutputTransportMessageUrgentFrame = TransportMessageUrgentFrame


@dataclass(slots=True)
class InputTransportMessageFrame(SystemFrame):
    """An application message received from the client."""

    message: Any


class KeypadEntry(StrEnum):
    """A telephone keypad button."""

    ZERO = "0"
    ONE = "1"
    TWO = "2"
    THREE = "3"
    FOUR = "4"
    FIVE = "5"
    SIX = "6"
    SEVEN = "7"
    EIGHT = "8"
    NINE = "9"
    POUND = "#"
    STAR = "*"


class DTMFFrame:
    """Mixin marking every keypad frame, for ``isinstance(frame, DTMFFrame)`` (Pipecat 1.14)."""

    __slots__ = ()


def _keys(
    frame: str, button: KeypadEntry | None, buttons: list[KeypadEntry] | None
) -> tuple[KeypadEntry, list[KeypadEntry]]:
    """``(button, buttons)`` of an output DTMF frame given either (``buttons`` wins)."""
    if buttons is None and button is not None:
        buttons = [button]
    if not buttons:
        raise ValueError(f"{frame} needs `button` or `buttons`")
    return buttons[0], buttons


@dataclass(slots=True)
class InputDTMFFrame(SystemFrame, DTMFFrame):
    """A key the caller pressed."""

    button: KeypadEntry


@dataclass(slots=True)
class OutputDTMFFrame(DataFrame, DTMFFrame):
    """Keys to press on the call (in order with audio): ``OutputDTMFFrame(KeypadEntry.ONE)``,
    ``OutputDTMFFrame(buttons=[...])`` or ``OutputDTMFFrame.from_string("123#")``."""

    button: KeypadEntry | None = None
    buttons: list[KeypadEntry] | None = None

    def __post_init__(self) -> None:
        self.button, self.buttons = _keys(type(self).__name__, self.button, self.buttons)

    @classmethod
    def from_string(cls, buttons: str, **kwargs: Any) -> Self:
        """The frame for a dial string such as ``"123#"``."""
        return cls(buttons=[KeypadEntry(c) for c in buttons], **kwargs)

    def to_string(self) -> str:
        """The keys as a dial string, ``"123#"``."""
        return "".join(key.value for key in self.buttons or ())


@dataclass(slots=True)
class OutputDTMFUrgentFrame(SystemFrame, DTMFFrame):
    """Keys to press on the call, at once (same arguments as :class:`OutputDTMFFrame`)."""

    button: KeypadEntry | None = None
    buttons: list[KeypadEntry] | None = None

    def __post_init__(self) -> None:
        self.button, self.buttons = _keys(type(self).__name__, self.button, self.buttons)

    @classmethod
    def from_string(cls, buttons: str, **kwargs: Any) -> Self:
        """The frame for a dial string such as ``"123#"``."""
        return cls(buttons=[KeypadEntry(c) for c in buttons], **kwargs)

    def to_string(self) -> str:
        """The keys as a dial string, ``"123#"``."""
        return "".join(key.value for key in self.buttons or ())


@dataclass(slots=True)
class TransferCallFrame(ControlFrame):
    """Transfer the call to a phone number or SIP URI (provider call control)."""

    UNINTERRUPTIBLE: ClassVar[bool] = True
    target: str


@dataclass(slots=True)
class VADParamsUpdateFrame(ControlFrame):
    """Change the VAD parameters of whoever runs VAD (the input transport or a VADProcessor)."""

    params: Any


@dataclass(slots=True)
class SpeechControlParamsFrame(SystemFrame):
    """The VAD (and turn) parameters in force, announced to processors that need them."""

    vad_params: Any = None
    turn_params: Any = None


@dataclass(slots=True)
class InputTransportStartAudioStreamingFrame(ControlFrame):
    """Start taking the caller's audio (with ``audio_in_stream_on_start=False``).

    Queue it on the worker (it reaches ``transport.input()`` first) or push it upstream.
    """


@dataclass(slots=True)
class MixerControlFrame(ControlFrame):
    """Base of the frames the output transport hands to its ``audio_out_mixer`` (in order)."""


@dataclass(slots=True)
class MixerUpdateSettingsFrame(MixerControlFrame):
    """Change mixer settings, e.g. ``{"sound": "hold", "volume": 0.3, "loop": True}``."""

    settings: dict[str, Any]


@dataclass(slots=True)
class MixerEnableFrame(MixerControlFrame):
    """Turn the mixer's own audio on or off (off: idle time is silence again)."""

    enable: bool


@dataclass(slots=True)
class FilterControlFrame(ControlFrame):
    """Base of the frames a transport hands to its audio filters."""


@dataclass(slots=True)
class FilterUpdateSettingsFrame(FilterControlFrame):
    settings: dict[str, Any]


@dataclass(slots=True)
class FilterEnableFrame(FilterControlFrame):
    """Turn filtering on or off (off: audio passes unchanged)."""

    enable: bool


@dataclass(slots=True)
class VolumeFrame(ControlFrame):
    """Set the output volume (a multiplier on the bot's samples), in order with its audio."""

    UNINTERRUPTIBLE: ClassVar[bool] = True
    volume: float


@dataclass(slots=True)
class VolumeGainFrame(ControlFrame):
    """Set a gain on top of the volume for the audio that follows (reset it with 1.0)."""

    UNINTERRUPTIBLE: ClassVar[bool] = True
    gain: float


@dataclass(slots=True)
class PlaybackMarkFrame(SystemFrame):
    """The provider acknowledged a mark: audio sent before the mark has been played."""

    mark: str


@dataclass(slots=True)
class StreamStoppedFrame(SystemFrame):
    """The provider said the media stream stopped (the call ended on its side)."""

    reason: str | None = None


# --------------------------------------------------------------------------- text, LLM, TTS


@dataclass(slots=True)
class TextFrame(DataFrame):
    """A piece of text. Set after construction, as in Pipecat:

    - ``skip_tts``: a TTS service passes the text on without speaking it (the assistant's
      context still gets it). None means not set.
    - ``append_to_context``: False keeps the text out of the assistant's context.
    - ``includes_inter_frame_spaces``: the text carries its own spacing to its neighbours.
    """

    text: str
    skip_tts: bool | None = field(default=None, init=False, compare=False)
    append_to_context: bool = field(default=True, init=False, compare=False)
    includes_inter_frame_spaces: bool = field(default=False, init=False, compare=False)


@dataclass(slots=True)
class LLMTextFrame(TextFrame):
    """A chunk of text streamed from an LLM."""


@dataclass(slots=True)
class TranscriptionFrame(TextFrame):
    """What the caller said. Never dropped by an interruption: barge-in cancels *bot* output,
    and a transcript still in a queue when the caller starts again is part of their turn."""

    UNINTERRUPTIBLE: ClassVar[bool] = True
    user_id: str = ""
    timestamp: str = ""
    language: str | None = None
    result: Any = None
    """The STT provider's own result (e.g. Deepgram's ``Results`` with word timings)."""
    finalized: bool = False
    """The provider marked the end of the utterance (Deepgram ``speech_final``/finalize)."""


@dataclass(slots=True)
class InterimTranscriptionFrame(TextFrame):
    UNINTERRUPTIBLE: ClassVar[bool] = True
    user_id: str = ""
    timestamp: str = ""
    language: str | None = None
    result: Any = None


@dataclass(slots=True)
class TTSSpeakFrame(DataFrame):
    """Ask the TTS to say this text.

    ``append_to_context=False``: the words are spoken but kept out of the assistant's context
    (a hold message, a filler). ``text_type`` is what the TTS's text transforms see.
    """

    text: str
    append_to_context: bool = True
    text_type: str = TextType.SENTENCE


@dataclass(slots=True)
class BotBackchannelFrame(TTSSpeakFrame, UninterruptibleFrame):
    """A short acknowledgment for the bot to say while the caller talks ("Mm-hmm.").

    Spoken like any ``TTSSpeakFrame``; its text type is ``TextType.BACKCHANNEL`` (the assistant
    aggregator's ``on_assistant_backchannel``), it stays out of the context unless
    ``append_to_context=True``, and an interruption does not cut it unless
    ``frame.interruptible = True`` is set.
    """

    append_to_context: bool = False
    text_type: str = field(default=TextType.BACKCHANNEL, init=False)


@dataclass(slots=True)
class UserBackchannelFrame(DataFrame):
    """A short acknowledgment the caller said while the bot talked ("mhm"), pushed in place of
    its transcription by a processor that tells them apart: the bot keeps talking, and the
    user aggregator reports it (``on_user_backchannel``) without adding it to the context."""

    text: str
    user_id: str = ""
    timestamp: str = ""


@dataclass(slots=True)
class LLMMessagesFrame(DataFrame):
    """Replace the LLM context messages and run the LLM."""

    messages: list[dict[str, Any]]


@dataclass(slots=True)
class LLMMessagesAppendFrame(DataFrame):
    """Append messages to the LLM context (and optionally run it)."""

    messages: list[dict[str, Any]]
    run_llm: bool = False


@dataclass(slots=True)
class LLMRunFrame(DataFrame):
    """Run the LLM on the current context."""


@dataclass(slots=True)
class TTSStartedFrame(ControlFrame):
    context_id: str | None = None
    append_to_context: bool = True
    """Whether the reply's spoken text goes into the LLM context (as its TTSTextFrames say)."""


@dataclass(slots=True)
class TTSStoppedFrame(ControlFrame):
    context_id: str | None = None


@dataclass(slots=True)
class LLMFullResponseStartFrame(ControlFrame):
    pass


@dataclass(slots=True)
class LLMFullResponseEndFrame(ControlFrame):
    pass


# ------------------------------------------------------------------ Pipecat 1.14 conversation
# (LLMContext, tools, function calls, settings updates, mute and idle; see issue 17)


@dataclass(slots=True)
class LLMContextFrame(Frame):
    """Run the LLM on this ``LLMContext`` (pushed by the user aggregator at the end of a turn).

    ``context`` is typed loosely here because frames sit below the processors that define
    ``LLMContext``; it is an ``LLMContext`` (or the older ``OpenAILLMContext``).
    ``speculation``: the run answers an eager end of turn not confirmed yet, so the LLM service
    holds its reply (see ``callpipe.turns.speculation_gate``).
    """

    context: Any = None
    speculation: bool = False


@dataclass(slots=True)
class LLMMessagesUpdateFrame(DataFrame):
    """Replace the context's messages (and run the LLM when ``run_llm``)."""

    messages: list[Any]
    run_llm: bool | None = None


@dataclass(slots=True)
class LLMMessagesTransformFrame(DataFrame):
    """Replace the context's messages with ``transform(messages)``."""

    transform: Any
    run_llm: bool | None = None


@dataclass(slots=True)
class LLMSetToolsFrame(DataFrame):
    """Change the tools advertised to the model (a ``ToolsSchema``, a list, or ``NOT_GIVEN``)."""

    tools: Any


@dataclass(slots=True)
class LLMSetToolChoiceFrame(DataFrame):
    """Change the tool choice: ``"none"``, ``"auto"``, ``"required"`` or a specific tool."""

    tool_choice: Any


@dataclass(slots=True)
class LLMContextUserTurnFrame(DataFrame):
    """The text of a user turn as written to the context (broadcast by the user aggregator)."""

    text: str
    timestamp: str


@dataclass(slots=True)
class LLMAssistantPushAggregationFrame(ControlFrame):
    """Make the assistant aggregator write the reply text it holds to the context now,
    without waiting for the reply's end."""


@dataclass(slots=True)
class LLMEnablePromptCachingFrame(DataFrame):
    """Turn the LLM service's prompt caching on or off (services that have it: Anthropic's
    ``enable_prompt_caching``; the others pass the frame on)."""

    enable: bool


@dataclass(slots=True)
class LLMContextAssistantTurnFrame(DataFrame):
    """The text of a finished assistant turn, as heard by the caller."""

    text: str
    timestamp: str


@dataclass(slots=True)
class FunctionCallResultProperties:
    """How a function result is used: ``run_llm`` (None = run when the last call of the batch
    finishes), ``on_context_updated`` (run in a task of its own once the result is in the
    context), ``is_final`` (False: a progress report of an asynchronous call, which keeps
    running; see :mod:`callpipe.processors.aggregators.async_tool_messages`. A service whose
    ``accepts_intermediate_function_call_results`` is False drops it with a warning)."""

    run_llm: bool | None = None
    on_context_updated: Any = None
    is_final: bool = True


@dataclass(slots=True)
class FunctionCallFromLLM:
    """One function call the model asked for."""

    function_name: str
    tool_call_id: str
    arguments: Any
    context: Any


@dataclass(slots=True)
class FunctionCallsStartedFrame(SystemFrame):
    """The LLM service is about to run these calls (broadcast both ways)."""

    function_calls: list[FunctionCallFromLLM] = field(default_factory=list)


@dataclass(slots=True)
class FunctionCallInProgressFrame(ControlFrame):
    """A function call is running (broadcast both ways)."""

    UNINTERRUPTIBLE: ClassVar[bool] = True
    function_name: str = ""
    tool_call_id: str = ""
    arguments: Any = None
    cancel_on_interruption: bool = False
    group_id: str | None = None


@dataclass(slots=True)
class FunctionCallResultFrame(DataFrame):
    """A function call finished with ``result`` (broadcast both ways)."""

    UNINTERRUPTIBLE: ClassVar[bool] = True
    function_name: str = ""
    tool_call_id: str = ""
    arguments: Any = None
    result: Any = None
    run_llm: bool | None = None
    properties: FunctionCallResultProperties | None = None
    error: str | None = None


@dataclass(slots=True)
class FunctionCallCancelFrame(SystemFrame):
    """A function call was cancelled: by an interruption, or (an asynchronous call) at the
    model's request or past its timeout; ``run_llm`` is True for a timeout, whose cancellation
    the model is run to report."""

    function_name: str = ""
    tool_call_id: str = ""
    run_llm: bool = False


@dataclass(slots=True)
class UserMuteStartedFrame(SystemFrame):
    """The user aggregator started ignoring the caller (a mute strategy is active)."""


@dataclass(slots=True)
class UserMuteStoppedFrame(SystemFrame):
    """The user aggregator listens to the caller again."""


@dataclass(slots=True)
class UserIdleTimeoutUpdateFrame(SystemFrame):
    """Change the user-idle timeout at runtime (0 disables idle detection)."""

    timeout: float = 0.0


@dataclass(slots=True)
class ServiceUpdateSettingsFrame(ControlFrame):
    """Change a service's settings at runtime.

    ``delta`` is a ``Settings`` object: the service's own, its kind's base class
    (``LLMSettings``...) or another provider's (the given fields the service has change);
    ``settings`` is the older dict form. ``service`` limits the update to one service.
    ``reach_inactive_services``: a ``ServiceSwitcher`` hands the update to every service it
    holds, not only the active one (for provider-neutral settings that must survive a switch).
    """

    UNINTERRUPTIBLE: ClassVar[bool] = True
    settings: dict[str, Any] = field(default_factory=dict)
    delta: Any = None
    service: Any = None
    reach_inactive_services: bool = False


@dataclass(slots=True)
class LLMUpdateSettingsFrame(ServiceUpdateSettingsFrame):
    """Settings update for LLM services."""


@dataclass(slots=True)
class TTSUpdateSettingsFrame(ServiceUpdateSettingsFrame):
    """Settings update for TTS services."""


@dataclass(slots=True)
class STTUpdateSettingsFrame(ServiceUpdateSettingsFrame):
    """Settings update for STT services."""


@dataclass(slots=True)
class AudioBufferStartRecordingFrame(ControlFrame):
    """Tell an ``AudioBufferProcessor`` to start recording (in order with the audio)."""

    UNINTERRUPTIBLE: ClassVar[bool] = True


@dataclass(slots=True)
class AudioBufferStopRecordingFrame(ControlFrame):
    """Tell an ``AudioBufferProcessor`` to hand out what it holds and stop recording."""

    UNINTERRUPTIBLE: ClassVar[bool] = True


# -------------------------------------------------------------- Pipecat 1.14 context summarization
# (callpipe.processors.aggregators.llm_context_summarizer). The assistant aggregator asks the LLM
# service upstream of it for a summary and the service answers downstream, so nothing needs a
# reference to anything else. Request and result are system frames here (control frames in
# Pipecat): the LLM service only starts a background task for a request, so it need not wait
# behind a streaming turn, and a result must not be held behind bot audio in the output
# transport, which drops what it holds when the caller barges in.


@dataclass(slots=True)
class LLMSummarizeContextFrame(ControlFrame):
    """Summarize the context now (on demand), whatever the automatic thresholds say.

    ``config`` overrides the assistant aggregator's summary settings for this one summary.
    Ignored while a summary is being made.
    """

    UNINTERRUPTIBLE: ClassVar[bool] = True
    config: LLMContextSummaryConfig | None = None


@dataclass(slots=True)
class LLMContextSummaryRequestFrame(SystemFrame):
    """From the assistant aggregator to the LLM service (upstream): summarize ``context``.

    The service picks the messages (all but the leading system message(s) and the last
    ``min_messages_to_keep``, never splitting a tool call from its result), asks the model with
    ``summarization_prompt`` and at most ``target_context_tokens`` output tokens, and answers
    with an :class:`LLMContextSummaryResultFrame` carrying the same ``request_id``.
    ``summarization_timeout`` None means 120 s.
    """

    UNINTERRUPTIBLE: ClassVar[bool] = True
    request_id: str
    context: Any
    min_messages_to_keep: int
    target_context_tokens: int
    summarization_prompt: str
    summarization_timeout: float | None = None


@dataclass(slots=True)
class LLMContextSummaryResultFrame(SystemFrame):
    """The LLM service's answer to a summary request (broadcast both ways).

    ``summary`` is the model's text; ``last_summarized_index`` the context index of the last
    message it covers (-1 when there is none); ``error`` says why there is no summary.
    """

    UNINTERRUPTIBLE: ClassVar[bool] = True
    request_id: str
    summary: str
    last_summarized_index: int
    error: str | None = None


# ------------------------------------------------------------------ Pipecat 1.14 service switchers
# (callpipe.pipeline.service_switcher; ``service`` is the FrameProcessor concerned)


@dataclass(slots=True)
class ServiceSwitcherFrame(ControlFrame):
    """Base of the frames that steer a ``ServiceSwitcher`` (in order with the data)."""


@dataclass(slots=True)
class ManuallySwitchServiceFrame(ServiceSwitcherFrame):
    """Make ``service`` the active one of the switcher holding it (manual strategy).

    A switcher that does not hold ``service`` passes the frame on, to the next switcher.
    """

    service: Any


@dataclass(slots=True)
class ServiceSwitcherRequestMetadataFrame(ControlFrame):
    """Sent by a switcher to the service it just made active, asking it to announce itself
    again; the switcher drops it when the service passes it on."""

    service: Any


# ------------------------------------------------------------------ Pipecat 1.14: more frames
# Each of these is acted on somewhere in callpipe (the class docstring says where); none is a
# name kept only for imports.


@dataclass(slots=True)
class AggregatedTextFrame(TextFrame):
    """Text already cut into a unit (a sentence, a ``<spell>`` block, a custom type).

    Made by ``LLMTextProcessor`` from an LLM's tokens; a TTS service speaks it as one piece and
    skips the text types it was told to skip. ``raw_text`` is the text with its pattern
    delimiters when it came from a pattern match. ``will_be_spoken`` is set by the TTS service.
    """

    text_type: str = TextType.SENTENCE
    context_id: str | None = None
    raw_text: str | None = None
    will_be_spoken: bool = field(default=False, init=False)

    @property
    def aggregated_by(self) -> str:
        """Older name of :attr:`text_type`."""
        return self.text_type

    @aggregated_by.setter
    def aggregated_by(self, value: str) -> None:
        self.text_type = value


@dataclass(slots=True)
class TTSTextFrame(AggregatedTextFrame):
    """Text the TTS has spoken (aligned with its audio when word timing is known).

    As in Pipecat 1.14 it is an ``AggregatedTextFrame``: ``text_type`` is ``"word"`` for a word
    released with its audio, else the type of the piece that was spoken (``"sentence"``, the
    default, so the older ``TTSTextFrame(text)`` still works); ``context_id`` names the TTS
    context; ``segment_id`` the piece a word belongs to, when known.
    """

    segment_id: int | None = None


@dataclass(slots=True)
class TranslationFrame(TextFrame):
    """A translation of what the caller said (from a translating STT); never spoken or
    written to the context by callpipe's aggregators."""

    UNINTERRUPTIBLE: ClassVar[bool] = True
    user_id: str = ""
    timestamp: str = ""
    language: str | None = None


@dataclass(slots=True)
class EagerTranscriptionFrame(TextFrame):
    """A transcript of a turn the STT predicts has ended, before it commits to it.

    May be withdrawn (:class:`EagerEndOfTurnCancelFrame`); nothing made from it may reach the
    caller or the context until the committed transcript confirms it.
    """

    UNINTERRUPTIBLE: ClassVar[bool] = True
    user_id: str = ""
    timestamp: str = ""
    language: str | None = None
    result: Any = None


@dataclass(slots=True)
class InputTextRawFrame(SystemFrame, TextFrame):
    """Text the user typed or a program injected, taken by the user aggregator as user input
    (as a transcript would be)."""


@dataclass(slots=True)
class STTMuteFrame(SystemFrame):
    """Mute (``mute=True``) or unmute the STT service: while muted it sends no audio."""

    mute: bool = True


@dataclass(slots=True)
class ServiceMetadataFrame(SystemFrame):
    """Broadcast by a service when the pipeline starts, describing itself to the processors
    after it.

    ``user_turn_strategies``: the turn strategies the service recommends (a service that
    detects end of turn itself); the user aggregator uses them unless the bot set its own.
    """

    service_name: str = ""
    user_turn_strategies: Any = field(default=None, kw_only=True)


@dataclass(slots=True)
class STTMetadataFrame(ServiceMetadataFrame):
    """An STT service's latency: ``ttfs_p99_latency`` is the p99 time, in seconds, from the end
    of speech to its final transcript. Turn stop strategies wait that long for a transcript."""

    ttfs_p99_latency: float = 0.0


@dataclass(slots=True)
class LLMServiceMetadataFrame(ServiceMetadataFrame):
    """An LLM service's description; ``is_realtime_service`` for speech-to-speech models."""

    is_realtime_service: bool = False


@dataclass(slots=True)
class LLMThoughtStartFrame(ControlFrame):
    """An LLM begins a thought (reasoning text that is not to be spoken).

    ``append_to_context``: the assistant aggregator keeps the thought in the context, as a
    message specific to ``llm`` (which must then be given).
    """

    append_to_context: bool = False
    llm: str | None = None

    def __post_init__(self) -> None:
        if self.append_to_context and self.llm is None:
            raise ConfigurationError("LLMThoughtStartFrame: append_to_context needs llm")


@dataclass(slots=True)
class LLMThoughtTextFrame(DataFrame):
    """A chunk of an LLM thought. A data frame, not a text frame: a TTS never speaks it."""

    text: str
    includes_inter_frame_spaces: bool = field(default=True, init=False, compare=False)


@dataclass(slots=True)
class LLMThoughtEndFrame(ControlFrame):
    """An LLM thought ends; ``signature`` is the provider's (when it signs thoughts)."""

    signature: Any = None


@dataclass(slots=True)
class LLMConfigureOutputFrame(DataFrame):
    """``skip_tts=True``: the LLM's following text goes to the context but is not spoken."""

    skip_tts: bool = False


@dataclass(slots=True)
class BotConnectedFrame(SystemFrame):
    """The bot joined a room (SFU transports); a phone call's transports do not send it."""


@dataclass(slots=True)
class ProposedUserStartedSpeakingFrame(SystemFrame):
    """A service that detects speech itself proposes that the user's turn started; an external
    turn start strategy turns it into ``UserStartedSpeakingFrame``."""


@dataclass(slots=True)
class ProposedUserStoppedSpeakingFrame(ControlFrame):
    """A service that detects end of turn itself proposes that the user's turn ended (after
    its final transcript, in order with it); an external stop strategy decides."""


@dataclass(slots=True)
class UserTurnInferenceCompletedFrame(SystemFrame):
    """Something that judges turn completeness (an LLM, a classifier) says the user's turn is
    complete."""


@dataclass(slots=True)
class EagerEndOfTurnCancelFrame(SystemFrame):
    """An eager end of turn is withdrawn: the user went on speaking, or the committed
    transcript differs."""


@dataclass(slots=True)
class LLMMarkerFrame(DataFrame):
    """A short marker an LLM produced that belongs in the context but is not spoken (e.g. the
    turn-completion markers of ``filter_incomplete_user_turns``)."""

    marker: str = ""
    append_to_context_immediately: bool = True
