"""Pipecat 1.x ``UserBotLatencyObserver``: how long the caller waited for the bot, and on what.

The wait runs from the moment the caller fell silent (the VAD's stop, less the ``stop_secs``
of silence it needed to be sure) to the bot starting to speak; for the greeting, from the call
being answered. Alongside each measurement comes a :class:`LatencyBreakdown`:

- ``contributions``: the wait cut into consecutive named parts (the silence the VAD waited
  out, transcription, turn detection, LLM inference, a function handler, sentence
  aggregation, speech synthesis, output transport...), each owned by the processor that spent
  the time or by the ``config: ...`` setting that decides it. What no part names is listed
  last as one ``pipeline`` entry, so the durations add up to ``total_secs``;
- ``text_aggregation``: from the LLM's first text to the first sentence handed to the TTS;
- each service's time to first byte (when the pipeline runs with ``enable_metrics=True``),
  how long the turn took to be released, and the function calls that ran in between.

The parts are cut at moments read from the frames the pipeline pushes (each frame's first
push, by the processor that made it): the VAD's stop, the final ``TranscriptionFrame``, the
LLM's ``LLMFullResponseStartFrame`` and first ``LLMTextFrame``, ``LLMMarkerFrame`` turn
markers, function calls from in progress to result, the first sentence (an
``AggregatedTextFrame`` from an ``LLMTextProcessor``, else the TTS's ``TTSStartedFrame``), the
first ``TTSAudioRawFrame`` and ``BotStartedSpeakingFrame``. With metrics on, the LLM's time to
first byte also marks its first output, which splits inference from writing a tool call.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from pydantic import BaseModel, Field

from callpipe.frames.frames import (
    AggregatedTextFrame,
    BotStartedSpeakingFrame,
    ClientConnectedFrame,
    Frame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    InterruptionFrame,
    LLMFullResponseStartFrame,
    LLMMarkerFrame,
    LLMTextFrame,
    MetricsFrame,
    TextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSTextFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.metrics.metrics import TTFBMetricsData
from callpipe.observers.base_observer import BaseObserver, FramePushed
from callpipe.processors.frame_processor import FrameDirection

MIN_CONTRIBUTION_SECS = 0.005
"""Parts shorter than this are a frame hop, not work: they go into the ``pipeline`` entry."""

PRINTS_AS_ZERO_SECS = 0.0005
"""Below this a part would print as 0.000s and is not listed at all."""

PIPELINE_OWNER = "callpipe"
"""Owner of the ``pipeline`` entry (Pipecat names it ``pipecat``)."""


class TTFBBreakdownMetrics(BaseModel):
    """One service's time to first byte in a cycle; ``start_time`` is a Unix time."""

    processor: str
    model: str | None = None
    start_time: float
    duration_secs: float


class TextAggregationBreakdownMetrics(BaseModel):
    """From the LLM's first text to the first sentence handed to the TTS; ``processor`` is
    the one that cut the sentence (an ``LLMTextProcessor``, else the TTS service)."""

    processor: str
    start_time: float
    duration_secs: float


class FunctionCallMetrics(BaseModel):
    """One function call that ran during the cycle, from in progress to result."""

    function_name: str
    start_time: float
    duration_secs: float


class MeasuredFrom(StrEnum):
    """What a measured wait started from: the caller going quiet, or the call being answered."""

    USER_SILENCE = "user_silence"
    CLIENT_CONNECTED = "client_connected"


class LatencyOwnerKind(StrEnum):
    """What owns a part of the wait: a swappable service, a setting the bot chose, the bot's
    own code, or the pipeline in between."""

    SERVICE = "service"
    SETTING = "setting"
    BOT = "bot"
    PIPELINE = "pipeline"


class LatencyContribution(BaseModel):
    """One part of the wait.

    ``key``: a stable name for the part (``transcription``, ``llm_inference``...), safe to
    group on; ``label``: the same for reading. ``owner``: the processor that spent the time,
    a function's name, ``bot``, ``callpipe`` or a ``config: ...`` tag naming the setting that
    governs it. ``start_time`` is a Unix time.
    """

    key: str
    label: str
    owner: str
    owner_kind: LatencyOwnerKind
    start_time: float
    duration_secs: float


