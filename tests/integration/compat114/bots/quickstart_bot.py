"""The common multi-transport Pipecat bot file (quickstart / pipecat-examples runner style),
with ``callpipe`` for ``pipecat``: Daily, WebRTC and Twilio in one file, RTVI in the pipeline.

On callpipe only its Twilio branch runs; the Daily/WebRTC/RTVI lines must import and do
nothing. Deepgram, OpenAI and Cartesia are pointed at the fakes through ``DEEPGRAM_URL``,
``OPENAI_BASE_URL`` and ``CARTESIA_URL``. Besides the usual pattern, on connect it pushes an
``RTVIServerMessageFrame`` and calls ``send_server_message`` with a marker the test then looks
for (in vain) on the Twilio WebSocket, and it reports any RTVI ``on_client_ready``.
"""

from __future__ import annotations

import logging
import os

from _report import report

from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.frames.frames import LLMRunFrame
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from callpipe.processors.frameworks.rtvi import (
    RTVIConfig,
    RTVIObserver,
    RTVIProcessor,
    RTVIServerMessageFrame,
)
from callpipe.runner.types import (
    DailyRunnerArguments,
    RunnerArguments,
    SmallWebRTCRunnerArguments,
)
from callpipe.runner.utils import create_transport
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.deepgram.stt import DeepgramSTTService
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.transports.base_transport import BaseTransport, TransportParams
from callpipe.transports.daily.transport import DailyParams
from callpipe.transports.websocket.fastapi import FastAPIWebsocketParams

logger = logging.getLogger(__name__)

MARKER = "rtvi-marker-4711"


async def run_bot(transport: BaseTransport, runner_args: RunnerArguments) -> None:
    stt = DeepgramSTTService(
        api_key=os.getenv("DEEPGRAM_API_KEY"), url=os.getenv("DEEPGRAM_URL", "")
    )
    llm = OpenAILLMService(
        api_key=os.getenv("OPENAI_API_KEY"), base_url=os.getenv("OPENAI_BASE_URL")
    )
    tts = CartesiaTTSService(
        api_key=os.getenv("CARTESIA_API_KEY", ""),
        url=os.getenv("CARTESIA_URL", ""),
        voice_id=os.getenv("CARTESIA_VOICE_ID", ""),
    )

    messages = [{"role": "system", "content": "You are a friendly assistant on the phone."}]
    context = LLMContext(messages)  # type: ignore[arg-type]
    user_aggregator, assistant_aggregator = LLMContextAggregatorPair(
        context, user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer())
    )

    rtvi = RTVIProcessor(config=RTVIConfig(config=[]))

    pipeline = Pipeline(
        [
            transport.input(),
            rtvi,
            stt,
            user_aggregator,
            llm,
            tts,
            transport.output(),
            assistant_aggregator,
        ]
    )
    task = PipelineTask(
        pipeline,
        params=PipelineParams(enable_metrics=True, enable_usage_metrics=True),
        observers=[RTVIObserver(rtvi)],
    )

    @rtvi.event_handler("on_client_ready")
    async def on_client_ready(rtvi: RTVIProcessor) -> None:
        report(event="rtvi_client_ready")
        await rtvi.set_bot_ready()

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport: BaseTransport, client: object) -> None:
        logger.info("Client connected")
        await rtvi.send_server_message({"note": MARKER})
        await task.queue_frames([RTVIServerMessageFrame(data={"note": MARKER})])
        messages.append({"role": "system", "content": "Say hello and briefly introduce yourself."})
        await task.queue_frames([LLMRunFrame()])

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: BaseTransport, client: object) -> None:
        logger.info("Client disconnected")
        await task.cancel()

    runner = PipelineRunner(handle_sigint=runner_args.handle_sigint)
    await runner.run(task)
    report(event="finished", bot_ready=rtvi.bot_ready)


async def bot(runner_args: RunnerArguments) -> None:
    if isinstance(runner_args, DailyRunnerArguments | SmallWebRTCRunnerArguments):
        logger.info("browser session")  # never on callpipe
    transport_params = {
        "daily": lambda: DailyParams(audio_in_enabled=True, audio_out_enabled=True),
        "webrtc": lambda: TransportParams(audio_in_enabled=True, audio_out_enabled=True),
        "twilio": lambda: FastAPIWebsocketParams(audio_in_enabled=True, audio_out_enabled=True),
    }
    transport = await create_transport(runner_args, transport_params)
    await run_bot(transport, runner_args)


if __name__ == "__main__":
    from callpipe.runner.run import main

    main()
