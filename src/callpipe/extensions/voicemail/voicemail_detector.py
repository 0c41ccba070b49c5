"""``VoicemailDetector``: hold the bot's first words until we know who answered.

Same place and shape as Pipecat's (``detector()`` after the input transport, ``gate()`` before
the output transport, ``on_conversation_detected`` / ``on_voicemail_detected`` events), but the
decision comes from the callee's audio (:class:`~callpipe.audio.amd.AnsweringMachineDetector`:
greeting length and cadence, beep and fax tones), so it needs no LLM, no transcript and no
provider support, and it knows when the beep has sounded.

- A person (``human``), or nothing decided within ``timeout`` (``unknown``, a silent line): the
  gate releases the held speech and the call goes on.
- A voicemail (``machine_start``): the held speech is dropped and the callee's audio no longer
  reaches the rest of the pipeline (the bot must not answer the greeting). Once the greeting is
  over (``machine_end_beep``, or ``machine_end_silence``), ``on_voicemail_detected`` fires; with
  ``voicemail_message`` set, that message is spoken and the call then hangs up.
- A fax: the call hangs up.

``on_amd_result(detector, result, at_secs)`` reports every verdict (for logs and metrics).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any, Literal

from callpipe.audio.amd import AmdResult, AmdSettings, AnsweringMachineDetector
from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    EndTaskFrame,
    Frame,
    InputAudioRawFrame,
    StartFrame,
    SystemFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor

logger = logging.getLogger(__name__)

GateState = Literal["holding", "open", "dropping"]


class TTSGate(FrameProcessor):
    """Holds the bot's output (anything but system and lifecycle frames) until released."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state: GateState = "holding"
        self._held: list[tuple[Frame, FrameDirection]] = []

    async def release(self) -> None:
        """The callee is a person: let the held speech out, in order."""
        if self.state != "holding":
            return
        self.state = "open"
        held, self._held = self._held, []
        for frame, direction in held:
            await self.push_frame(frame, direction)

    def drop(self) -> None:
        """A machine answered: forget what the bot wanted to say, let later frames through."""
        self.state = "dropping"
        self._held.clear()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        passes = (
            self.state != "holding"
            or direction is FrameDirection.UPSTREAM
            or isinstance(frame, SystemFrame | StartFrame | EndFrame | CancelFrame)
        )
        if passes:
            await self.push_frame(frame, direction)
        else:
            self._held.append((frame, direction))


class VoicemailDetector(FrameProcessor):
    """Classify the callee from their audio and gate the bot's speech (module docstring).

    ``timeout``: seconds after the first audio before the held speech is released anyway.
    ``voicemail_response_delay``: extra quiet to wait after a greeting ends in silence (a beep
    needs none: the recording has started). ``decision_timeout``: the silence after a short
    answer that makes it a person (Pipecat's name; ``AmdSettings.human_silence``).
    Pipecat's ``classifier``/``llm``/``custom_system_prompt`` are accepted for drop-in
    compatibility and not used: the decision comes from the audio.
    """

    def __init__(
        self,
        *,
        timeout: float = 6.0,
        voicemail_message: str | None = None,
        voicemail_response_delay: float = 0.0,
        amd_settings: AmdSettings | None = None,
        decision_timeout: float | None = None,
        classifier: object | None = None,
        llm: object | None = None,
        custom_system_prompt: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if classifier is not None or llm is not None or custom_system_prompt is not None:
            logger.info("VoicemailDetector decides from the audio; the classifier/llm is unused")
        if decision_timeout is not None:
            amd_settings = replace(amd_settings or AmdSettings(), human_silence=decision_timeout)
        self._timeout = timeout
        self._message = voicemail_message
        self._delay = voicemail_response_delay
        self._settings = amd_settings
        self._amd: AnsweringMachineDetector | None = None
        self._tts_gate = TTSGate(name=f"{self.name}::gate")
        self._voicemail = False
        self._finished = False
        self._timer: asyncio.Task[None] | None = None
        self.result: AmdResult | None = None
        self.results: list[tuple[AmdResult, float]] = []
        self._register_event_handler("on_conversation_detected")
        self._register_event_handler("on_voicemail_detected")
        self._register_event_handler("on_amd_result")

    def detector(self) -> VoicemailDetector:
        """The processor to place right after ``transport.input()``."""
        return self

    def gate(self) -> TTSGate:
        """The processor to place right before ``transport.output()``."""
        return self._tts_gate

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            await self._listen(frame)
            if self._voicemail:
                return  # the greeting is not the bot's conversation
        elif self._voicemail and isinstance(
            frame, UserStartedSpeakingFrame | UserStoppedSpeakingFrame
        ):
            return
        if isinstance(frame, EndFrame | CancelFrame):
            await self.cancel_task(self._timer)
        await self.push_frame(frame, direction)

    async def _listen(self, frame: InputAudioRawFrame) -> None:
        if self._finished:
            return
        if self._amd is None:
            self._amd = AnsweringMachineDetector(frame.sample_rate, self._settings)
            self._timer = self.create_task(self._release_after_timeout(), "amd-timeout")
        for verdict in self._amd.feed(frame.audio):
            await self._on_verdict(verdict.result, verdict.at)

    async def provider_verdict(self, result: AmdResult) -> None:
        """A verdict from the provider's own AMD (e.g. a Twilio ``AnsweredBy`` callback).

        Treated like the local detector's: whichever comes first classifies the call, and a
        provider ``machine_end_*`` ends a greeting the local detector called a machine.
        """
        await self._on_verdict(result, self._amd.seconds if self._amd is not None else 0.0)

    async def _release_after_timeout(self) -> None:
        await asyncio.sleep(self._timeout)
        if self.result is None:
            await self._on_verdict("unknown", self._timeout)

    async def _on_verdict(self, result: AmdResult, at: float) -> None:
        if self._finished:
            return
        self.results.append((result, at))
        logger.info("answering-machine detection: %s after %.2f s", result, at)
        await self._call_event_handler("on_amd_result", result, at)
        if self.result is None:
            self.result = result
            if result in ("human", "unknown"):
                self._finished = True
                await self._tts_gate.release()
                await self._call_event_handler("on_conversation_detected")
                return
            self._voicemail = True
            self._tts_gate.drop()
            if result == "fax":
                self._finished = True
                await self.push_frame(EndTaskFrame(reason="fax"), FrameDirection.UPSTREAM)
                return
        if result.startswith("machine_end"):
            self._finished = True
            if result == "machine_end_silence" and self._delay > 0:
                await asyncio.sleep(self._delay)
            await self._call_event_handler("on_voicemail_detected")
            if self._message:
                await self.push_frame(TTSSpeakFrame(self._message))
                await self.push_frame(
                    EndTaskFrame(reason="voicemail left"), FrameDirection.UPSTREAM
                )
