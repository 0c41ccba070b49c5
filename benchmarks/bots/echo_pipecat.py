"""The same echo bot on pipecat-ai 1.14 (run with Pipecat's own venv; never imported by callpipe).

Pipecat 1.x has no VAD in the transport: ``VADProcessor`` pushes VADUserStarted/Stopped frames;
on "started" the echo broadcasts an interruption (the output sends Twilio's ``clear``). Given its
leanest settings: logging at WARNING, no RTVI, no turn tracking, no idle timeout.

    /opt/pipecat-venv/bin/python benchmarks/bots/echo_pipecat.py --port 8766
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fastapi import FastAPI, WebSocket
from loguru import logger

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    SAMPLE_RATE,
    VAD_CONFIDENCE,
    VAD_MIN_VOLUME,
    VAD_START_SECS,
    VAD_STOP_SECS,
    echo_audio,
    serve,
)

logger.remove()
logger.add(sys.stderr, level="WARNING")

from pipecat.audio.vad.silero import SileroVADAnalyzer  # noqa: E402
from pipecat.audio.vad.vad_analyzer import VADParams  # noqa: E402
from pipecat.frames.frames import (  # noqa: E402
    Frame,
    InputAudioRawFrame,
    TTSAudioRawFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.pipeline.runner import PipelineRunner  # noqa: E402
from pipecat.pipeline.task import PipelineParams, PipelineTask  # noqa: E402
from pipecat.processors.audio.vad_processor import VADProcessor  # noqa: E402
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor  # noqa: E402
from pipecat.serializers.twilio import TwilioFrameSerializer  # noqa: E402
from pipecat.transports.websocket.fastapi import (  # noqa: E402
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

VAD_PARAMS = VADParams(
    confidence=VAD_CONFIDENCE,
    start_secs=VAD_START_SECS,
    stop_secs=VAD_STOP_SECS,
    min_volume=VAD_MIN_VOLUME,
)


class Echo(FrameProcessor):
    """Buffers one user turn, plays it back when the turn ends, interrupts on a new turn."""

    def __init__(self) -> None:
        super().__init__()
        self._buffer = bytearray()
        self._recording = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            if self._recording:
                self._buffer += frame.audio
            return
        if isinstance(frame, VADUserStartedSpeakingFrame):
            if direction == FrameDirection.DOWNSTREAM:
                self._recording = True
                self._buffer.clear()
                await self.broadcast_interruption()
            return
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            if direction == FrameDirection.DOWNSTREAM:
                self._recording = False
                audio = echo_audio(self._buffer)
                self._buffer.clear()
                if audio:
                    await self.push_frame(TTSAudioRawFrame(audio, SAMPLE_RATE, 1))
            return
        await self.push_frame(frame, direction)


app = FastAPI()


@app.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    messages = websocket.iter_text()
    await messages.__anext__()  # "connected"
    start = json.loads(await messages.__anext__())["start"]
    serializer = TwilioFrameSerializer(
        stream_sid=start["streamSid"],
        call_sid=start["callSid"],
        params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
    )
    transport = FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            serializer=serializer,
        ),
    )
    task = PipelineTask(
        Pipeline(
            [
                transport.input(),
                VADProcessor(vad_analyzer=SileroVADAnalyzer(params=VAD_PARAMS)),
                Echo(),
                transport.output(),
            ]
        ),
        params=PipelineParams(
            audio_in_sample_rate=SAMPLE_RATE,
            audio_out_sample_rate=SAMPLE_RATE,
        ),
        idle_timeout_secs=None,
        enable_rtvi=False,
        enable_turn_tracking=False,
    )

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: FastAPIWebsocketTransport, ws: WebSocket) -> None:
        await task.cancel()

    await PipelineRunner(handle_sigint=False).run(task)


if __name__ == "__main__":
    serve("echo_pipecat:app", str(Path(__file__).resolve().parent))
