"""``IVRNavigator``: let an LLM find its way through a phone menu ("press 1 for sales").

Same names, arguments and events as Pipecat 1.14's ``pipecat.extensions.ivr.ivr_navigator``.
The navigator is a small pipeline, ``[llm, IVRProcessor]``, put where the LLM would go
(between the user context aggregator and the TTS). The LLM answers with short tags that the
processor turns into actions; anything outside a tag is speech for the TTS:

- ``<mode>ivr</mode>`` / ``<mode>conversation</mode>``: the first replies come from a classifier
  prompt (:attr:`IVRNavigator.CLASSIFIER_PROMPT`) that decides whether a menu or a person
  answered. A menu switches the context to the navigation prompt (your goal inside
  :attr:`IVRNavigator.IVR_NAVIGATION_BASE`) plus what was heard so far, runs the LLM on it, sets
  the VAD's ``ivr_vad_params`` (menus pause between options; the default waits 2 s of
  silence before a turn ends) and fires ``on_ivr_status_changed(IVRStatus.DETECTED)``. A person
  fires ``on_conversation_detected(processor, history)``: the handler gives the LLM the bot's
  own prompt (push an ``LLMMessagesUpdateFrame`` upstream from ``processor``).
- ``<dtmf>2</dtmf>``: presses the key(s) at once (``OutputDTMFUrgentFrame``; the output
  transport sends them through the provider's API or as in-band tones).
- ``<ivr>completed</ivr>`` / ``<ivr>stuck</ivr>``: ``on_ivr_status_changed`` with that status;
  ``<ivr>wait</ivr>``: nothing (more of the menu is coming); ``<ivr>detected</ivr>``: as a menu.

Differences from Pipecat, on purpose:

- While the classifier decides, text outside the tags is not spoken (Pipecat would speak a
  chatty classifier's reasoning to the callee); a classifier reply without a ``<mode>`` tag is
  logged and the next turn is classified again.
- Keys and statuses the LLM chose are written to the context as one ``assistant`` message per
  reply (``LLMMessagesAppendFrame`` upstream), since callpipe's assistant aggregator records
  only what was heard. Prompts use the ``system`` role (``developer`` in Pipecat), which
  every callpipe LLM service sends.
- ``<dtmf>123</dtmf>`` presses the three keys (Pipecat accepts one key per tag); a tag with
  anything but ``0-9 * #`` is logged and ignored, as is an unknown status or mode, or a tag
  still open when the reply ends.

Nothing here runs per audio frame: the caller's audio steps over the navigator.
"""

from __future__ import annotations

import logging
import re
from enum import Enum
from typing import Any, Literal

