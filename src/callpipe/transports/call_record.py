"""The call record: one JSON document per call saying what happened and where the time went.

A :class:`CallRecorder` is created per call by whoever serves it (the runner, when records are
on) and published in :data:`CALL_RECORDER` around ``bot()``. Everything the call builds inside
that context finds it without the bot's code changing:

- :class:`~callpipe.pipeline.task.PipelineTask` adds it as a frame observer (via
  :data:`~callpipe.pipeline.task_observers.TASK_OBSERVERS`). It looks only at rare frames —
  speaking transitions, transcripts, bot text, interruptions, DTMF, metrics — and dismisses
  every other frame with one dict lookup by type, so audio frames cost a lookup per hop;
- the transport reports the call id and provider, playback marks coming back, and why the call
  ended; services report their time to first byte and the LLM its function calls
  (:func:`note_service_ttfb`, :func:`note_function_call`).

:meth:`CallRecorder.finish` turns all this into the record (see :data:`SCHEMA` and
``docs/call-records.md``); storing it is the caller's business (``callpipe.runner.records``).
Times in a record are seconds since the recorder was created (the call's start).

A worker built with ``enable_tracing=True`` asks for its call to be traced
(:func:`trace_call`, through :mod:`callpipe.pipeline.call_tracing`): the runner's recorder, if it
keeps one for this call, is marked for tracing; otherwise the worker gets a recorder of its own.
Either way the record carries a ``trace`` entry and :meth:`CallRecorder.finish` exports it as one
trace with Pipecat's span names (:mod:`callpipe.utils.tracing.record_trace`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from callpipe.clock import DEFAULT_CLOCK, Clock
from callpipe.frames.frames import (
    BotInterruptedFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InputDTMFFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    MetricsFrame,
    OutputDTMFFrame,
    OutputDTMFUrgentFrame,
    TranscriptionFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.log import mask
from callpipe.metrics.metrics import LLMUsageMetricsData
from callpipe.pipeline.task_observers import TASK_OBSERVERS
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.transports.base_output import BaseOutputTransport
from callpipe.transports.record_hooks import CALL_RECORDER
from callpipe.utils.tracing.record_trace import export_record

if TYPE_CHECKING:
    from callpipe.transports.recording import CallRecording

logger = logging.getLogger(__name__)

SCHEMA = "callpipe.call-record"
SCHEMA_VERSION = 1

MAX_TURNS = 2000
MAX_EVENTS = 20000
"""A record stays bounded however long the call: beyond these, turns/events are counted only."""


@contextmanager
def recording_calls(recorder: CallRecorder) -> Iterator[CallRecorder]:
    """Publish ``recorder`` to everything the call builds in this context (task, transport,
    services): set around ``bot()``."""
    hooks = CALL_RECORDER.set(recorder)
    observers = TASK_OBSERVERS.set((*TASK_OBSERVERS.get(), recorder))
    try:
        yield recorder
    finally:
        TASK_OBSERVERS.reset(observers)
        CALL_RECORDER.reset(hooks)


def trace_call(
    conversation_id: str | None, attributes: Mapping[str, Any], clock: Clock | None = None
) -> _WorkerTrace | None:
    """Trace the call a worker runs (its ``enable_tracing=True``).

    Served with a record already (the runner's): that record is marked for tracing and None is
    returned (one recorder, one trace). Otherwise: a recorder for the worker to attach."""
    recorder = CALL_RECORDER.get()
    if recorder is not None and recorder.live:
        recorder.request_trace(conversation_id, attributes)
        return None
    return _WorkerTrace(conversation_id, attributes, clock or DEFAULT_CLOCK)


class _WorkerTrace:
    """A call recorded for the worker that asked for its trace (no runner record). The recorder
    is made when the worker starts running (on its event loop: the call's time origin)."""

    def __init__(
        self, conversation_id: str | None, attributes: Mapping[str, Any], clock: Clock
    ) -> None:
        self._request = (conversation_id, dict(attributes))
        self._clock = clock
        self.recorder: CallRecorder | None = None

    @property
    def observer(self) -> CallRecorder:
        assert self.recorder is not None, "activate() first"
        return self.recorder

    def activate(self) -> Callable[[], None]:
        self.recorder = CallRecorder(clock=self._clock)
        self.recorder.request_trace(*self._request)
        token = CALL_RECORDER.set(self.recorder)
        return lambda: CALL_RECORDER.reset(token)

    def finish(self, reason: str | None) -> None:
        if self.recorder is not None:
            self.recorder.note_end(reason)
            self.recorder.finish("ok")


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass
class _Request:
    """One service request: from sending it to its first byte (TTFB) and, when known, its end
    (LLM response end, TTS stopped, STT final transcript)."""

    kind: str
    service: str | None
    model: str | None
    start: float
    first_byte: float
    end: float | None = None
    usage: dict[str, int] | None = None

    def as_dict(self, t0: float) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "service": self.service,
            "model": self.model,
            "start": round(self.start - t0, 3),
            "ttfb_secs": round(self.first_byte - self.start, 3),
            "end": None if self.end is None else round(self.end - t0, 3),
            "usage": self.usage,
        }


@dataclass
class _Turn:
    """One exchange: what the caller said (if anything) and the bot's answer (if any)."""

    index: int
    caller_start: float | None = None
    caller_end: float | None = None
    quiet_at: float | None = None
    """When the caller really went quiet (VAD stop minus its stop_secs): latency origin."""
    vad_stop_secs: float | None = None
    transcripts: list[dict[str, Any]] = field(default_factory=list)
    last_transcript_at: float | None = None
    generated: list[str] = field(default_factory=list)
    spoken: list[str] = field(default_factory=list)
    heard: list[str] = field(default_factory=list)
    heard_text: str | None = None
    heard_secs: float | None = None
    bot_start: float | None = None
    bot_end: float | None = None
    interrupted: bool = False
    played_start: float | None = None
    ttfb: dict[str, float] = field(default_factory=dict)
    llm_request: float | None = None
    llm_first_text: float | None = None
    function_calls: list[dict[str, Any]] = field(default_factory=list)
    dtmf: list[dict[str, Any]] = field(default_factory=list)
    requests: list[_Request] = field(default_factory=list)

    def open_request(self, kind: str) -> _Request | None:
        for request in reversed(self.requests):
            if request.kind == kind and request.end is None:
                return request
        return None

    @property
    def bot_open(self) -> bool:
        """The bot has started answering in this turn and has not finished."""
        return self.bot_start is not None and self.bot_end is None

    @property
    def bot_done(self) -> bool:
        return self.bot_end is not None

    def as_dict(self, t0: float) -> dict[str, Any]:
        def rel(t: float | None) -> float | None:
            return None if t is None else round(t - t0, 3)

        caller = None
        if self.caller_start is not None or self.transcripts:
            caller = {
                "start": rel(self.caller_start),
                "end": rel(self.caller_end),
                "text": " ".join(t["text"] for t in self.transcripts).strip(),
                "transcripts": [dict(t) for t in self.transcripts],
            }
        bot = None
        generated = "".join(self.generated).strip() or " ".join(
            s.strip() for s in self.spoken if s.strip()
        )
        if self.bot_start is not None or generated:
            if self.interrupted:
                heard = self.heard_text or ""
            else:
                heard = " ".join(h.strip() for h in self.heard if h.strip())
            bot = {
                "generated": generated,
                "heard": heard,
                "start": rel(self.bot_start),
                "played_start": rel(self.played_start),
                "end": rel(self.bot_end),
                "interrupted": self.interrupted,
                "heard_secs": _r(self.heard_secs),
            }
        return {
            "index": self.index,
            "caller": caller,
            "bot": bot,
            "function_calls": self.function_calls,
            "dtmf": self.dtmf,
            "requests": [r.as_dict(t0) for r in self.requests],
            "latency": self._latency(),
        }

    def _latency(self) -> dict[str, float | None]:
        quiet = self.quiet_at
        first_transcript = self.last_transcript_at

        def since_quiet(t: float | None) -> float | None:
            return None if t is None or quiet is None else round(t - quiet, 3)

        llm = self.ttfb.get("llm")
        if llm is None and self.llm_request is not None and self.llm_first_text is not None:
            llm = self.llm_first_text - self.llm_request
        return {
            "vad_stop_secs": _r(self.vad_stop_secs),
            "stt_final_secs": since_quiet(first_transcript),
            "stt_ttfb_secs": _r(self.ttfb.get("stt")),
            "llm_ttft_secs": _r(llm),
            "tts_ttfb_secs": _r(self.ttfb.get("tts")),
            "first_audio_sent_secs": since_quiet(self.bot_start),
            "first_audio_played_secs": since_quiet(self.played_start),
        }


_Handler = Callable[["CallRecorder", FrameProcessor, FrameProcessor, Frame, FrameDirection], None]


class CallRecorder:
    """Collects one call's record. Frame observer plus a few direct hooks; no I/O here."""

    def __init__(
        self,
        *,
        clock: Clock = DEFAULT_CLOCK,
        call_id: str | None = None,
        provider: str = "none",
        session_id: str | None = None,
        from_number: str | None = None,
        to_number: str | None = None,
        recording: CallRecording | None = None,
    ) -> None:
        self._clock = clock
        self.t0 = clock.now()
        self.started_at = time.time()
        self.call_id = call_id
        self.provider = provider
        self.session_id = session_id
        self.from_number = from_number
        self.to_number = to_number
        self.recording = recording
        if recording is not None:
            recording.start(self.t0)
        self.state = "connecting"
        self.end_reason: str | None = None
        self.counters: dict[str, int] = {}
        self.record: dict[str, Any] | None = None
        self._turns: list[_Turn] = [_Turn(0)]
        self._dropped_turns = 0
        self._events: list[dict[str, Any]] = []
        self._dropped_events = 0
        self._seen: deque[int] = deque(maxlen=64)
        self._handlers: dict[type, _Handler | None] = {}
        self._caller_speaking = False
        self._bot_speaking = False
        self._detail: tuple[float | None, list[dict[str, Any]]] | None = None
        self.trace: dict[str, Any] | None = None
        """Set when the bot asked for its call to be traced: ``conversation_id`` and the span
        ``attributes``; the record carries it and is exported as a trace when finished."""

    def request_trace(self, conversation_id: str | None, attributes: Mapping[str, Any]) -> None:
        """Export this call as a trace when it is finished (the first request wins)."""
        if self.trace is None:
            self.trace = {
                "conversation_id": conversation_id or str(uuid.uuid4()),
                "attributes": dict(attributes),
            }

    # ------------------------------------------------------------------ identity, end

    def identify(self, call_id: str | None, provider: str) -> None:
        """The transport knows the call: its provider call id and which provider."""
        self.call_id = call_id or self.call_id
        if provider != "none":
            self.provider = provider
        if self.state == "connecting":
            self.state = "listening"

    def note_end(self, reason: str | None, counters: dict[str, int] | None = None) -> None:
        """Why the call ended, as the transport saw it (first report wins)."""
        self.end_reason = self.end_reason or reason
        if counters:
            self.counters.update(counters)

    @property
    def live(self) -> bool:
        return self.record is None

    def elapsed(self) -> float:
        return self._clock.now() - self.t0

    # ------------------------------------------------------------------ hooks

    def service_ttfb(
        self, kind: str, secs: float, model: str | None = None, service: str | None = None
    ) -> None:
        turn = self._turn() if kind == "stt" else self._bot_turn()
        turn.ttfb.setdefault(kind, secs)
        now = self._clock.now()
        turn.requests.append(_Request(kind, service, model, now - secs, now))
        self._event("ttfb", service=kind, secs=round(secs, 3))

    def _close_request(self, kind: str) -> _Request | None:
        for turn in reversed(self._turns[-2:]):
            request = turn.open_request(kind)
            if request is not None:
                request.end = self._clock.now()
                return request
        return None

    def transcript_detail(self, confidence: float | None, words: list[dict[str, Any]]) -> None:
        """Confidence and word timings of the final transcript the STT pushes next."""
        self._detail = (confidence, words)

    def function_call(self, name: str, arguments: Any, result: Any) -> None:
        entry = {"t": self._rel(), "name": name, "arguments": arguments, "result": result}
        self._turn().function_calls.append(entry)
        self._event("function_call", name=name)

    def mark_acked(self, now: float, position: float) -> None:
        """A provider mark came back: audio up to ``position`` (secs into the stream) played."""
        turn = self._speaking_turn()
        if turn.bot_open and turn.played_start is None and turn.bot_start is not None:
            turn.played_start = max(turn.bot_start, now - position)
            self._event("played", at=round(turn.played_start - self.t0, 3))

    # ------------------------------------------------------------------ observer

    def on_push_frame(
        self, src: FrameProcessor, dst: FrameProcessor, frame: Frame, direction: FrameDirection
    ) -> None:
        kind = type(frame)
        try:
            handler = self._handlers[kind]
        except KeyError:
            handler = self._handlers[kind] = _handler_for(kind)
        if handler is None:
            return
        if handler is not _on_tts_text:  # bot text counts twice: on its way out, then played
            if frame.id in self._seen:
                return
            self._seen.append(frame.id)
        try:
            handler(self, src, dst, frame, direction)
        except Exception:  # a record must never break a call
            logger.debug("call record: failed on %s", kind.__name__, exc_info=True)

    def _caller_started(self, secs_ago: float) -> None:
        if self._caller_speaking:
            return
        self._caller_speaking = True
        turn = self._turns[-1]
        if turn.bot_start is not None or turn.generated or turn.spoken:
            turn = self._new_turn()  # a new exchange (a barge-in too: the old answer is cut)
        at = self._clock.now() - secs_ago
        if turn.caller_start is None:
            turn.caller_start = at
        turn.caller_end = None
        self.state = "caller speaking"
        self._event("caller_start", at=round(at - self.t0, 3))

    def _caller_stopped(self, stop_secs: float) -> None:
        if not self._caller_speaking:
            return
        self._caller_speaking = False
        turn = self._turns[-1]
        at = self._clock.now() - stop_secs
        turn.caller_end = at
        turn.quiet_at = at
        turn.vad_stop_secs = stop_secs
        self.state = "bot speaking" if self._bot_speaking else "listening"
        self._event("caller_stop", at=round(at - self.t0, 3))

    def _transcript(self, frame: TranscriptionFrame) -> None:
        text = frame.text.strip()
        if not text:
            return
        turn = self._turns[-1]
        if turn.bot_start is not None and turn.caller_start is None:
            turn = self._new_turn()  # words without a VAD turn (e.g. no VAD at all)
        now = self._clock.now()
        entry: dict[str, Any] = {"t": round(now - self.t0, 3), "text": text}
        turn.last_transcript_at = now
        if frame.language:
            entry["language"] = frame.language
        if frame.timestamp:
            entry["timestamp"] = frame.timestamp
        if self._detail is not None:
            confidence, words = self._detail
            self._detail = None
            if confidence is not None:
                entry["confidence"] = round(confidence, 4)
            if words:
                entry["words"] = words
        turn.transcripts.append(entry)
        self._close_request("stt")
        self._event("transcript", chars=len(text))

    def _bot_turn(self) -> _Turn:
        """The turn a bot output belongs to: the current one unless its answer is over."""
        turn = self._turns[-1]
        if turn.bot_done:
            turn = self._new_turn()
        return turn

    def _speaking_turn(self) -> _Turn:
        """The turn whose answer is playing (a barge-in may have opened a newer turn)."""
        for turn in reversed(self._turns[-2:]):
            if turn.bot_open:
                return turn
        return self._turns[-1]

    def _bot_started(self) -> None:
        if self._bot_speaking:
            return
        self._bot_speaking = True
        turn = self._bot_turn()
        turn.bot_start = self._clock.now()
        self.state = "bot speaking"
        self._event("bot_start")

    def _bot_stopped(self, interrupted: BotInterruptedFrame | None = None) -> None:
        turn = self._speaking_turn()
        if interrupted is not None:
            turn.interrupted = True
            turn.heard_secs = interrupted.heard_secs
            turn.heard_text = interrupted.heard_text
            self._event("interrupted", heard_secs=round(interrupted.heard_secs, 3))
            self.counters["interruptions"] = self.counters.get("interruptions", 0) + 1
        if not self._bot_speaking:
            return
        self._bot_speaking = False
        if turn.bot_end is None:
            turn.bot_end = self._clock.now()
        self.state = "caller speaking" if self._caller_speaking else "listening"
        self._event("bot_stop")

    def _dtmf(self, digit: str, direction: str) -> None:
        entry = {"t": self._rel(), "digit": digit, "direction": direction}
        self._turns[-1].dtmf.append(entry)
        self._event("dtmf", digit=digit, direction=direction)

    # ------------------------------------------------------------------ bookkeeping

    def _turn(self) -> _Turn:
        return self._turns[-1]

    def _new_turn(self) -> _Turn:
        turn = _Turn(self._turns[-1].index + 1)
        if len(self._turns) >= MAX_TURNS:
            self._dropped_turns += 1
            self._turns[-1] = turn
        else:
            self._turns.append(turn)
        return turn

    def _rel(self) -> float:
        return round(self._clock.now() - self.t0, 3)

    def _event(self, kind: str, **detail: Any) -> None:
        if len(self._events) >= MAX_EVENTS:
            self._dropped_events += 1
            return
        event: dict[str, Any] = {"t": self._rel(), "kind": kind}
        event.update(detail)
        self._events.append(event)

    # ------------------------------------------------------------------ output

    def snapshot(self) -> dict[str, Any]:
        """The record so far (a live call) or the final record (an ended one)."""
        if self.record is not None:
            return self.record
        return self._build(ended=False, outcome=None)

    def finish(self, outcome: str | None = None) -> dict[str, Any]:
        """Close the record (idempotent): the call is over, whoever ended it."""
        if self.record is None:
            if self.recording is not None:
                self.recording.close()
            self.state = "ended"
            self.record = self._build(ended=True, outcome=outcome)
            if self.trace is not None:
                export_record(self.record)
        return self.record

    def _build(self, *, ended: bool, outcome: str | None) -> dict[str, Any]:
        duration = self.elapsed()
        turns = [t.as_dict(self.t0) for t in self._turns if _has_content(t)]
        record: dict[str, Any] = {
            "schema": SCHEMA,
            "version": SCHEMA_VERSION,
            "call": {
                "id": mask(self.call_id),
                "session_id": self.session_id,
                "provider": self.provider,
                "from": mask(self.from_number),
                "to": mask(self.to_number),
            },
            "state": self.state,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.started_at + duration) if ended else None,
            "duration_secs": round(duration, 3),
            "end": {
                "by": ended_by(self.end_reason, outcome) if ended else None,
                "reason": self.end_reason,
                "outcome": outcome,
            },
            "turns": turns,
            "events": list(self._events),
            "counters": dict(self.counters),
            "truncated": {"turns": self._dropped_turns, "events": self._dropped_events},
            "recording": self.recording.describe() if self.recording is not None else None,
        }
        if self.trace is not None:
            record["trace"] = {**self.trace, "attributes": dict(self.trace["attributes"])}
        return record


