"""``WarmTransferProcessor``: keep the caller company while the bot fetches a person.

The provider's REST sequence (:func:`callpipe.providers.twilio.warm_transfer.twilio_warm_transfer`,
:func:`callpipe.providers.telnyx.warm_transfer.telnyx_warm_transfer`) dials the agent, briefs them
and bridges the caller; that takes seconds to tens of seconds, and a caller who hears nothing
hangs up. This processor wraps it:

1. the REST sequence starts at once (the agent's phone rings while the bot speaks);
2. the bot says ``hold_prompt`` (through the pipeline's TTS) and, once it has been played,
   turns on the output transport's hold music (``MixerEnableFrame(True)``; give the transport
   ``audio_out_mixer=HoldMusicMixer()``, or any mixer that obeys that frame);
3. bridged: the music stops (``on_transfer_bridged``). The provider ends the caller's media
   stream (new TwiML, or Telnyx ``streaming_stop``), so the pipeline ends from the far side.
   The sequence runs on its own, not as a task of this pipeline: the pipeline's end (which its
   last request causes) does not cancel it, and the sequence is bounded by its own timeouts.
   Do not push an ``EndFrame`` yourself then: the transport would hang up the caller's call,
   which is now the agent's call too;
4. the agent did not answer, or the REST sequence failed: the music stops and the bot says
   ``resume_message``; the call goes on with the bot (``on_transfer_failed``).

Place it before the TTS service (e.g. right after the LLM) so its speech is synthesised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from callpipe.errors import CallControlError
from callpipe.frames.frames import (
    BotStoppedSpeakingFrame,
    Frame,
    MixerEnableFrame,
    TTSSpeakFrame,
)
from callpipe.log import redact_numbers
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.telephony.dial.warm_transfer import WarmTransferResult

logger = logging.getLogger(__name__)

StartTransfer = Callable[[], Awaitable[WarmTransferResult]]

_RUNNING: set[asyncio.Task[WarmTransferResult]] = set()
"""Sequences in flight (a strong reference, so none is collected before it ends)."""


def _settled(task: asyncio.Task[WarmTransferResult]) -> None:
    _RUNNING.discard(task)
    if not task.cancelled():
        task.exception()  # already logged; retrieved so asyncio does not report it again


HOLD_PROMPT = "Please hold while I connect you."
RESUME_MESSAGE = "I'm sorry, I couldn't reach anyone just now. I'm still here with you."


class WarmTransferProcessor(FrameProcessor):
    """Hold prompt, hold music and the resume-or-leave decision around a warm transfer."""

    def __init__(
        self,
        *,
        hold_prompt: str | None = HOLD_PROMPT,
        resume_message: str | None = RESUME_MESSAGE,
        prompt_timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._hold_prompt = hold_prompt
        self._resume_message = resume_message
        self._prompt_timeout = prompt_timeout
        self._bot_stopped = asyncio.Event()
        self._busy = False
        self._register_event_handler("on_transfer_bridged")
        self._register_event_handler("on_transfer_failed")

    @property
    def in_progress(self) -> bool:
        return self._busy

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_stopped.set()
        await self.push_frame(frame, direction)

    async def transfer(self, start: StartTransfer) -> WarmTransferResult | None:
        """Run ``start()`` (the provider's REST sequence) with the caller on hold.

        Returns its result, or None when it raised (logged; the bot resumes with the caller)
        or a transfer was already in progress.
        """
        if self._busy:
            logger.warning("%s: a warm transfer is already in progress", self)
            return None
        self._busy = True
        try:
            return await self._transfer(start)
        finally:
            self._busy = False

    async def _run_rest(self, start: StartTransfer) -> WarmTransferResult:
        try:
            result = await start()
        except Exception as exc:
            # A CallControlError's message names the request path (the calls' raw ids): log
            # the provider's side only; any message may quote the agent's number: mask it.
            why = exc.reason if isinstance(exc, CallControlError) else str(exc)
            logger.warning("%s: warm transfer failed: %s", self, redact_numbers(why))
            raise
        logger.info("%s: warm transfer %s (agent %s)", self, result.outcome, result.agent_status)
        return result

    async def _transfer(self, start: StartTransfer) -> WarmTransferResult | None:
        # Not a task of this processor: the provider's last request ends the caller's stream,
        # and with it this pipeline, whose teardown must not cut the sequence short.
        rest = asyncio.get_running_loop().create_task(
            self._run_rest(start), name=f"{self}:warm-transfer"
        )
        _RUNNING.add(rest)
        rest.add_done_callback(_settled)
        if self._hold_prompt:
            self._bot_stopped.clear()
            await self.push_frame(TTSSpeakFrame(self._hold_prompt))
            try:
                async with asyncio.timeout(self._prompt_timeout):
                    await self._bot_stopped.wait()
            except TimeoutError:
                logger.debug("%s: hold prompt not reported played; music anyway", self)
        music = not rest.done()
        if music:
            await self.push_frame(MixerEnableFrame(enable=True))
        result: WarmTransferResult | None
        try:
            result = await asyncio.shield(rest)
        except Exception:  # logged by _run_rest
            result = None
        if music:
            await self.push_frame(MixerEnableFrame(enable=False))
        if result is not None and result.outcome == "bridged":
            logger.info("%s: warm transfer bridged; the provider ends the stream", self)
            await self._call_event_handler("on_transfer_bridged", result)
            return result
        if self._resume_message:
            await self.push_frame(TTSSpeakFrame(self._resume_message))
        await self._call_event_handler("on_transfer_failed", result)
        return result