from callpipe.audio.vad.vad_analyzer import VADParams
from callpipe.frames.frames import (
    EndFrame,
    Frame,
    InterruptionFrame,
    KeypadEntry,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMMessagesAppendFrame,
    LLMMessagesUpdateFrame,
    LLMTextFrame,
    OutputDTMFUrgentFrame,
    StartFrame,
    VADParamsUpdateFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.processors.aggregators.llm_context import ChatContext, LLMContextMessage
from callpipe.processors.aggregators.openai_llm_context import OpenAILLMContextFrame
from callpipe.processors.frame_processor import (
    FrameDirection,
    FrameProcessor,
    FrameProcessorSetup,
)
from callpipe.utils.string import longest_trailing_partial_match

logger = logging.getLogger(__name__)

Mode = Literal["classifying", "ivr", "conversation"]

_EVENTS = ("on_conversation_detected", "on_ivr_status_changed")
_KEYS = frozenset(key.value for key in KeypadEntry)
_TAGS = ("dtmf", "ivr", "mode")
_COMMAND = re.compile(r"<(dtmf|ivr|mode)>(.*?)</\1>", re.IGNORECASE | re.DOTALL)
_OPENER = re.compile(r"<(?:dtmf|ivr|mode)>", re.IGNORECASE)
_OPENERS = tuple(f"<{tag}>" for tag in _TAGS)


class IVRStatus(Enum):
    """What the LLM says about its progress through the menu (``<ivr>…</ivr>``)."""

    DETECTED = "detected"
    COMPLETED = "completed"
    STUCK = "stuck"
    WAIT = "wait"


class _TagSplitter:
    """Cuts streamed LLM text into speech and ``<tag>value</tag>`` commands.

    Text that may still become a command (an opened tag, or a tail such as ``"<dt"``) is held
    until the next chunk tells; everything else comes out as soon as it arrives.
    """

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> list[tuple[str | None, str]]:
        """``(None, speech)`` and ``(tag, value)`` pieces, in the order they were written."""
        self._held += text
        pieces: list[tuple[str | None, str]] = []
        while self._held:
            found = _COMMAND.search(self._held)
            if found is not None:
                if found.start():
                    pieces.append((None, self._held[: found.start()]))
                pieces.append((found.group(1).lower(), found.group(2).strip()))
                self._held = self._held[found.end() :]
                continue
            cut = self._undecided_from()
            if cut:
                pieces.append((None, self._held[:cut]))
            self._held = self._held[cut:]
            break
        return pieces

    def _undecided_from(self) -> int:
        """Where the text that may still be (part of) a command begins (``len`` if none)."""
        opened = _OPENER.search(self._held)
        if opened is not None:
            return opened.start()
        # An opener cut by streaming ("<dt"): lowered letters keep their count from the end.
        return len(self._held) - longest_trailing_partial_match(self._held.lower(), _OPENERS)

    def flush(self) -> str:
        """What is still held at the end of a reply (an unfinished tag), and forget it."""
        held, self._held = self._held, ""
        return held


class IVRProcessor(FrameProcessor):
    """Acts on the tags of the LLM's replies (see the module docstring); speech passes on.

    ``classifier_prompt`` is the context the LLM starts with; ``ivr_prompt`` replaces it once
    a menu is detected; ``ivr_vad_params`` are sent upstream then (default: 2 s ``stop_secs``).
    Events: ``on_conversation_detected(processor, history)`` with the context's messages
    after its leading system prompt, and ``on_ivr_status_changed(processor, IVRStatus)``.
    """

    def __init__(
        self,
        *,
        classifier_prompt: str,
        ivr_prompt: str,
        ivr_vad_params: VADParams | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._classifier_prompt = classifier_prompt
        self._ivr_prompt = ivr_prompt
        self._ivr_vad_params = ivr_vad_params or VADParams(stop_secs=2.0)
        self._saved_messages: list[LLMContextMessage] = []
        self._splitter = _TagSplitter()
        self._done: list[str] = []  # this reply's keys and statuses, for the context
        self._saw_mode = False
        self._mode: Mode = "classifying"
        for event in _EVENTS:
            self._register_event_handler(event)

    @property
    def mode(self) -> Mode:
        """``"classifying"`` until the classifier decided, then ``"ivr"`` or ``"conversation"``."""
        return self._mode

    def update_saved_messages(self, messages: list[LLMContextMessage]) -> None:
        """The context's messages as last sent to the LLM (kept for a change of prompt)."""
        self._saved_messages = messages

    def _history(self) -> list[LLMContextMessage]:
        """The saved messages without the system prompt(s) they start with."""
        messages = self._saved_messages
        start = 0
        while start < len(messages):
            first = messages[start]
            if not isinstance(first, dict) or first.get("role") not in ("system", "developer"):
                break
            start += 1
        return list(messages[start:])

    passes_input_audio = True  # the caller's audio only passes through (see FrameProcessor)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            prompt = {"role": "system", "content": self._classifier_prompt}
            await self.push_frame(LLMMessagesUpdateFrame([prompt]), FrameDirection.UPSTREAM)
        elif isinstance(frame, LLMTextFrame) and direction is FrameDirection.DOWNSTREAM:
            for tag, value in self._splitter.feed(frame.text):
                await self._on_piece(tag, value)
        elif isinstance(frame, LLMFullResponseEndFrame | EndFrame):
            await self._end_of_reply(isinstance(frame, LLMFullResponseEndFrame))
            await self.push_frame(frame, direction)
        elif isinstance(frame, InterruptionFrame):
            self._splitter.flush()
            self._done.clear()
            self._saw_mode = False
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    async def _on_piece(self, tag: str | None, value: str) -> None:
        if tag is None:
            if self._mode == "classifying":
                logger.debug("%s: not speaking the classifier's text %r", self, value)
            else:
                await self.push_frame(LLMTextFrame(value))
        elif tag == "dtmf":
            await self._press(value)
        elif tag == "ivr":
            await self._on_status(value)
        else:
            await self._on_mode(value)

    async def _end_of_reply(self, replied: bool) -> None:
        left = self._splitter.flush()
        if _OPENER.search(left):
            logger.warning("%s: ignoring an unfinished tag at the end of a reply: %r", self, left)
        elif left:
            await self._on_piece(None, left)  # a lone "<" was speech after all
        if replied and self._mode == "classifying" and not self._saw_mode:
            logger.warning("%s: the classifier's reply had no <mode> tag", self)
        self._saw_mode = False
        if self._done:
            message = {"role": "assistant", "content": "".join(self._done)}
            self._done.clear()
            await self.push_frame(LLMMessagesAppendFrame([message]), FrameDirection.UPSTREAM)

    async def _press(self, value: str) -> None:
        keys = "".join(value.split())
        if not keys or not set(keys) <= _KEYS:
            logger.warning("%s: ignoring <dtmf>%s</dtmf>: keys are 0-9, * and #", self, value)
            return
        logger.debug("%s: pressing %s", self, keys)
        await self.push_frame(OutputDTMFUrgentFrame.from_string(keys))
        self._done.append(f"<dtmf>{keys}</dtmf>")

    async def _on_status(self, value: str) -> None:
        try:
            status = IVRStatus(value.lower())
        except ValueError:
            logger.warning("%s: ignoring unknown IVR status %r", self, value)
            return
        if status is IVRStatus.DETECTED:
            await self._menu_detected()
            return  # the context was just replaced: nothing to add to it
        self._done.append(f"<ivr>{status.value}</ivr>")
        if status is IVRStatus.WAIT:
            logger.debug("%s: waiting for more of the menu", self)
            return
        logger.info("%s: IVR navigation %s", self, status.value)
        await self._call_event_handler("on_ivr_status_changed", status)

    async def _on_mode(self, value: str) -> None:
        self._saw_mode = True
        mode = value.lower()
        if mode == "ivr":
            await self._menu_detected()
        elif mode == "conversation":
            logger.info("%s: a person answered", self)
            self._mode = "conversation"
            await self._call_event_handler("on_conversation_detected", self._history())
        else:
            logger.warning("%s: ignoring unknown mode %r", self, value)

    async def _menu_detected(self) -> None:
        logger.info("%s: phone menu detected, navigating", self)
        self._mode = "ivr"
        messages: list[LLMContextMessage] = [{"role": "system", "content": self._ivr_prompt}]
        messages.extend(self._history())
        update = LLMMessagesUpdateFrame(messages, run_llm=True)
        await self.push_frame(update, FrameDirection.UPSTREAM)
        await self.push_frame(VADParamsUpdateFrame(self._ivr_vad_params), FrameDirection.UPSTREAM)
        await self._call_event_handler("on_ivr_status_changed", IVRStatus.DETECTED)


class IVRNavigator(Pipeline):
    """The LLM and its :class:`IVRProcessor`, as one processor (see the module docstring).

    ``llm``: any LLM service. ``ivr_prompt``: the goal of the call ("reach billing; the account
    number is 12345"), placed into :attr:`IVR_NAVIGATION_BASE`. ``ivr_vad_params``: the VAD
    parameters while navigating (default: 2 s ``stop_secs``). Handlers of
    ``on_conversation_detected`` and ``on_ivr_status_changed`` are given the processor.
    """

    CLASSIFIER_PROMPT = """Your only job is to tell who answered an outbound phone call, \
from the transcript of what they said.

Answer `<mode>ivr</mode>` for an automated phone system: a list of choices ("for sales, press \
1"), a request to key in or say something ("enter your account number, then the pound key"), a \
recorded welcome ("thanks for calling Acme"), a hold or queue announcement ("your call will be \
answered in the order received"), or a network message ("all lines are busy").

Answer `<mode>conversation</mode>` for a live person: someone giving their name or asking how \
they can help, answering what was said, hesitating, or speaking casually.

Reply with exactly one of the two tags and nothing else."""

    IVR_NAVIGATION_BASE = """You are on a phone call with an automated menu system (an IVR). \
You read transcripts of what the system says and choose how to answer it.

What you need to achieve on this call:
{goal}

How to answer:
- To choose a menu option, reply with its key in a tag: `<dtmf>2</dtmf>`. Only choose an \
option that leads toward the goal; when several do, take the most specific one.
- To key in a number (account, date, phone number), send one tag per digit: \
`<dtmf>4</dtmf><dtmf>2</dtmf>` for 42. Use `*` and `#` the same way when asked.
- When the system asks you to say something ("say yes or no", "what is your name?"), reply \
with just the words to say, ending with a full stop or question mark.
- Reply `<ivr>wait</ivr>` when none of the options fits the goal yet, when the transcript \
looks cut off or unclear, or when more options are probably still to come. Waiting is often \
right: menus are read out in parts.
- Reply `<ivr>completed</ivr>` once you are being put through to the right place: "please \
hold while I transfer you", "connecting you now", or a greeting from the department you wanted.
- Reply `<ivr>stuck</ivr>` when you keep hearing the same menu without getting closer, when \
your choices are refused again and again, when you are asked for something you do not know, \
or when no option leads anywhere useful.

Never explain your choice. Every reply is tags only, or only the words to say."""

    def __init__(
        self,
        *,
        llm: FrameProcessor,
        ivr_prompt: str,
        ivr_vad_params: VADParams | None = None,
    ) -> None:
        self._llm = llm
        self._ivr_prompt = self.IVR_NAVIGATION_BASE.format(goal=ivr_prompt)
        self._ivr_vad_params = ivr_vad_params or VADParams(stop_secs=2.0)
        self._classifier_prompt = self.CLASSIFIER_PROMPT
        self._ivr_processor = IVRProcessor(
            classifier_prompt=self._classifier_prompt,
            ivr_prompt=self._ivr_prompt,
            ivr_vad_params=self._ivr_vad_params,
        )
        super().__init__([llm, self._ivr_processor])

    @property
    def ivr_processor(self) -> IVRProcessor:
        return self._ivr_processor

    def add_event_handler(self, event_name: str, handler: Any) -> None:
        """The IVR events belong to the processor (handlers get it as first argument)."""
        if event_name in _EVENTS:
            self._ivr_processor.add_event_handler(event_name, handler)
        else:
            super().add_event_handler(event_name, handler)

    passes_input_audio = True  # while the LLM and the processor let it step over them

    def input_audio_unused(self) -> bool:
        return all(p._skip_input_audio for p in (self._llm, self._ivr_processor))

    async def setup(self, setup: FrameProcessorSetup) -> None:
        await super().setup(setup)
        self._update_hooks()  # again, now that the processors inside are set up

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, LLMContextFrame | OpenAILLMContextFrame):
            context: ChatContext = frame.context
            self._ivr_processor.update_saved_messages(list(context.messages))
        await super().process_frame(frame, direction)