def _has_content(turn: _Turn) -> bool:
    return bool(
        turn.caller_start is not None
        or turn.transcripts
        or turn.bot_start is not None
        or turn.generated
        or turn.spoken
        or turn.function_calls
        or turn.dtmf
    )


def ended_by(reason: str | None, outcome: str | None) -> str:
    """Who ended the call: ``caller``, ``bot``, ``timeout``, ``error`` or ``unknown``."""
    if outcome == "error":
        return "error"
    text = (reason or "").lower()
    if text.startswith("caller"):
        return "caller"
    if text.startswith("bot"):
        return "bot"
    if text.startswith("timeout"):
        return "timeout"
    if text.startswith("error"):
        return "error"
    if outcome == "hangup":
        return "caller"
    return "unknown" if not text else "bot"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


# --------------------------------------------------------------------------- frame handlers


def _on_vad_start(
    r: CallRecorder, src: FrameProcessor, dst: FrameProcessor, f: Frame, d: FrameDirection
) -> None:
    assert isinstance(f, VADUserStartedSpeakingFrame)
    r._caller_started(f.start_secs)


def _on_vad_stop(
    r: CallRecorder, src: FrameProcessor, dst: FrameProcessor, f: Frame, d: FrameDirection
) -> None:
    assert isinstance(f, VADUserStoppedSpeakingFrame)
    r._caller_stopped(f.stop_secs)


