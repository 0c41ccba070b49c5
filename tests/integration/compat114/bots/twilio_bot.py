"""A Twilio bot in Pipecat 1.14 style (imports with ``callpipe`` for ``pipecat``).

PipelineWorker + WorkerRunner, VAD as a pipeline step (VADProcessor), an observer, the 1.14
transport path, EndWorkerFrame to hang up. It echoes what the caller says in their own voice
after "you said", reads out keys, and says goodbye and hangs up on ``#``.
"""

from __future__ import annotations

import os

from _echo import Dialog
from _report import report

from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.frames.frames import TTSSpeakFrame, UserStartedSpeakingFrame
from callpipe.observers.base_observer import BaseObserver, FramePushed
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.worker import PipelineParams, PipelineWorker
from callpipe.processors.audio.utterance_echo import UtteranceEchoProcessor
from callpipe.processors.audio.vad_processor import VADProcessor
from callpipe.processors.frame_processor import FrameDirection
from callpipe.runner.types import RunnerArguments
from callpipe.runner.utils import parse_telephony_websocket
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.services.espeak import ESpeakTTSService
from callpipe.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from callpipe.workers.runner import WorkerRunner


class TurnCounter(BaseObserver):
    """Counts the caller's turns as the frames fly by (first push only)."""

    def __init__(self) -> None:
        super().__init__(observe_every_push=False)
        self.turns = 0

    async def on_push_frame(self, data: FramePushed) -> None:
        if (
            isinstance(data.frame, UserStartedSpeakingFrame)
            and data.direction is FrameDirection.DOWNSTREAM
        ):
            self.turns += 1


async def run_bot(transport: FastAPIWebsocketTransport, runner_args: RunnerArguments) -> None:
    counter = TurnCounter()
    pipeline = Pipeline(
        [
            transport.input(),
            VADProcessor(vad_analyzer=SileroVADAnalyzer()),
            UtteranceEchoProcessor(),
            Dialog(),
            ESpeakTTSService(),
            transport.output(),
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
        idle_timeout_secs=60,
        observers=[counter],
    )

    runner_args.attach(worker)  # the server can end this call gracefully when it drains

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport, client):  # type: ignore[no-untyped-def]
        await worker.queue_frames([TTSSpeakFrame("Hello from a Pipecat one fourteen bot.")])

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport, client):  # type: ignore[no-untyped-def]
        await worker.cancel()

    @worker.event_handler("on_pipeline_finished")
    async def on_pipeline_finished(worker, frame):  # type: ignore[no-untyped-def]
        report(event="finished", frame=type(frame).__name__, turns=counter.turns)

    runner = WorkerRunner(handle_sigint=runner_args.handle_sigint)
    await runner.add_workers(worker)
    await runner.run()


async def bot(runner_args: RunnerArguments) -> None:
    transport_type, call_data = await parse_telephony_websocket(runner_args.websocket)
    report(event="bot", transport_type=transport_type, stream_id=call_data["stream_id"])
    serializer = TwilioFrameSerializer(
        stream_sid=call_data["stream_id"],
        call_sid=call_data["call_id"],
        account_sid=os.getenv("TWILIO_ACCOUNT_SID", ""),
        auth_token=os.getenv("TWILIO_AUTH_TOKEN", ""),
        # No credentials (a local test): the transport closes the stream, no REST hang-up.
        params=TwilioFrameSerializer.InputParams(auto_hang_up=bool(os.getenv("TWILIO_AUTH_TOKEN"))),
    )
    transport = FastAPIWebsocketTransport(
        websocket=runner_args.websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            serializer=serializer,
        ),
    )
    await run_bot(transport, runner_args)


if __name__ == "__main__":
    from callpipe.runner.run import main

    main()