class LatencyBreakdown(BaseModel):
    """What is known about one wait, sent with ``on_latency_breakdown``.

    ``contributions``: the parts of the wait in the order they happened (the ``pipeline``
    remainder last), summing to ``total_secs``, the measured wait; a part is listed only if it
    happened. ``user_turn_secs``: from the caller going quiet to the turn being released
    (``UserStoppedSpeakingFrame``: VAD silence, final transcript, turn analysis).
    """

    ttfb: list[TTFBBreakdownMetrics] = Field(default_factory=list)
    contributions: list[LatencyContribution] = Field(default_factory=list)
    measured_from: MeasuredFrom | None = None
    total_secs: float = 0.0
    text_aggregation: TextAggregationBreakdownMetrics | None = None
    user_turn_start_time: float | None = None
    user_turn_secs: float | None = None
    function_calls: list[FunctionCallMetrics] = Field(default_factory=list)

    def turn_contribution_lines(self, *, by_cost: bool = False) -> list[str]:
        """One log line per contribution and a total line (empty without contributions).

        ``by_cost``: largest first instead of in the order things happened.
        """
        if not self.contributions:
            return []
        parts = self.contributions
        if by_cost:
            parts = sorted(parts, key=lambda c: c.duration_secs, reverse=True)
        lines = [f"{c.duration_secs:6.3f}s  {c.label:<20} [{c.owner}]" for c in parts]
        total = sum(c.duration_secs for c in self.contributions)
        since = (
            " (from client connected)"
            if self.measured_from is MeasuredFrom.CLIENT_CONNECTED
            else ""
        )
        lines.append(f"{total:6.3f}s  TOTAL{since}")
        return lines


# ------------------------------------------------------------------ the timeline


class _At(Enum):
    """The moments a wait is cut at, in the order they usually come."""

    SILENCE = "caller quiet"
    READY = "ready"
    VAD_STOP = "vad stop"
    TRANSCRIPT = "transcript"
    LLM_REQUEST = "llm request"
    LLM_CHUNK = "llm first output"
    MARKER_COMPLETE = "complete marker"
    MARKER_INCOMPLETE = "incomplete marker"
    HANDLERS_START = "handlers start"
    HANDLERS_END = "handlers end"
    FIRST_TEXT = "first text"
    SENTENCE = "first sentence"
    FIRST_AUDIO = "first audio"
    BOT_SPEAKING = "bot speaking"


@dataclass(frozen=True, slots=True)
class _Moment:
    """``kind`` happened at ``at`` (Unix time); ``source`` names what made it happen.

    ``derived``: worked out from a metric or a function call's start rather than seen as a
    frame at that instant; at equal times it sorts first.
    """

    at: float
    kind: _At
    source: str = ""
    derived: bool = False


class _End(Enum):
    """A part owned by the ``source`` of the moment that opens or closes it."""

    OPENER = "opener"
    CLOSER = "closer"


@dataclass(frozen=True, slots=True)
class _Part:
    """The name of the stretch between two moments. ``core``: listed however short (a stage
    every turn has, so timelines keep their shape), unless it would print as zero."""

    key: str
    label: str
    owner: str | _End
    core: bool = False


_VAD = _Part("endpointing_wait", "endpointing wait", "config: VAD stop_secs", core=True)
_FIRST_REQUEST = _Part("first_request", "first request", "bot", core=True)
_TRANSCRIPTION = _Part("transcription", "transcription", _End.CLOSER, core=True)
_TURN = _Part("turn_detection", "turn detection", "config: user turn strategies", core=True)
_INFERENCE = _Part("llm_inference", "LLM inference", _End.OPENER, core=True)
_TOOL_CALL = _Part("llm_tool_call", "LLM tool call", _End.OPENER)
_HANDLER = _Part("function_handler", "function handler", _End.CLOSER)
_COMPLETION = _Part("turn_completion", "turn completion", "config: filter_incomplete_user_turns")
_WAITING = _Part("waiting_for_user", "waiting for user", "config: filter_incomplete_user_turns")
_HELD_TEXT = _Part("awaiting_speakable_text", "awaiting speakable text", _End.CLOSER)
_SENTENCE = _Part("sentence_aggregation", "sentence aggregation", "config: text_aggregation_mode")
_SYNTHESIS = _Part("speech_synthesis", "speech synthesis", _End.CLOSER, core=True)
_OUTPUT = _Part("output_transport", "output transport", _End.CLOSER)

