"""A Pipecat 1.14 bot with the smart-turn model deciding the end of the caller's turn.

Written as a 1.14 bot is (imports with ``callpipe`` for ``pipecat``): Silero VAD in the user
aggregator, ``TurnAnalyzerUserTurnStopStrategy(turn_analyzer=LocalSmartTurnAnalyzerV3())`` as the
stop strategy, Deepgram / OpenAI / Cartesia (the tests point them at local fakes). Each model
verdict (``TurnMetricsData``, metrics enabled) and each user turn are reported to the test.
"""

from __future__ import annotations

import os
from typing import Any

from _report import report

from callpipe.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.frames.frames import Frame, LLMRunFrame, MetricsFrame
from callpipe.metrics.metrics import TurnMetricsData
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.runner.types import RunnerArguments
from callpipe.runner.utils import parse_telephony_websocket
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.deepgram.stt import DeepgramSTTService
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from callpipe.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
from callpipe.turns.user_turn_strategies import UserTurnStrategies


class TurnVerdicts(FrameProcessor):
    """Reports each end-of-turn verdict the user aggregator pushes (as MetricsFrames)."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, MetricsFrame):
            for data in frame.data:
                if isinstance(data, TurnMetricsData):
                    report(
                        event="verdict",
                        complete=data.is_complete,
                        probability=data.probability,
                        ms=data.e2e_processing_time_ms,
                    )
        await self.push_frame(frame, direction)


async def bot(runner_args: RunnerArguments) -> None:
    _, call_data = await parse_telephony_websocket(runner_args.websocket)
    transport = FastAPIWebsocketTransport(
        websocket=runner_args.websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            serializer=TwilioFrameSerializer(
                stream_sid=call_data["stream_id"],
                call_sid=call_data["call_id"],
                params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
            ),
        ),
    )
    stt = DeepgramSTTService(
        api_key=os.getenv("DEEPGRAM_API_KEY", ""),
        url=os.getenv("DEEPGRAM_URL", "wss://api.deepgram.com"),
        settings=DeepgramSTTService.Settings(model="nova-3"),
    )
    llm = OpenAILLMService(
        api_key=os.getenv("OPENAI_API_KEY", ""),
        base_url=os.getenv("OPENAI_BASE_URL"),
        settings=OpenAILLMService.Settings(model="gpt-4o-mini"),
    )
    tts = CartesiaTTSService(
        api_key=os.getenv("CARTESIA_API_KEY", ""),
        url=os.getenv("CARTESIA_URL", "wss://api.cartesia.ai"),
        settings=CartesiaTTSService.Settings(voice=os.getenv("CARTESIA_VOICE_ID", "voice")),
    )
    context = LLMContext([{"role": "system", "content": "You answer a shop's phone."}])
    user, assistant = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            vad_analyzer=SileroVADAnalyzer(),
            user_turn_strategies=UserTurnStrategies(
                stop=[TurnAnalyzerUserTurnStopStrategy(turn_analyzer=LocalSmartTurnAnalyzerV3())]
            ),
        ),
    )

    @user.event_handler("on_user_turn_stopped")
    async def on_user_turn_stopped(aggregator: Any, strategy: Any, message: Any) -> None:
        report(event="user_turn", strategy=type(strategy).__name__, chars=len(message.content))

    pipeline = Pipeline(
        [transport.input(), stt, user, TurnVerdicts(), llm, tts, transport.output(), assistant]
    )
    task = PipelineTask(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=8000, audio_out_sample_rate=8000, enable_metrics=True
        ),
    )

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport: Any, client: Any) -> None:
        await task.queue_frames([LLMRunFrame()])

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: Any, client: Any) -> None:
        await task.cancel()

    await PipelineRunner(handle_sigint=False).run(task)


if __name__ == "__main__":
    from callpipe.runner.run import main

    main()