def _on_user_start(
    r: CallRecorder, src: FrameProcessor, dst: FrameProcessor, f: Frame, d: FrameDirection
) -> None:
    assert isinstance(f, UserStartedSpeakingFrame)
    if f.emulated:  # a VAD turn was already noted by its VAD frame
        r._caller_started(0.0)


def _on_user_stop(
    r: CallRecorder, src: FrameProcessor, dst: FrameProcessor, f: Frame, d: FrameDirection
) -> None:
    assert isinstance(f, UserStoppedSpeakingFrame)
    if f.emulated:
        r._caller_stopped(0.0)


def _on_transcript(
    r: CallRecorder, src: FrameProcessor, dst: FrameProcessor, f: Frame, d: FrameDirection
) -> None:
    assert isinstance(f, TranscriptionFrame)
    r._transcript(f)


def _on_llm_start(
    r: CallRecorder, src: FrameProcessor, dst: FrameProcessor, f: Frame, d: FrameDirection
) -> None:
    turn = r._bot_turn()
    if turn.llm_request is None:
        turn.llm_request = r._clock.now()


def _on_llm_text(
    r: CallRecorder, src: FrameProcessor, dst: FrameProcessor, f: Frame, d: FrameDirection
) -> None:
    assert isinstance(f, LLMTextFrame)
    turn = r._bot_turn()
    if turn.llm_first_text is None:
        turn.llm_first_text = r._clock.now()
    turn.generated.append(f.text)