_PARTS: dict[tuple[_At, _At], _Part] = {
    (_At.SILENCE, _At.VAD_STOP): _VAD,
    (_At.READY, _At.LLM_REQUEST): _FIRST_REQUEST,
    (_At.READY, _At.SENTENCE): _FIRST_REQUEST,  # a greeting spoken from a TTSSpeakFrame
    (_At.VAD_STOP, _At.TRANSCRIPT): _TRANSCRIPTION,
    (_At.TRANSCRIPT, _At.LLM_REQUEST): _TURN,
    (_At.VAD_STOP, _At.LLM_REQUEST): _TURN,  # the transcript was in before the VAD's stop
    (_At.LLM_REQUEST, _At.LLM_CHUNK): _INFERENCE,
    # Without metrics the LLM's first output is not known: inference runs to what it produced.
    (_At.LLM_REQUEST, _At.FIRST_TEXT): _INFERENCE,
    (_At.LLM_REQUEST, _At.HANDLERS_START): _INFERENCE,
    (_At.LLM_REQUEST, _At.MARKER_COMPLETE): _INFERENCE,
    (_At.LLM_REQUEST, _At.MARKER_INCOMPLETE): _INFERENCE,
    (_At.LLM_CHUNK, _At.MARKER_COMPLETE): _COMPLETION,
    (_At.LLM_CHUNK, _At.MARKER_INCOMPLETE): _COMPLETION,
    (_At.MARKER_COMPLETE, _At.FIRST_TEXT): _COMPLETION,
    (_At.MARKER_INCOMPLETE, _At.LLM_REQUEST): _WAITING,
    (_At.LLM_CHUNK, _At.HANDLERS_START): _TOOL_CALL,
    (_At.HANDLERS_START, _At.HANDLERS_END): _HANDLER,
    (_At.FIRST_TEXT, _At.SENTENCE): _SENTENCE,
    (_At.SENTENCE, _At.FIRST_AUDIO): _SYNTHESIS,
    (_At.FIRST_TEXT, _At.FIRST_AUDIO): _SYNTHESIS,
    (_At.FIRST_AUDIO, _At.BOT_SPEAKING): _OUTPUT,
}
"""Each pair of consecutive moments names the part between them; a pair not listed here is
left to the ``pipeline`` entry, so a gap in the accounting shows instead of being absorbed."""

_USER_SIDE = frozenset({_At.VAD_STOP, _At.TRANSCRIPT})
"""Moments an interruption does not undo: it cancels the bot's reply, not the caller's turn."""

_Handler = Callable[[FramePushed], Awaitable[None]]


