"""A Pipecat 1.14-style phone agent with a tool: a restaurant line that checks table availability.

Written the way a current Pipecat telephony bot is (``LLMContext``, ``LLMContextAggregatorPair``,
VAD in the user aggregator's params, ``Settings`` objects, ``FunctionSchema``/``ToolsSchema``,
mute strategies, idle prompt, call recording, IPA pronunciations for the TTS, and the latency
breakdown logged after every turn), with ``callpipe`` for ``pipecat``.

    python bot.py -t twilio -x your-host.example      # OPENAI_API_KEY, DEEPGRAM_API_KEY,
                                                       # CARTESIA_API_KEY, CARTESIA_VOICE_ID
    python bot.py -t twilio --insecure                 # local testing (no signatures/tokens)

``OPENAI_BASE_URL``, ``DEEPGRAM_URL`` and ``CARTESIA_URL`` point the services elsewhere (the
local fakes in ``callpipe.testing.fakes`` in the tests). ``RECORDING_PATH`` saves a stereo WAV of
each call (caller left, bot right). Uses ``PipelineTask``: switch to ``PipelineWorker`` once
your callpipe has it.
"""

from __future__ import annotations

import logging
import os
import wave
from typing import Any

from callpipe.adapters.schemas.function_schema import FunctionSchema
from callpipe.adapters.schemas.tools_schema import ToolsSchema
from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.frames.frames import LLMRunFrame
from callpipe.observers.user_bot_latency_observer import LatencyBreakdown, UserBotLatencyObserver
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from callpipe.processors.audio.audio_buffer_processor import AudioBufferProcessor
from callpipe.runner.types import RunnerArguments, WebSocketRunnerArguments
from callpipe.runner.utils import parse_telephony_websocket
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.deepgram.stt import DeepgramSTTService
from callpipe.services.llm_service import FunctionCallParams
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from callpipe.turns.user_mute import (
    FunctionCallUserMuteStrategy,
    MuteUntilFirstBotCompleteUserMuteStrategy,
)

logger = logging.getLogger("restaurant")

# Words the TTS would guess wrong, with how to say them (IPA): each TTS writes its own markup.
PRONUNCIATIONS = {"gnocchi": "ˈnjɔki", "Bella's": "ˈbɛləz"}

SYSTEM_PROMPT = (
    "You are the phone line of Bella's restaurant. Be brief: this is a phone call. "
    "Use check_availability before promising a table."
)

check_availability = FunctionSchema(
    name="check_availability",
    description="Check whether a table is free.",
    properties={
        "party_size": {"type": "integer", "description": "Number of guests"},
        "time": {"type": "string", "description": "Time, 24-hour HH:MM"},
    },
    required=["party_size", "time"],
)


async def on_check_availability(params: FunctionCallParams) -> None:
    party = int(params.arguments.get("party_size", 0))
    await params.result_callback({"available": 0 < party <= 6, "table": 12})


def _services() -> tuple[DeepgramSTTService, OpenAILLMService, CartesiaTTSService]:
    stt = DeepgramSTTService(
        api_key=os.getenv("DEEPGRAM_API_KEY"),
        url=os.getenv("DEEPGRAM_URL", "wss://api.deepgram.com"),
        settings=DeepgramSTTService.Settings(model="nova-3", language="en"),
    )
    llm = OpenAILLMService(
        api_key=os.getenv("OPENAI_API_KEY"),
        base_url=os.getenv("OPENAI_BASE_URL"),
        settings=OpenAILLMService.Settings(model="gpt-4o-mini", temperature=0.3),
    )
    tts = CartesiaTTSService(
        api_key=os.getenv("CARTESIA_API_KEY"),
        url=os.getenv("CARTESIA_URL", "wss://api.cartesia.ai"),
        settings=CartesiaTTSService.Settings(voice=os.getenv("CARTESIA_VOICE_ID", "default")),
    )
    tts.add_text_transformer(CartesiaTTSService.pronunciation_transform_ipa(PRONUNCIATIONS))
    return stt, llm, tts


def _save_recording(path: str, audio: bytes, sample_rate: int, num_channels: int) -> None:
    with wave.open(path, "wb") as wav:
        wav.setnchannels(num_channels)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(audio)


async def bot(runner_args: RunnerArguments) -> None:
    assert isinstance(runner_args, WebSocketRunnerArguments)
    _, call_data = await parse_telephony_websocket(runner_args.websocket)
    account_sid, auth_token = os.getenv("TWILIO_ACCOUNT_SID"), os.getenv("TWILIO_AUTH_TOKEN")
    serializer = TwilioFrameSerializer(
        stream_sid=call_data["stream_id"],
        call_sid=call_data["call_id"],
        account_sid=account_sid,
        auth_token=auth_token,
        params=TwilioFrameSerializer.InputParams(auto_hang_up=bool(account_sid and auth_token)),
    )
    transport = FastAPIWebsocketTransport(
        websocket=runner_args.websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True, audio_out_enabled=True, serializer=serializer
        ),
    )
    stt, llm, tts = _services()
    llm.register_function("check_availability", on_check_availability)

    context = LLMContext(
        [{"role": "system", "content": SYSTEM_PROMPT}],
        tools=ToolsSchema(standard_tools=[check_availability]),
    )
    user_aggregator, assistant_aggregator = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            vad_analyzer=SileroVADAnalyzer(),
            user_mute_strategies=[
                MuteUntilFirstBotCompleteUserMuteStrategy(),
                FunctionCallUserMuteStrategy(),
            ],
            user_idle_timeout=8.0,
        ),
    )
    recorder = AudioBufferProcessor(num_channels=2, buffer_size=0)

    pipeline = Pipeline(
        [
            transport.input(),
            stt,
            user_aggregator,
            llm,
            tts,
            transport.output(),
            recorder,
            assistant_aggregator,
        ]
    )
    latency = UserBotLatencyObserver()
    task = PipelineTask(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=8000, audio_out_sample_rate=8000, enable_metrics=True
        ),
        observers=[latency],
    )
    runner_args.attach(task)

    @user_aggregator.event_handler("on_user_turn_idle")
    async def on_user_turn_idle(aggregator: Any) -> None:
        message = {"role": "system", "content": "The caller is quiet. Ask if they are still there."}
        context.add_message(message)
        await task.queue_frames([LLMRunFrame()])

    @recorder.event_handler("on_audio_data")
    async def on_audio_data(buffer: Any, audio: bytes, sample_rate: int, channels: int) -> None:
        path = os.getenv("RECORDING_PATH")
        if path:
            _save_recording(path, audio, sample_rate, channels)

    @latency.event_handler("on_latency_breakdown")
    async def on_latency_breakdown(observer: Any, breakdown: LatencyBreakdown) -> None:
        for line in breakdown.turn_contribution_lines():
            logger.info("latency %s", line)

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport: Any, websocket: Any) -> None:
        await recorder.start_recording()
        context.add_message({"role": "system", "content": "Greet the caller."})
        await task.queue_frames([LLMRunFrame()])

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: Any, websocket: Any) -> None:
        await task.cancel()

    await PipelineRunner(handle_sigint=False).run(task)


if __name__ == "__main__":
    from callpipe.runner.run import main

    main()