def _on_tts_text(
    r: CallRecorder, src: FrameProcessor, dst: FrameProcessor, f: Frame, d: FrameDirection
) -> None:
    assert isinstance(f, TTSTextFrame)
    if isinstance(src, BaseOutputTransport):
        r._speaking_turn().heard.append(f.text)  # released by the output: its audio played
    elif isinstance(dst, BaseOutputTransport):
        r._bot_turn().spoken.append(f.text)  # on its way to be spoken


def _on_llm_end(
    r: CallRecorder, src: FrameProcessor, dst: FrameProcessor, f: Frame, d: FrameDirection
) -> None:
    r._close_request("llm")


def _on_tts_stopped(
    r: CallRecorder, src: FrameProcessor, dst: FrameProcessor, f: Frame, d: FrameDirection
) -> None:
    r._close_request("tts")


def _on_metrics(
    r: CallRecorder, src: FrameProcessor, dst: FrameProcessor, f: Frame, d: FrameDirection
) -> None:
    assert isinstance(f, MetricsFrame)
    for data in f.data:
        if isinstance(data, LLMUsageMetricsData) and data.value is not None:
            for turn in reversed(r._turns[-2:]):
                llm = [q for q in turn.requests if q.kind == "llm"]
                if llm:
                    llm[-1].usage = {
                        "input_tokens": data.value.prompt_tokens,
                        "output_tokens": data.value.completion_tokens,
                    }
                    break


