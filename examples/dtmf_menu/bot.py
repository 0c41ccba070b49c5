"""A keypad menu (IVR): prompts, single keys, a multi-digit entry ended by #, and a goodbye.

    python bot.py                      # local: softphone at /phone, `callpipe call --dtmf ...`
    python bot.py -t twilio -x HOST    # any provider: twilio, telnyx, plivo, exotel, vonage

Speech comes from Cartesia when CARTESIA_API_KEY is set, else from eSpeak NG (offline, no key).
See README.md in this folder.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from callpipe.frames.frames import (
    EndTaskFrame,
    Frame,
    InputDTMFFrame,
    InterruptionFrame,
    KeypadEntry,
    TTSSpeakFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.runner.types import TELEPHONY_PROVIDERS, RunnerArguments
from callpipe.runner.utils import create_transport
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

logger = logging.getLogger(__name__)

MENU = (
    "Welcome to Luigi's. For opening hours, press 1. To check a booking, press 2. "
    "To hear this again, press 9. To end the call, press star."
)
HOURS = "We are open every day from noon to eleven at night."
ENTER_BOOKING = "Please enter your four digit booking number, then press pound."
BOOKINGS = {"1234": "a table for two, tonight at eight"}
NOT_UNDERSTOOD = "Sorry, that is not an option."
GOODBYE = "Thank you for calling. Goodbye!"
ENTRY_DIGITS = 4


class KeypadMenu(FrameProcessor):
    """Turns keys into prompts. Place it between ``transport.input()`` and the TTS.

    A key cuts off the prompt that is playing (an ``InterruptionFrame`` makes the TTS drop it
    and the transport tell the provider to clear its buffer), as callers expect from a menu.
    """

    def __init__(self) -> None:
        super().__init__()
        self._entry: str | None = None  # digits of a booking number being typed, or None
        self._ending = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputDTMFFrame) and not self._ending:
            await self.push_frame(InterruptionFrame())
            await self._on_key(frame.button)
            return
        await self.push_frame(frame, direction)

    async def say(self, text: str) -> None:
        await self.push_frame(TTSSpeakFrame(text))

    async def _on_key(self, key: KeypadEntry) -> None:
        if self._entry is not None:
            await self._on_entry_key(key)
        elif key == KeypadEntry.ONE:
            await self.say(HOURS)
        elif key == KeypadEntry.TWO:
            self._entry = ""
            await self.say(ENTER_BOOKING)
        elif key == KeypadEntry.NINE:
            await self.say(MENU)
        elif key == KeypadEntry.STAR:
            await self.end_call("caller chose to end")
        else:
            await self.say(f"{NOT_UNDERSTOOD} {MENU}")

    async def _on_entry_key(self, key: KeypadEntry) -> None:
        assert self._entry is not None
        if key != KeypadEntry.POUND:
            if key.value.isdigit():
                self._entry += key.value
            return
        number, self._entry = self._entry, None
        booking = BOOKINGS.get(number) if len(number) == ENTRY_DIGITS else None
        spelled = " ".join(number) or "nothing"
        if booking is None:
            await self.say(f"I could not find booking {spelled}. {MENU}")
        else:
            await self.say(f"Booking {spelled} is {booking}. {MENU}")

    async def end_call(self, reason: str) -> None:
        """Say goodbye, then end: the EndFrame the task sends follows the goodbye, so the
        transport plays it out before hanging up."""
        if self._ending:
            return
        self._ending = True
        await self.say(GOODBYE)
        await self.push_frame(EndTaskFrame(reason=reason), FrameDirection.UPSTREAM)


def make_tts() -> FrameProcessor:
    """Cartesia with a key (CALLPIPE_CARTESIA_URL overrides its address), else eSpeak NG."""
    if os.getenv("CARTESIA_API_KEY"):
        from callpipe.services.cartesia.tts import CARTESIA_URL, CartesiaTTSService

        return CartesiaTTSService(
            voice_id=os.getenv("CARTESIA_VOICE_ID", "79a125e8-cd45-4c13-8a67-188112f4dd22"),
            url=os.getenv("CALLPIPE_CARTESIA_URL") or CARTESIA_URL,
        )
    from callpipe.services.espeak import ESpeakTTSService

    return ESpeakTTSService()


def _params() -> FastAPIWebsocketParams:
    # No VAD and no speech recognition: the menu listens to keys only.
    return FastAPIWebsocketParams(
        audio_in_enabled=True, audio_out_enabled=True, session_timeout=3 * 60
    )


async def bot(runner_args: RunnerArguments) -> None:
    # create_transport reads the provider's handshake and builds its serializer, with the
    # provider's credentials from the environment when they are set.
    transport: FastAPIWebsocketTransport = await create_transport(
        runner_args, {name: _params for name in (*TELEPHONY_PROVIDERS, "websocket")}
    )
    menu = KeypadMenu()
    pipeline = Pipeline([transport.input(), menu, make_tts(), transport.output()])
    task = PipelineTask(
        pipeline, params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
    )
    runner_args.attach(task)

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport: Any, websocket: Any) -> None:
        await task.queue_frames([TTSSpeakFrame(MENU)])

    @transport.event_handler("on_session_timeout")
    async def on_session_timeout(transport: Any, websocket: Any) -> None:
        await menu.end_call("session timeout")

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: Any, websocket: Any) -> None:
        await task.cancel()

    await PipelineRunner(handle_sigint=False).run(task)


if __name__ == "__main__":
    from callpipe.runner.run import main

    main()
