"""An outbound reminder: call someone, greet them by name, or leave a voicemail after the beep.

    python bot.py -t twilio -x HOST        # then, with CALLPIPE_API_KEY set:
    callpipe dial +15551234567 --provider twilio --from +15557654321 -x HOST \\
        --metadata '{"name": "Ada", "when": "tomorrow at ten"}'

The dial's metadata arrives in ``runner_args.body``. The bot's first words wait until the
``VoicemailDetector`` knows who answered (from the audio; the provider's AMD too when the call
was dialed with ``--machine-detection``): a person hears the reminder, a voicemail gets a
message after its beep, a fax machine is hung up on. Speech from Cartesia when
CARTESIA_API_KEY is set, else eSpeak NG (offline). See README.md in this folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

from callpipe.extensions.voicemail import VoicemailDetector
from callpipe.frames.frames import EndTaskFrame, TTSSpeakFrame
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.runner.dials import current_dial_events
from callpipe.runner.types import TELEPHONY_PROVIDERS, RunnerArguments
from callpipe.runner.utils import create_transport
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

logger = logging.getLogger(__name__)


def reminder(name: str, when: str) -> str:
    return (
        f"Hi {name}, this is Luigi's. Just a reminder of your table {when}. See you then, goodbye!"
    )


def voicemail(name: str, when: str) -> str:
    return (
        f"Hi {name}, this is Luigi's with a reminder of your table {when}. "
        "Call us if you need to change it. Goodbye!"
    )


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
    return FastAPIWebsocketParams(audio_in_enabled=True, audio_out_enabled=True)


async def _provider_amd(detector: VoicemailDetector) -> None:
    """Pass the provider's AMD verdicts (dialed with machine detection) to the detector."""
    events = current_dial_events()
    if events is None:
        return
    while True:
        event = await events.get()
        if event.kind == "amd":
            await detector.provider_verdict(event.value)  # type: ignore[arg-type]


async def bot(runner_args: RunnerArguments) -> None:
    transport: FastAPIWebsocketTransport = await create_transport(
        runner_args, {name: _params for name in (*TELEPHONY_PROVIDERS, "websocket")}
    )
    name = str(runner_args.body.get("name") or "there")
    when = str(runner_args.body.get("when") or "tomorrow")
    detector = VoicemailDetector(voicemail_message=voicemail(name, when))
    task = PipelineTask(
        Pipeline(
            [
                transport.input(),
                detector.detector(),  # listens to who answered
                make_tts(),
                detector.gate(),  # holds the reminder until then
                transport.output(),
            ]
        ),
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
    )
    runner_args.attach(task)

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport: Any, websocket: Any) -> None:
        await task.queue_frames([TTSSpeakFrame(reminder(name, when))])

    @detector.event_handler("on_conversation_detected")
    async def on_person(detector: VoicemailDetector) -> None:
        # The reminder is released now; the end follows it, so it is played out first.
        await detector.push_frame(EndTaskFrame(reason="reminder given"), FrameDirection.UPSTREAM)

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: Any, websocket: Any) -> None:
        await task.cancel()

    amd = asyncio.create_task(_provider_amd(detector))
    try:
        await PipelineRunner(handle_sigint=False).run(task)
    finally:
        amd.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await amd


if __name__ == "__main__":
    from callpipe.runner.run import main

    main()
