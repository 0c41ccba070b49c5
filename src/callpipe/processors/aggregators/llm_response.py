"""The context aggregators: what the caller said in, what the caller heard out.

``context_aggregator.user()`` sits after the STT. It collects final transcripts during the
caller's turn and, at the end of the turn (VAD stop + final transcript), appends one user
message to the shared context and pushes an ``OpenAILLMContextFrame`` to run the LLM.

``context_aggregator.assistant()`` sits after ``transport.output()``. The output transport lets
``TTSTextFrame``\\ s through only after the audio before them was played, so this side records
what the caller actually heard; when the bot is interrupted it commits that much, marked
``"interrupted": True`` (a private key the LLM service strips before sending). Text frames with
``append_to_context=False`` and the caller's own text (transcripts, translations, typed input)
are left out; text the TTS passed on unspoken (``skip_tts``) is written. An LLM's thought is
kept as an :class:`~callpipe.processors.aggregators.llm_context.LLMSpecificMessage` when its
start frame asks for it (``LLMContext`` only), and ``LLMMarkerFrame`` markers are written too.

The pair also measures the turn latency: caller stopped speaking → first bot audio sent.

Both sides derive from :class:`LLMContextAggregator` (Pipecat 1.14's name for the base of its
universal aggregators), which gives a bot direct access to the shared context.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema
from callpipe.frames.frames import (
    AggregatedTextFrame,
    BotInterruptedFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EagerTranscriptionFrame,
    Frame,
    InputTextRawFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    LLMAssistantPushAggregationFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMarkerFrame,
    LLMMessagesAppendFrame,
    LLMMessagesFrame,
    LLMRunFrame,
    LLMTextFrame,
    LLMThoughtEndFrame,
    LLMThoughtStartFrame,
    LLMThoughtTextFrame,
    MetricsFrame,
    TextFrame,
    TranscriptionFrame,
    TranslationFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.metrics.metrics import TurnLatencyMetricsData
from callpipe.metrics.registry import TURN_LATENCY
from callpipe.processors.aggregators.llm_context import (
    ChatContext,
    LLMContext,
    LLMSpecificMessage,
    normalize_tools,
)
from callpipe.processors.aggregators.openai_llm_context import (
    OpenAILLMContext,
    OpenAILLMContextFrame,
)
from callpipe.processors.base_object import cancel_and_wait
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor

logger = logging.getLogger(__name__)

_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")


@dataclass
class LLMUserAggregatorParams:
    """``aggregation_timeout``: after the caller stopped, how long to wait for a final
    transcript that is still due (an interim was seen, or none has arrived yet)."""

    aggregation_timeout: float = 0.5


@dataclass
class LLMAssistantAggregatorParams:
    """``expect_stripped_words``: TTS text arrives as words without spaces; join with spaces."""

    expect_stripped_words: bool = True


class TurnLatencyTracker:
    """Shared by the pair: user stop time (user side) → first bot audio (assistant side)."""

    def __init__(self) -> None:
        self.stopped_at: float | None = None
        self.vad_stop_secs = 0.0
        self.armed = False

    def user_started(self) -> None:
        self.stopped_at = None
        self.armed = False

    def user_stopped(self, now: float) -> None:
        self.stopped_at = now

    def turn_pushed(self) -> None:
        self.armed = self.stopped_at is not None

    def bot_started(self, now: float) -> tuple[float, float] | None:
        if not self.armed or self.stopped_at is None:
            return None
        self.armed = False
        latency = now - self.stopped_at + self.vad_stop_secs
        self.stopped_at = None
        return latency, self.vad_stop_secs


_NOT_ASSISTANT_TEXT = (
    TranscriptionFrame,
    InterimTranscriptionFrame,
    EagerTranscriptionFrame,
    TranslationFrame,
    InputTextRawFrame,
)
"""Text frames that are the caller's, never the bot's."""


def assistant_text(frame: TextFrame) -> str | None:
    """The text ``frame`` adds to the assistant's message, None when it adds none."""
    if not frame.append_to_context or isinstance(frame, _NOT_ASSISTANT_TEXT):
        return None
    if isinstance(frame, AggregatedTextFrame) and frame.raw_text:
        return frame.raw_text
    return frame.text or None


