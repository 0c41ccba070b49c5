"""The spec's "Using the Development Runner" example, with ``pipecat`` → ``callpipe``.

Only the parts the spec leaves as ``# ...`` are filled in: service-free stand-ins for STT, the
context aggregators, LLM and TTS (an utterance echo sits in the STT slot), the task, and a
report of what happened for the test that runs this file as ``python bot.py -t twilio -x ...``.
"""

import json
import os

from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.frames.frames import Frame, UserStartedSpeakingFrame, UserStoppedSpeakingFrame
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.audio.utterance_echo import UtteranceEchoProcessor
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.runner.types import RunnerArguments, WebSocketRunnerArguments
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)


def report(**fields: object) -> None:
    path = os.environ.get("CALLPIPE_TEST_REPORT")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps(fields) + "\n")


class Passthrough(FrameProcessor):
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, UserStartedSpeakingFrame | UserStoppedSpeakingFrame):
            report(event=type(frame).__name__)
        await self.push_frame(frame, direction)


class StandInContextAggregator:
    def __init__(self) -> None:
        self._user, self._assistant = Passthrough(), Passthrough()

    def user(self) -> Passthrough:
        return self._user

    def assistant(self) -> Passthrough:
        return self._assistant


async def run_bot(transport):
    """Your core bot logic - works with any transport."""
    # Your services (STT, LLM, TTS, etc.)
    stt = UtteranceEchoProcessor()
    context_aggregator = StandInContextAggregator()
    llm, tts = Passthrough(), Passthrough()

    # Create pipeline
    pipeline = Pipeline(
        [
            transport.input(),  # Receive audio from caller
            stt,  # Convert speech to text
            context_aggregator.user(),  # Add user messages to context
            llm,  # Process text with LLM
            tts,  # Convert text to speech
            transport.output(),  # Send audio to caller
            context_aggregator.assistant(),  # Add assistant responses to context
        ]
    )
    task = PipelineTask(
        pipeline, params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
    )

    # Event handlers
    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport, client):
        report(event="on_client_connected")

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport, client):
        report(event="on_client_disconnected")
        await task.cancel()

    # Run the pipeline
    await PipelineRunner(handle_sigint=False).run(task)
    report(event="finished", utterances=stt.utterances)


async def bot(runner_args: RunnerArguments):
    """Entry point called by the development runner."""
    if isinstance(runner_args, WebSocketRunnerArguments):
        # Auto-detect telephony provider and create appropriate serializer
        from callpipe.runner.utils import parse_telephony_websocket

        transport_type, call_data = await parse_telephony_websocket(runner_args.websocket)
        report(event="parsed", transport_type=transport_type, call_id=call_data["call_id"])

        # Create serializer based on detected provider
        if transport_type == "twilio":
            from callpipe.serializers.twilio import TwilioFrameSerializer

            serializer = TwilioFrameSerializer(
                stream_sid=call_data["stream_id"],
                call_sid=call_data["call_id"],
                account_sid=os.getenv("TWILIO_ACCOUNT_SID"),
                auth_token=os.getenv("TWILIO_AUTH_TOKEN"),
            )

        transport = FastAPIWebsocketTransport(
            websocket=runner_args.websocket,
            params=FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                vad_analyzer=SileroVADAnalyzer(),
                serializer=serializer,
            ),
        )

        await run_bot(transport)


if __name__ == "__main__":
    from callpipe.runner.run import main

    main()
