"""The built-in offline demo bot: every part of a phone bot, no account, key or internet.

- **Events**: greets the caller when the call connects (``on_client_connected``), cancels the
  pipeline when the caller hangs up (``on_client_disconnected``), says goodbye and hangs up after
  ``session_timeout`` seconds (``on_session_timeout``).
- **VAD and turns**: Silero VAD finds when the caller starts and stops speaking.
- **Echo**: after each utterance the bot says "you said:" and plays the caller's own audio back
  (a service-free stand-in for STT → LLM → TTS).
- **Interruptions**: speaking over the bot cuts it off (the provider is told to ``clear``).
- **DTMF**: keys are read out; ``#`` says goodbye and hangs up (after the goodbye has played).

Speech comes from eSpeak NG, offline. It runs under the development runner (``callpipe demo``)
and accepts every provider dialect on ``/ws``.
"""

from __future__ import annotations

import logging
from typing import Any

from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.frames.frames import (
    EndFrame,
    EndTaskFrame,
    Frame,
    InputDTMFFrame,
    KeypadEntry,
    SpeechOutputAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.audio.utterance_echo import UtteranceEchoProcessor
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.runner.types import TELEPHONY_PROVIDERS
from callpipe.runner.utils import create_transport
from callpipe.services.espeak import ESpeakTTSService
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

logger = logging.getLogger(__name__)

# Load the Silero model when the server imports the bot, not inside the first call, where
# building the ONNX session would stall the event loop (and every other call) for ~0.2 s.
SileroVADAnalyzer()

GREETING = (
    "Hello! This is the callpipe demo. Say something, or press a key. Press pound to hang up."
)
YOU_SAID = "You said:"
GOODBYE = "Goodbye!"
TIME_UP = "Our time is up. Goodbye!"
SESSION_TIMEOUT_SECS = 120.0

_KEY_NAMES = {KeypadEntry.STAR: "star", KeypadEntry.POUND: "pound"}


class DemoDialog(FrameProcessor):
    """The demo's little dialogue: "you said:" before each echo, key read-out, goodbye on ``#``.

    Sits between the utterance echo and the TTS, so everything it says goes through the TTS
    queue in order with the echoed audio.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ending = False
        self.keys: list[str] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction is FrameDirection.UPSTREAM:
            await self.push_frame(frame, direction)
        elif isinstance(frame, InputDTMFFrame):
            await self.push_frame(frame, direction)
            await self._on_key(frame.button)
        elif isinstance(frame, TTSStartedFrame | SpeechOutputAudioRawFrame | TTSStoppedFrame):
            # Only the echo produces these upstream of the TTS: introduce it, or drop it once
            # the call is ending.
            if self.ending:
                return
            if isinstance(frame, TTSStartedFrame):
                await self.push_frame(TTSSpeakFrame(YOU_SAID))
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    async def _on_key(self, key: KeypadEntry) -> None:
        if self.ending:
            return
        self.keys.append(key.value)
        if key is KeypadEntry.POUND:
            self.ending = True
            logger.info("demo: caller pressed #, hanging up")
            await self.push_frame(TTSSpeakFrame(GOODBYE))
            await self.push_frame(EndTaskFrame(reason="caller pressed #"), FrameDirection.UPSTREAM)
            return
        await self.push_frame(TTSSpeakFrame(f"You pressed {_KEY_NAMES.get(key, key.value)}."))


def _setting(runner_args: Any, name: str, default: Any) -> Any:
    value = getattr(getattr(runner_args, "cli_args", None), name, None)
    return default if value is None else value


async def bot(runner_args: Any) -> None:
    """One call: build the transport for whichever provider connected, and run the demo."""
    session_timeout = float(_setting(runner_args, "session_timeout", SESSION_TIMEOUT_SECS))
    greeting = str(_setting(runner_args, "greeting", GREETING))

    def params() -> FastAPIWebsocketParams:
        return FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            vad_analyzer=SileroVADAnalyzer(),
            session_timeout=session_timeout or None,
        )

    transport: FastAPIWebsocketTransport = await create_transport(
        runner_args, {name: params for name in (*TELEPHONY_PROVIDERS, "websocket")}
    )
    dialog = DemoDialog(name="demo-dialog")
    pipeline = Pipeline(
        [
            transport.input(),
            UtteranceEchoProcessor(),
            dialog,
            ESpeakTTSService(),
            transport.output(),
        ]
    )
    task = PipelineTask(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=8000, audio_out_sample_rate=8000, allow_interruptions=True
        ),
    )
    runner_args.attach(task)

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport: Any, websocket: Any) -> None:
        if greeting:
            await task.queue_frames([TTSSpeakFrame(greeting)])

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: Any, websocket: Any) -> None:
        await task.cancel()

    @transport.event_handler("on_session_timeout")
    async def on_session_timeout(transport: Any, websocket: Any) -> None:
        logger.info("demo: session timeout, saying goodbye")
        dialog.ending = True
        await task.queue_frames([TTSSpeakFrame(TIME_UP), EndFrame(reason="session timeout")])

    await PipelineRunner(handle_sigint=False).run(task)