def _join(parts: list[str], *, with_spaces: bool) -> str:
    if not with_spaces:
        return "".join(parts).strip()
    text = _SPACES.sub(" ", " ".join(p.strip() for p in parts)).strip()
    return _SPACE_BEFORE_PUNCT.sub(r"\1", text)


def _tool_names(tools: Any) -> set[str]:
    """The names of the standard tools in ``tools`` (a ToolsSchema or Chat Completions dicts)."""
    if isinstance(tools, ToolsSchema):
        return {schema.name for schema in tools.standard_tools}
    names: set[str] = set()
    if isinstance(tools, list):
        for tool in tools:
            if isinstance(tool, dict) and isinstance(tool.get("function"), dict):
                name = tool["function"].get("name")
                if isinstance(name, str):
                    names.add(name)
    return names


class LLMContextAggregator(FrameProcessor):
    """What both context aggregators offer a bot (Pipecat 1.14's ``LLMContextAggregator``).

    ``messages``, ``role`` and ``context`` read the shared context; ``add_messages``,
    ``set_messages``, ``transform_messages``, ``set_tools`` and ``set_tool_choice`` change it
    directly (no frame, the LLM is not run); ``push_context_frame`` runs the LLM on it.
    ``aggregation_string`` is the text collected and not yet written, ``reset`` drops it and
    ``push_aggregation`` writes it now.

    ``add_tool_change_messages``: the 1.14 aggregators call :meth:`_announce_tool_changes` on
    each ``LLMSetToolsFrame``, which then adds a ``system`` message naming the functions added
    and removed (by name; custom tools are not compared).
    """

    def __init__(
        self,
        *,
        context: ChatContext,
        role: str,
        add_tool_change_messages: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._context = context
        self._role = role
        self._add_tool_change_messages = add_tool_change_messages
        self._parts: list[str] = []

    @property
    def messages(self) -> list[Any]:
        """The context's messages (the list itself, not a copy)."""
        return self._context.messages

    @property
    def role(self) -> str:
        """The role of the messages this aggregator writes (``"user"`` or ``"assistant"``)."""
        return self._role

    @property
    def context(self) -> ChatContext:
        return self._context

    def get_context_frame(self) -> OpenAILLMContextFrame | LLMContextFrame:
        """A frame that runs the LLM on the context (queue it to make the bot speak first)."""
        if isinstance(self._context, OpenAILLMContext):
            return OpenAILLMContextFrame(context=self._context)
        return LLMContextFrame(context=self._context)

    async def push_context_frame(
        self, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        """Run the LLM on the context: push a context frame (the LLM service is upstream of the
        assistant aggregator, so it pushes ``FrameDirection.UPSTREAM`` to reach it)."""
        await self.push_frame(self.get_context_frame(), direction)

    def add_messages(self, messages: list[Any]) -> None:
        self._context.add_messages(list(messages))

    def set_messages(self, messages: list[Any]) -> None:
        self._context.set_messages(list(messages))

    def transform_messages(self, transform: Callable[[list[Any]], list[Any]]) -> None:
        """Replace the messages with ``transform(messages)``."""
        self._context.set_messages(list(transform(self._context.messages)))

    def set_tools(self, tools: Any) -> None:
        """Advertise ``tools`` (a ToolsSchema, a list of FunctionSchema, or NOT_GIVEN / None for
        none; an older ``OpenAILLMContext`` also takes Chat Completions tool dicts)."""
        context = self._context
        if isinstance(context, OpenAILLMContext):
            if _dict_tools(tools):
                context.set_tools(tools)
                return
            normalized = normalize_tools(tools)
            context.set_tools(normalized if isinstance(normalized, ToolsSchema) else None)
        elif isinstance(context, LLMContext):
            context.set_tools(normalize_tools(tools))

    def set_tool_choice(self, tool_choice: Any) -> None:
        """``"none"``, ``"auto"``, ``"required"`` or a provider's tool-choice dict."""
        if isinstance(self._context, LLMContext | OpenAILLMContext):
            self._context.set_tool_choice(tool_choice)

    def aggregation_string(self) -> str:
        """The text collected and not yet written to the context."""
        return _join(self._parts, with_spaces=True)

    async def reset(self) -> None:
        """Drop the text collected and not yet written."""
        self._parts.clear()

    async def push_aggregation(self) -> str:
        """Write the text collected so far to the context now; returns it (``""``: none)."""
        raise NotImplementedError

    def _announce_tool_changes(self, tools: Any) -> None:
        """With ``add_tool_change_messages``, tell the model which functions ``tools`` adds and
        removes (call before applying them). Both aggregators of a pair share the context, so
        whichever sees an ``LLMSetToolsFrame`` second finds nothing changed."""
        if not self._add_tool_change_messages:
            return
        context = self._context
        current = context.tools if isinstance(context, LLMContext | OpenAILLMContext) else None
        before = _tool_names(current)
        after = _tool_names(tools if _dict_tools(tools) else normalize_tools(tools))
        added, removed = sorted(after - before), sorted(before - after)
        notes: list[str] = []
        if added:
            notes.append(f"These functions were just added and can be called now: {_names(added)}.")
        if removed:
            notes.append(
                f"These functions were just removed; do not call them: {_names(removed)}. "
                "You will be told if they come back."
            )
        if notes:
            notes.append("Any other function offered earlier is still available.")
            context.add_message({"role": "system", "content": " ".join(notes)})


def _dict_tools(tools: Any) -> bool:
    return isinstance(tools, list) and bool(tools) and all(isinstance(t, dict) for t in tools)


def _names(names: list[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def transcripts_queued(queue: Iterable[tuple[Frame, Any]]) -> bool:
    """Whether a processor's input ``queue`` already holds more of the caller's words (the
    turn logic waits for them rather than ending the turn without them)."""
    return any(
        isinstance(frame, TranscriptionFrame | InterimTranscriptionFrame) for frame, _ in queue
    )


class LLMUserContextAggregator(LLMContextAggregator):
    """Turns the caller's transcripts into user messages at the end of the turn."""

    def __init__(
        self,
        context: ChatContext,
        *,
        params: LLMUserAggregatorParams | None = None,
        latency: TurnLatencyTracker | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(context=context, role="user", **kwargs)
        self._params = params or LLMUserAggregatorParams()
        self._latency = latency or TurnLatencyTracker()
        self._interim: str | None = None
        self._speaking = False
        self._turn_ended = False
        self._vad_seen = False
        self._timer: asyncio.Task[None] | None = None
        self._timer_handle: asyncio.TimerHandle | None = None

    async def reset(self) -> None:
        await super().reset()
        self._interim = None
        await self._cancel_timer()

    async def push_aggregation(self) -> str:
        """End the caller's turn now: write what was transcribed so far and run the LLM."""
        return await self._push_aggregation()

    # ------------------------------------------------------------------ frames

    passes_input_audio = True  # the caller's audio only passes through (see FrameProcessor)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, UserStartedSpeakingFrame):
            self._vad_seen = True
            self._speaking = True
            self._turn_ended = False
            self._latency.user_started()
            await self._cancel_timer()
            await self.push_frame(frame, direction)
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._vad_seen = True
            self._speaking = False
            self._turn_ended = True
            self._latency.user_stopped(self.clock.now())
            await self._cancel_timer()
            await self.push_frame(frame, direction)
            if self._parts and self._interim is None and not self._transcripts_queued():
                await self._push_aggregation()
            else:
                self._start_timer()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._latency.vad_stop_secs = max(0.0, frame.stop_secs)
            await self.push_frame(frame, direction)
        elif isinstance(frame, TranscriptionFrame):
            await self._on_transcription(frame.text)
        elif isinstance(frame, InterimTranscriptionFrame):
            if frame.text.strip():
                self._interim = frame.text.strip()
        elif isinstance(frame, InputTextRawFrame):
            if frame.text.strip():
                await self._on_typed_text(frame.text.strip())  # consumed: never spoken
        elif isinstance(frame, LLMMessagesAppendFrame):
            self._context.add_messages(frame.messages)
            if frame.run_llm:
                await self.push_context_frame()
        elif isinstance(frame, LLMMessagesFrame):
            self._context.set_messages(frame.messages)
            await self.push_context_frame()
        elif isinstance(frame, LLMRunFrame):
            await self.push_context_frame()
        else:
            await self.push_frame(frame, direction)

    async def _on_typed_text(self, text: str) -> None:
        """Typed text is a user turn of its own: written to the context, then the LLM runs.
        Words of a spoken turn not yet written go with it, before it."""
        self._parts.append(text)
        self._interim = None
        await self._push_aggregation()

    async def _on_transcription(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        self._parts.append(text)
        self._interim = None
        if self._turn_ended and not self._speaking:
            if not self._transcripts_queued():
                await self._push_aggregation()
        elif not self._vad_seen:
            # No VAD in this pipeline: the turn ends when transcripts pause.
            self._start_timer()

    def _transcripts_queued(self) -> bool:
        """More of the caller's words already wait in this processor's queue."""
        return transcripts_queued(self._queue)

    def _start_timer(self) -> None:
        """(Re)arm the aggregation timeout; a loop timer, so re-arming costs no task."""
        if self._timer_handle is not None:
            self._timer_handle.cancel()
        loop = asyncio.get_running_loop()
        self._timer_handle = loop.call_later(self._transcript_wait(), self._on_timer)

    def _transcript_wait(self) -> float:
        """Hook: how long the aggregation timeout waits (the 1.14 aggregator stretches it to
        the STT's latency after the caller stopped)."""
        return self._params.aggregation_timeout

    def _on_timer(self) -> None:
        self._timer_handle = None
        self._timer = self.create_task(self._timeout(), "aggregation-timeout")

    async def _cancel_timer(self) -> None:
        if self._timer_handle is not None:
            self._timer_handle.cancel()
            self._timer_handle = None
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            await cancel_and_wait(timer)

    async def _timeout(self) -> None:
        self._timer = None
        if self._speaking:
            return
        if not self._parts and self._interim:
            # The final never came (e.g. the STT socket dropped): the interim is all we have.
            self._parts.append(self._interim)
        if not self._vad_seen:
            self._latency.user_stopped(self.clock.now())
        if not self._parts:
            await self._on_empty_turn()
        await self._push_aggregation()

    async def _push_aggregation(self) -> str:
        text = self.aggregation_string()
        self._parts.clear()
        self._interim = None
        await self._cancel_timer()
        if not text:
            return ""
        logger.debug("%s: user turn of %d characters", self, len(text))
        self._context.add_message({"role": "user", "content": text})
        self._latency.turn_pushed()
        await self._on_turn_added(text)
        await self._answer_turn()
        return text

    async def _answer_turn(self) -> None:
        """Hook: run the LLM on the turn just written (the 1.14 aggregator skips it when an
        eager answer was confirmed)."""
        await self.push_frame(self.get_context_frame())

    async def _on_turn_added(self, text: str) -> None:
        """Hook: a user message was added to the context (the 1.14 aggregator fires events)."""

    async def _on_empty_turn(self) -> None:
        """Hook: the caller's turn ended with no transcript at all."""


class LLMAssistantContextAggregator(LLMContextAggregator):
    """Records what the bot said (as heard by the caller) as assistant messages."""

    def __init__(
        self,
        context: ChatContext,
        *,
        params: LLMAssistantAggregatorParams | None = None,
        latency: TurnLatencyTracker | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(context=context, role="assistant", **kwargs)
        self._params = params or LLMAssistantAggregatorParams()
        self._latency = latency or TurnLatencyTracker()
        self._reply_ended = False
        self._bot_speaking = False
        self._heard_words = False
        self._message: dict[str, Any] | None = None
        self._thought: list[str] | None = None
        self._thought_spaced = True
        self._thought_llm: str | None = None
        self._markers: set[str] = set()

    def aggregation_string(self) -> str:
        return _join(self._parts, with_spaces=self._params.expect_stripped_words)

    async def reset(self) -> None:
        """Drop the reply text not yet written and any thought being collected."""
        await super().reset()
        self._thought = None
        self._thought_llm = None

    async def push_aggregation(self) -> str:
        """Write the reply text collected so far to the context now (added to the reply's
        message when it is the last one)."""
        text = self.aggregation_string()
        self._commit(interrupted=False)
        return text

    passes_input_audio = True  # the caller's audio only passes through (see FrameProcessor)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMFullResponseStartFrame):
            self._commit(interrupted=False)
            self._heard_words = False
            self._reply_ended = False
            self._message = None
            await self.push_frame(frame, direction)
        elif isinstance(frame, LLMFullResponseEndFrame):
            self._reply_ended = True
            self._commit(interrupted=False)
            await self.push_frame(frame, direction)
        elif isinstance(frame, TextFrame):
            text = assistant_text(frame)
            if text is not None:
                self._add_text(frame, text)
                if self._reply_ended:
                    # The end of the reply passed the transport before its last words were
                    # played: add them as the caller hears them.
                    self._commit(interrupted=False)
            await self.push_frame(frame, direction)
        elif isinstance(frame, LLMThoughtStartFrame | LLMThoughtTextFrame | LLMThoughtEndFrame):
            await self._on_thought_frame(frame)
        elif isinstance(frame, LLMMarkerFrame):
            self._on_marker(frame)
        elif isinstance(frame, LLMAssistantPushAggregationFrame):
            await self.push_aggregation()  # consumed here, as in 1.14
        elif isinstance(frame, InterruptionFrame):
            # The caller started speaking: the reply was cut only if it was still playing (or
            # still being generated); a reply that had been played out stays whole.
            self._commit(interrupted=self._bot_speaking or not self._reply_ended)
            self._message = None
            await self.push_frame(frame, direction)
        elif isinstance(frame, BotInterruptedFrame):
            self._take_queued_text()
            if not self._heard_words and frame.heard_text:
                # No spoken words arrived (unspoken skip_tts text may have): the transport's
                # report is all there is of what was heard.
                self._parts.append(frame.heard_text)
                self._heard_words = True
            self._commit(interrupted=True)
            self._message = None
            await self.push_frame(frame, direction)
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
            await self._on_bot_started()
            await self.push_frame(frame, direction)
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    def _add_text(self, frame: TextFrame, text: str) -> None:
        self._parts.append(text)
        if not frame.skip_tts:
            self._heard_words = True

    async def _on_thought_frame(
        self, frame: LLMThoughtStartFrame | LLMThoughtTextFrame | LLMThoughtEndFrame
    ) -> None:
        """Collect a thought; at its end keep it in the context if its start asked for that.
        Thought frames stop here (nothing after the assistant side uses them)."""
        if isinstance(frame, LLMThoughtStartFrame):
            self._thought = []
            self._thought_llm = frame.llm if frame.append_to_context else None
            self._thought_spaced = True
        elif isinstance(frame, LLMThoughtTextFrame):
            if self._thought is not None and frame.text:
                self._thought.append(frame.text)
                self._thought_spaced = frame.includes_inter_frame_spaces
        elif self._thought is not None:
            parts, self._thought = self._thought, None
            text = _join(parts, with_spaces=not self._thought_spaced)
            llm, self._thought_llm = self._thought_llm, None
            if llm is not None and isinstance(self._context, LLMContext):
                message = {"type": "thought", "text": text, "signature": frame.signature}
                self._context.add_message(LLMSpecificMessage(llm=llm, message=message))
            await self._on_thought(text)

    async def _on_thought(self, text: str) -> None:
        """Hook: an LLM thought ended (the 1.14 aggregator fires an event)."""

    def _on_marker(self, frame: LLMMarkerFrame) -> None:
        """Write an LLM marker: as a message of its own, or before the reply's words."""
        if not frame.marker:
            return
        self._markers.add(frame.marker)
        if frame.append_to_context_immediately:
            self._context.add_message({"role": "assistant", "content": frame.marker})
        else:
            self._parts.append(frame.marker)

    def _commit(self, *, interrupted: bool) -> None:
        """Add the heard text to the reply's message (created on first use)."""
        message = self._message
        if message is not None and interrupted:
            message["interrupted"] = True
        if not self._parts:
            return
        text = _join(self._parts, with_spaces=self._params.expect_stripped_words)
        self._parts = []
        if not text:
            return
        messages = self._context.messages
        if message is not None and messages and messages[-1] is message:
            text = _join([str(message["content"]), text], with_spaces=True)
        else:
            message = self._message = {"role": "assistant", "content": ""}
            self._context.add_message(message)
        message["content"] = text
        if interrupted:
            message["interrupted"] = True

    async def _on_bot_started(self) -> None:
        measured = self._latency.bot_started(self.clock.now())
        if measured is None:
            return
        latency, vad_stop = measured
        TURN_LATENCY.observe(latency)
        logger.debug("%s: turn latency %.3fs (VAD stop %.3fs)", self, latency, vad_stop)
        if self.metrics_enabled:
            data = TurnLatencyMetricsData(
                processor=self.name, value=latency, vad_stop_secs=vad_stop
            )
            await self.push_frame(MetricsFrame(data=[data]))

    def _take_queued_text(self) -> None:
        """Text already let through by the output transport was heard: take it from the queue
        now (an interruption would drop it, and the report of the cut arrives before it)."""
        kept = []
        for item in self._queue:
            frame = item[0]
            if isinstance(frame, TextFrame) and not isinstance(frame, _NOT_ASSISTANT_TEXT):
                text = assistant_text(frame)
                if text is not None:
                    self._add_text(frame, text)
            else:
                kept.append(item)
        if len(kept) != len(self._queue):
            self._queue.clear()
            self._queue.extend(kept)

    async def _handle_interruption(self) -> None:
        self._take_queued_text()
        await super()._handle_interruption()


class LLMFullResponseAggregator(FrameProcessor):
    """Collects each LLM response's text (``LLMTextFrame``\\ s between the start and end
    frames) and hands it to ``@aggregator.event_handler("on_completion")`` handlers as
    ``(aggregator, text, completed)``: ``completed`` is False for a response an interruption
    cut. Every frame passes on unchanged. (Pipecat's also reports an empty, uncompleted text
    at an interruption when no response was running; this one does not.)"""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._parts: list[str] = []
        self._started = False
        self._register_event_handler("on_completion")

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMTextFrame):
            if self._started:
                self._parts.append(frame.text)
        elif isinstance(frame, LLMFullResponseStartFrame):
            self._started, self._parts = True, []
        elif isinstance(frame, LLMFullResponseEndFrame | InterruptionFrame):
            if self._started:
                completed = isinstance(frame, LLMFullResponseEndFrame)
                text, self._parts, self._started = "".join(self._parts), [], False
                await self._call_event_handler("on_completion", text, completed)
        await self.push_frame(frame, direction)


class LLMContextAggregatorPair:
    """``.user()`` and ``.assistant()`` sharing one context (``llm.create_context_aggregator``)."""

    def __init__(
        self,
        context: ChatContext,
        *,
        user_params: LLMUserAggregatorParams | None = None,
        assistant_params: LLMAssistantAggregatorParams | None = None,
    ) -> None:
        latency = TurnLatencyTracker()
        self._user = LLMUserContextAggregator(context, params=user_params, latency=latency)
        self._assistant = LLMAssistantContextAggregator(
            context, params=assistant_params, latency=latency
        )

    def user(self) -> LLMUserContextAggregator:
        return self._user

    def assistant(self) -> LLMAssistantContextAggregator:
        return self._assistant


# Pipecat 0.0.8x names.
OpenAIUserContextAggregator = LLMUserContextAggregator
OpenAIAssistantContextAggregator = LLMAssistantContextAggregator
OpenAIContextAggregatorPair = LLMContextAggregatorPair
