"""A Plivo-or-Exotel bot in Pipecat 1.14 style, with noise suppression on the caller's audio.

Picks the serializer from the detected provider, runs RNNoise (``audio_in_filter``) before VAD,
and ends the call on ``#`` by pushing ``EndWorkerFrame`` upstream straight to the worker.
"""

from __future__ import annotations

import os

from _echo import Dialog
from _report import report

from callpipe.audio.filters.rnnoise_filter import RNNoiseFilter
from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.frames.frames import TTSSpeakFrame
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.worker import PipelineParams, PipelineWorker
from callpipe.processors.audio.utterance_echo import UtteranceEchoProcessor
from callpipe.processors.audio.vad_processor import VADProcessor
from callpipe.processors.frame_processor import FrameDirection
from callpipe.runner.types import RunnerArguments
from callpipe.runner.utils import parse_telephony_websocket
from callpipe.serializers.exotel import ExotelFrameSerializer
from callpipe.serializers.plivo import PlivoFrameSerializer
from callpipe.services.espeak import ESpeakTTSService
from callpipe.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from callpipe.workers.runner import WorkerRunner


async def bot(runner_args: RunnerArguments) -> None:
    transport_type, call_data = await parse_telephony_websocket(runner_args.websocket)
    report(event="bot", transport_type=transport_type, call_id=call_data["call_id"])
    if transport_type == "plivo":
        serializer = PlivoFrameSerializer(
            stream_id=call_data["stream_id"],
            call_id=call_data["call_id"],
            auth_id=os.getenv("PLIVO_AUTH_ID", ""),
            auth_token=os.getenv("PLIVO_AUTH_TOKEN", ""),
            params=PlivoFrameSerializer.InputParams(
                auto_hang_up=bool(os.getenv("PLIVO_AUTH_TOKEN"))
            ),
        )
    else:
        serializer = ExotelFrameSerializer(
            stream_sid=call_data["stream_id"], call_sid=call_data["call_id"]
        )
    transport = FastAPIWebsocketTransport(
        websocket=runner_args.websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            serializer=serializer,
            audio_in_filter=RNNoiseFilter(),
        ),
    )
    pipeline = Pipeline(
        [
            transport.input(),
            VADProcessor(vad_analyzer=SileroVADAnalyzer()),
            UtteranceEchoProcessor(),
            Dialog(end_direction=FrameDirection.UPSTREAM),
            ESpeakTTSService(),
            transport.output(),
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
    )

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport, client):  # type: ignore[no-untyped-def]
        await worker.queue_frames([TTSSpeakFrame(f"Hello from {transport_type}.")])

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport, client):  # type: ignore[no-untyped-def]
        await worker.cancel()

    @worker.event_handler("on_pipeline_finished")
    async def on_pipeline_finished(worker, frame):  # type: ignore[no-untyped-def]
        report(event="finished", frame=type(frame).__name__)

    runner = WorkerRunner(handle_sigint=runner_args.handle_sigint)
    await runner.add_workers(worker)
    await runner.run()


if __name__ == "__main__":
    from callpipe.runner.run import main

    main()