def _on_bot_start(
    r: CallRecorder, src: FrameProcessor, dst: FrameProcessor, f: Frame, d: FrameDirection
) -> None:
    r._bot_started()


def _on_bot_stop(
    r: CallRecorder, src: FrameProcessor, dst: FrameProcessor, f: Frame, d: FrameDirection
) -> None:
    r._bot_stopped()


def _on_bot_interrupted(
    r: CallRecorder, src: FrameProcessor, dst: FrameProcessor, f: Frame, d: FrameDirection
) -> None:
    assert isinstance(f, BotInterruptedFrame)
    if d is FrameDirection.DOWNSTREAM:  # the output reports it both ways
        r._bot_stopped(f)


def _on_dtmf_in(
    r: CallRecorder, src: FrameProcessor, dst: FrameProcessor, f: Frame, d: FrameDirection
) -> None:
    assert isinstance(f, InputDTMFFrame)
    r._dtmf(str(f.button.value), "in")


def _on_dtmf_out(
    r: CallRecorder, src: FrameProcessor, dst: FrameProcessor, f: Frame, d: FrameDirection
) -> None:
    assert isinstance(f, OutputDTMFFrame | OutputDTMFUrgentFrame)
    r._dtmf(f.to_string(), "out")


_HANDLERS: tuple[tuple[type[Frame], _Handler], ...] = (
    (VADUserStartedSpeakingFrame, _on_vad_start),
    (VADUserStoppedSpeakingFrame, _on_vad_stop),
    (UserStartedSpeakingFrame, _on_user_start),
    (UserStoppedSpeakingFrame, _on_user_stop),
    (TranscriptionFrame, _on_transcript),
    (LLMFullResponseStartFrame, _on_llm_start),
    (LLMTextFrame, _on_llm_text),
    (LLMFullResponseEndFrame, _on_llm_end),
    (TTSStoppedFrame, _on_tts_stopped),
    (MetricsFrame, _on_metrics),
    (TTSTextFrame, _on_tts_text),
    (BotStartedSpeakingFrame, _on_bot_start),
    (BotStoppedSpeakingFrame, _on_bot_stop),
    (BotInterruptedFrame, _on_bot_interrupted),
    (InputDTMFFrame, _on_dtmf_in),
    (OutputDTMFFrame, _on_dtmf_out),
    (OutputDTMFUrgentFrame, _on_dtmf_out),
)


def _handler_for(kind: type) -> _Handler | None:
    """The handler for a frame class (first match by isinstance), cached per class by caller."""
    for cls, handler in _HANDLERS:
        if issubclass(kind, cls):
            return handler
    return None
