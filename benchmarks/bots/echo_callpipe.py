"""The benchmark echo bot on callpipe: Twilio media stream, Silero VAD, barge-in.

Caller audio between "user started" and "user stopped speaking" is buffered and played back;
when the caller starts speaking while the echo plays, the input transport interrupts it (the
output sends Twilio's ``clear``). All calls of the process share one batched Silero engine.

``BENCH_AS_SPEC=1`` (``run.py``'s stack ``callpipe-spec``): the analyzer exactly as the spec
writes it, ``SileroVADAnalyzer(params=...)`` per call, and no model loading in the bot; otherwise
the tuned form (``shared=True`` spelled out, model loaded at import).

    python benchmarks/bots/echo_callpipe.py --port 8765 [--workers 2]

``CALLPIPE_BENCH_RECORDS=records`` keeps a call record per call as the runner does (into
``CALLPIPE_BENCH_RECORDS_DIR`` when set), ``=recording`` also records the audio: to measure
their overhead with ``run.py``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from pathlib import Path

from fastapi import FastAPI, WebSocket

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

from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.audio.vad.vad_analyzer import VADParams
from callpipe.frames.frames import (
    Frame,
    InputAudioRawFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.runner.records import RecordsConfig, RecordStore
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.transports.network.fastapi_websocket import (
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
    """Buffers one user turn and plays it back when the turn ends."""

    def __init__(self) -> None:
        super().__init__()
        self._buffer = bytearray()
        self._recording = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            if self._recording:
                self._buffer += frame.audio
            return  # caller audio stops here
        if isinstance(frame, UserStartedSpeakingFrame) and direction is FrameDirection.DOWNSTREAM:
            self._recording = True
            self._buffer.clear()
        elif isinstance(frame, UserStoppedSpeakingFrame) and direction is FrameDirection.DOWNSTREAM:
            self._recording = False
            audio = echo_audio(self._buffer)
            self._buffer.clear()
            if audio:
                await self.push_frame(TTSAudioRawFrame(audio, SAMPLE_RATE, 1))
                await self.push_frame(TTSStoppedFrame())
        await self.push_frame(frame, direction)


AS_SPEC = os.environ.get("BENCH_AS_SPEC") == "1"
if not AS_SPEC:
    # Load the Silero model now, not inside the first call (it would stall the loop ~0.2 s).
    SileroVADAnalyzer(shared=True)


def make_vad() -> SileroVADAnalyzer:
    if AS_SPEC:
        return SileroVADAnalyzer(params=VAD_PARAMS)
    return SileroVADAnalyzer(params=VAD_PARAMS, shared=True)


_RECORDS = os.environ.get("CALLPIPE_BENCH_RECORDS", "")
_DIR = os.environ.get("CALLPIPE_BENCH_RECORDS_DIR")
STORE = (
    RecordStore(
        RecordsConfig(
            enabled=True,
            directory=Path(_DIR) if _DIR else None,
            recording=_RECORDS == "recording",
        )
    )
    if _RECORDS
    else None
)

app = FastAPI()


@app.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    messages = websocket.iter_text()
    await messages.__anext__()  # "connected"
    start = json.loads(await messages.__anext__())["start"]
    record_id = None
    if STORE is not None:
        record_id, _ = STORE.begin(provider="twilio", call_id=start["callSid"])
    try:
        with STORE.serving(record_id) if STORE is not None else contextlib.nullcontext():
            await run_call(websocket, start)
    finally:
        if STORE is not None:
            STORE.end(record_id, "ok")


async def run_call(websocket: WebSocket, start: dict[str, str]) -> None:
    serializer = TwilioFrameSerializer(
        stream_sid=start["streamSid"],
        call_sid=start["callSid"],
        params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
    )
    transport = FastAPIWebsocketTransport(
        websocket,
        FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            vad_analyzer=make_vad(),
            serializer=serializer,
        ),
    )
    task = PipelineTask(
        Pipeline([transport.input(), Echo(), transport.output()]),
        params=PipelineParams(
            audio_in_sample_rate=SAMPLE_RATE,
            audio_out_sample_rate=SAMPLE_RATE,
            allow_interruptions=True,
        ),
        idle_timeout_secs=None,
    )

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: FastAPIWebsocketTransport, ws: WebSocket) -> None:
        await task.cancel()

    await PipelineRunner(handle_sigint=False).run(task)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    serve("echo_callpipe:app", str(Path(__file__).resolve().parent))