class UserBotLatencyObserver(BaseObserver):
    """Measures the caller's wait for each answer, and where it went.

    Events:

    - ``on_latency_measured(observer, latency_seconds)``: caller quiet → bot speaking, per turn;
    - ``on_first_bot_speech_latency(observer, latency_seconds)``: once, the wait for the
      greeting, from the ``ClientConnectedFrame`` or else from the pipeline having started (a
      phone call is answered by then); skipped if the caller speaks first;
    - ``on_latency_breakdown(observer, breakdown)``: with either of the above.

    ``min_contribution_secs``: parts shorter than this (except the core stages) go into the
    ``pipeline`` entry; 0 lists every one. ``time_source`` (seconds) lets a test place events
    without waiting.
    """

    def __init__(
        self,
        *,
        max_frames: int | None = None,
        min_contribution_secs: float = MIN_CONTRIBUTION_SECS,
        time_source: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(observe_every_push=False, **kwargs)
        del max_frames  # accepted for Pipecat code; each frame is seen once anyway
        self._min_secs = min_contribution_secs
        self._now = time_source
        self._user_quiet_at: float | None = None
        self._user_turn: float | None = None
        self._greeting_from: float | None = None
        self._greeting_done = False
        self._client_connected = False
        self._ttfb: list[TTFBBreakdownMetrics] = []
        self._calls_running: dict[str, tuple[str, float]] = {}
        self._calls: list[FunctionCallMetrics] = []
        self._moments: list[_Moment] = []
        self._seen: set[_At] = set()
        self._llm_request: _Moment | None = None
        self._markers_seen = False  # the bot uses turn completion (kept across cycles)
        # Frame class -> its handler (None: not looked at), filled on a class's first frame.
        self._handlers: dict[type[Frame], _Handler | None] = {}
        self._routes: tuple[tuple[type[Frame], _Handler | None], ...] = (
            (VADUserStartedSpeakingFrame, self._on_user_started),
            (VADUserStoppedSpeakingFrame, self._on_vad_stopped),
            (UserStoppedSpeakingFrame, self._on_turn_released),
            (TranscriptionFrame, self._on_transcript),
            (LLMFullResponseStartFrame, self._on_llm_request),
            (LLMMarkerFrame, self._on_marker),
            (LLMTextFrame, self._on_llm_text),
            (FunctionCallInProgressFrame, self._on_call_started),
            (FunctionCallResultFrame, self._on_call_result),
            (TTSTextFrame, None),  # spoken text following its audio, not text going in
            (AggregatedTextFrame, self._on_sentence),
            (TTSStartedFrame, self._on_sentence),
            (TTSAudioRawFrame, self._on_audio),
            (BotStartedSpeakingFrame, self._on_bot_started),
            (MetricsFrame, self._on_metrics),
            (InterruptionFrame, self._on_interruption),
            (ClientConnectedFrame, self._on_client_connected),
        )
        self._register_event_handler("on_latency_measured")
        self._register_event_handler("on_latency_breakdown")
        self._register_event_handler("on_first_bot_speech_latency")

    async def on_pipeline_started(self) -> None:
        if self._greeting_from is None and not self._greeting_done:
            self._greeting_from = self._now()

    async def on_push_frame(self, data: FramePushed) -> None:
        # Called for every frame's first push: one dict lookup for the frames not needed.
        if data.direction is not FrameDirection.DOWNSTREAM:
            return
        cls = type(data.frame)
        try:
            handler = self._handlers[cls]
        except KeyError:
            handler = self._handlers[cls] = self._route(cls)
        if handler is not None:
            await handler(data)

    def _route(self, cls: type[Frame]) -> _Handler | None:
        for base, handler in self._routes:
            if issubclass(cls, base):
                return handler
        return None

    # ------------------------------------------------------------------ frames

    async def _on_user_started(self, data: FramePushed) -> None:
        self._user_quiet_at = None
        self._user_turn = None
        self._greeting_done = True  # the caller spoke first: no greeting wait to report
        self._reset()

    async def _on_vad_stopped(self, data: FramePushed) -> None:
        frame = data.frame
        assert isinstance(frame, VADUserStoppedSpeakingFrame)
        decided_at = frame.timestamp or self._now()  # callpipe's VAD leaves it at 0
        self._user_quiet_at = decided_at - frame.stop_secs
        self._user_turn = None
        self._mark(_At.VAD_STOP, at=decided_at)

    async def _on_turn_released(self, data: FramePushed) -> None:
        if self._user_quiet_at is not None:
            self._user_turn = self._now() - self._user_quiet_at

    async def _on_transcript(self, data: FramePushed) -> None:
        # An utterance can be finalized in pieces; the turn waits for the last one, so a later
        # transcript replaces the earlier until the LLM is asked.
        if _At.LLM_REQUEST in self._seen or not self._measuring:
            return
        self._moments = [m for m in self._moments if m.kind is not _At.TRANSCRIPT]
        self._mark(_At.TRANSCRIPT, source=data.source.name)

    async def _on_llm_request(self, data: FramePushed) -> None:
        self._llm_request = self._mark(_At.LLM_REQUEST, source=data.source.name)

    async def _on_marker(self, data: FramePushed) -> None:
        frame = data.frame
        assert isinstance(frame, LLMMarkerFrame)
        self._markers_seen = True
        # A marker on its own message holds the turn (it can happen more than once); one that
        # opens the reply's message is the completion.
        if frame.append_to_context_immediately:
            self._mark(_At.MARKER_INCOMPLETE)
        else:
            self._mark(_At.MARKER_COMPLETE, once=True)

    async def _on_llm_text(self, data: FramePushed) -> None:
        if not _unspoken(data.frame):
            self._mark(_At.FIRST_TEXT, source=data.source.name, once=True)

    async def _on_call_started(self, data: FramePushed) -> None:
        frame = data.frame
        assert isinstance(frame, FunctionCallInProgressFrame)
        self._calls_running[frame.tool_call_id] = (frame.function_name, self._now())

    async def _on_call_result(self, data: FramePushed) -> None:
        frame = data.frame
        assert isinstance(frame, FunctionCallResultFrame)
        if frame.properties is not None and not frame.properties.is_final:
            return  # a progress report of a call that keeps running
        running = self._calls_running.pop(frame.tool_call_id, None)
        if running is not None:
            name, started = running
            self._calls.append(
                FunctionCallMetrics(
                    function_name=name, start_time=started, duration_secs=self._now() - started
                )
            )

    async def _on_sentence(self, data: FramePushed) -> None:
        # The first piece of text the TTS is given to speak: a sentence an LLMTextProcessor
        # cut, or (the TTS cutting sentences itself) the TTS opening its reply.
        if not _unspoken(data.frame):
            self._mark(_At.SENTENCE, source=data.source.name, once=True)

    async def _on_audio(self, data: FramePushed) -> None:
        self._mark(_At.FIRST_AUDIO, source=data.source.name, once=True)

    async def _on_bot_started(self, data: FramePushed) -> None:
        now = self._now()
        self._mark(_At.BOT_SPEAKING, at=now, source=data.source.name, once=True)
        if self._greeting_from is not None and not self._greeting_done:
            self._greeting_done = True
            wait = now - self._greeting_from
            await self._call_event_handler("on_first_bot_speech_latency", wait)
            await self._send_breakdown(MeasuredFrom.CLIENT_CONNECTED, self._greeting_from, now)
        if self._user_quiet_at is not None:
            quiet_at, self._user_quiet_at = self._user_quiet_at, None
            await self._call_event_handler("on_latency_measured", now - quiet_at)
            await self._send_breakdown(MeasuredFrom.USER_SILENCE, quiet_at, now)

    async def _on_metrics(self, data: FramePushed) -> None:
        frame = data.frame
        assert isinstance(frame, MetricsFrame)
        if not self._measuring:
            return
        now = self._now()
        for item in frame.data:
            if not isinstance(item, TTFBMetricsData) or item.value <= 0:
                continue
            self._ttfb.append(
                TTFBBreakdownMetrics(
                    processor=item.processor,
                    model=item.model,
                    start_time=now - item.value,
                    duration_secs=item.value,
                )
            )
            request = self._llm_request
            if request is not None and item.processor == request.source:
                # The LLM's first output: what it spent thinking, as against writing.
                self._llm_request = None
                at = min(request.at + item.value, now)
                self._mark(_At.LLM_CHUNK, at=at, source=request.source, derived=True)

    async def _on_interruption(self, data: FramePushed) -> None:
        # What the cancelled reply measured no longer counts; the caller's turn still does.
        self._reset(keep=_USER_SIDE)

    async def _on_client_connected(self, data: FramePushed) -> None:
        if not self._client_connected and not self._greeting_done:
            self._client_connected = True
            self._greeting_from = self._now()

    # ------------------------------------------------------------------ state

    @property
    def _measuring(self) -> bool:
        return self._user_quiet_at is not None or (
            self._greeting_from is not None and not self._greeting_done
        )

    def _mark(
        self,
        kind: _At,
        *,
        at: float | None = None,
        source: str = "",
        once: bool = False,
        derived: bool = False,
    ) -> _Moment | None:
        """Record a moment of the wait being measured (None when nothing is measured, or
        ``once`` and one was recorded already)."""
        if not self._measuring or (once and kind in self._seen):
            return None
        moment = _Moment(self._now() if at is None else at, kind, source, derived)
        self._moments.append(moment)
        self._seen.add(kind)
        return moment

    def _reset(self, keep: frozenset[_At] = frozenset()) -> None:
        self._ttfb = []
        self._calls_running = {}
        self._calls = []
        self._llm_request = None
        self._moments = [m for m in self._moments if m.kind in keep]
        self._seen = {m.kind for m in self._moments}

    async def _send_breakdown(self, anchor: MeasuredFrom, start: float, end: float) -> None:
        user_turn = anchor is MeasuredFrom.USER_SILENCE
        breakdown = LatencyBreakdown(
            ttfb=list(self._ttfb),
            contributions=self._contributions(start, end, _At.SILENCE if user_turn else _At.READY),
            measured_from=anchor,
            total_secs=end - start,
            text_aggregation=self._text_aggregation(),
            user_turn_start_time=start if user_turn else None,
            user_turn_secs=self._user_turn if user_turn else None,
            function_calls=list(self._calls),
        )
        await self._call_event_handler("on_latency_breakdown", breakdown)
        self._reset()
        self._user_turn = None

    # ------------------------------------------------------------------ breakdown

    def _text_aggregation(self) -> TextAggregationBreakdownMetrics | None:
        text = sentence = None
        for moment in self._moments:
            if moment.kind is _At.FIRST_TEXT:
                text = moment
            elif moment.kind is _At.SENTENCE:
                sentence = moment
        if text is None or sentence is None or sentence.at < text.at:
            return None  # nothing from an LLM, or the sentence was not its text
        return TextAggregationBreakdownMetrics(
            processor=sentence.source, start_time=text.at, duration_secs=sentence.at - text.at
        )

    def _handler_moments(self) -> list[_Moment]:
        """Function calls as pairs of moments, one per stretch with any call running (calls
        that overlap share the wall clock, so they are one part). The part is named for the
        longest call of the stretch, ``+N`` for the others."""
        moments: list[_Moment] = []
        group: list[FunctionCallMetrics] = []
        group_end = 0.0

        def close() -> None:
            if group:
                longest = max(group, key=lambda c: c.duration_secs)
                owner = longest.function_name + (f" +{len(group) - 1}" if len(group) > 1 else "")
                moments.append(_Moment(group[0].start_time, _At.HANDLERS_START, derived=True))
                moments.append(_Moment(group_end, _At.HANDLERS_END, owner, derived=True))

        for call in sorted(self._calls, key=lambda c: c.start_time):
            if group and call.start_time > group_end:
                close()
                group = []
            group.append(call)
            group_end = max(group_end, call.start_time + call.duration_secs)
        close()
        return moments

    def _contributions(self, start: float, end: float, opening: _At) -> list[LatencyContribution]:
        moments = [
            _Moment(start, opening),
            *(m for m in (*self._moments, *self._handler_moments()) if start <= m.at <= end),
        ]
        moments.sort(key=lambda m: (m.at, not m.derived))  # stable: seen order at equal times
        parts: list[LatencyContribution] = []
        core: set[str] = set()
        for opener, closer in zip(moments, moments[1:], strict=False):
            if closer.at <= opener.at:
                continue
            pair = (opener.kind, closer.kind)
            if pair == (_At.LLM_CHUNK, _At.FIRST_TEXT):
                # With turn completion on, a reply without a marker is held whole before it is
                # spoken; without it, this is the LLM still streaming up to its first text.
                part: _Part | None = _HELD_TEXT if self._markers_seen else _INFERENCE
            else:
                part = _PARTS.get(pair)
            if part is None:
                continue
            if part.core:
                core.add(part.key)
            previous = parts[-1] if parts else None
            owner, kind = _owner(part, opener, closer)
            if (
                previous is not None
                and (previous.key, previous.owner) == (part.key, owner)
                and opener.at - (previous.start_time + previous.duration_secs) < PRINTS_AS_ZERO_SECS
            ):
                previous.duration_secs = (
                    closer.at - previous.start_time
                )  # one stretch, cut by a marker
                continue
            parts.append(
                LatencyContribution(
                    key=part.key,
                    label=part.label,
                    owner=owner,
                    owner_kind=kind,
                    start_time=opener.at,
                    duration_secs=closer.at - opener.at,
                )
            )
        listed = [
            c
            for c in parts
            if c.duration_secs >= self._min_secs
            or (c.key in core and c.duration_secs >= PRINTS_AS_ZERO_SECS)
        ]
        rest = (end - start) - sum(c.duration_secs for c in listed)
        if rest >= PRINTS_AS_ZERO_SECS:
            # Frame hops and unnamed gaps, spread over the whole wait: listed last.
            listed.append(
                LatencyContribution(
                    key="pipeline",
                    label="pipeline",
                    owner=PIPELINE_OWNER,
                    owner_kind=LatencyOwnerKind.PIPELINE,
                    start_time=start,
                    duration_secs=rest,
                )
            )
        return listed


def _unspoken(frame: Frame) -> bool:
    """Text marked ``skip_tts``: passed on without being spoken, so no step towards speech."""
    return isinstance(frame, TextFrame) and bool(frame.skip_tts)


def _owner(part: _Part, opener: _Moment, closer: _Moment) -> tuple[str, LatencyOwnerKind]:
    if part.owner is _End.OPENER:
        return opener.source, LatencyOwnerKind.SERVICE
    if part.owner is _End.CLOSER:
        return closer.source, LatencyOwnerKind.SERVICE
    if part.owner.startswith("config: "):
        return part.owner, LatencyOwnerKind.SETTING
    return part.owner, LatencyOwnerKind.BOT
