"""A Telnyx bot in Pipecat 1.14 style, with background audio under the bot.

Reads Telnyx's call data the way Telnyx bots do (``call_control_id``, ``outbound_encoding``),
plays a quiet hum from a sound file through ``SoundfileMixer`` (``audio_out_mixer``), and
otherwise behaves like the Twilio bot: greeting, echo, keys, goodbye and hang-up on ``#``.
"""

from __future__ import annotations

import math
import os
import tempfile

import numpy as np
import soundfile
from _echo import Dialog
from _report import report

from callpipe.audio.mixers.soundfile_mixer import SoundfileMixer
from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.frames.frames import TTSSpeakFrame
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.worker import PipelineParams, PipelineWorker
from callpipe.processors.audio.utterance_echo import UtteranceEchoProcessor
from callpipe.processors.audio.vad_processor import VADProcessor
from callpipe.runner.types import RunnerArguments
from callpipe.runner.utils import parse_telephony_websocket
from callpipe.serializers.telnyx import TelnyxFrameSerializer
from callpipe.services.espeak import ESpeakTTSService
from callpipe.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from callpipe.workers.runner import WorkerRunner

HUM_PEAK = 80  # about -55 dBFS: audible as room tone, well below the bot's voice


def _hum_file() -> str:
    """One second of a 16 kHz 200 Hz hum (the mixer converts it to the wire rate)."""
    t = np.arange(16000) / 16000
    hum = (HUM_PEAK * np.sin(2 * math.pi * 200 * t)).astype(np.int16)
    path = os.path.join(tempfile.mkdtemp(prefix="callpipe-hum-"), "hum.wav")
    soundfile.write(path, hum, 16000, subtype="PCM_16")
    return path


HUM = _hum_file()


async def bot(runner_args: RunnerArguments) -> None:
    transport_type, call_data = await parse_telephony_websocket(runner_args.websocket)
    report(
        event="bot",
        transport_type=transport_type,
        call_control_id=call_data["call_control_id"],
        outbound_encoding=call_data["outbound_encoding"],
    )
    serializer = TelnyxFrameSerializer(
        stream_id=call_data["stream_id"],
        call_control_id=call_data["call_control_id"],
        outbound_encoding=call_data["outbound_encoding"],
        inbound_encoding="PCMU",
        api_key=os.getenv("TELNYX_API_KEY", ""),
        params=TelnyxFrameSerializer.InputParams(auto_hang_up=bool(os.getenv("TELNYX_API_KEY"))),
    )
    transport = FastAPIWebsocketTransport(
        websocket=runner_args.websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            serializer=serializer,
            audio_out_mixer=SoundfileMixer(
                sound_files={"hum": HUM}, default_sound="hum", volume=1.0
            ),
        ),
    )
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
    )

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport, client):  # type: ignore[no-untyped-def]
        await worker.queue_frames([TTSSpeakFrame("Hello from Telnyx.")])

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport, client):  # type: ignore[no-untyped-def]
        await worker.cancel()

    @worker.event_handler("on_pipeline_finished")
    async def on_pipeline_finished(worker, frame):  # type: ignore[no-untyped-def]
        report(event="finished", frame=type(frame).__name__)

    runner = WorkerRunner(handle_sigint=runner_args.handle_sigint)
    await runner.run(worker)  # the older call form, still accepted


if __name__ == "__main__":
    from callpipe.runner.run import main

    main()
