"""The full-pipeline benchmark bot on callpipe: Deepgram STT → OpenAI LLM → Cartesia (or
ElevenLabs) TTS over a Twilio media stream, written as the spec shows it (plain
``SileroVADAnalyzer()``, no flags, no preloading in the bot). The services talk to
``callpipe.testing.fakes`` in another process (``run.py`` starts it; ``$BENCH_FAKES`` holds
their URLs, ``$BENCH_TTS`` picks the TTS).

    BENCH_FAKES='{...}' BENCH_TTS=cartesia python benchmarks/bots/convo_callpipe.py --port 8765
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI, WebSocket

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    SAMPLE_RATE,
    SYSTEM_PROMPT,
    VAD_CONFIDENCE,
    VAD_MIN_VOLUME,
    VAD_START_SECS,
    VAD_STOP_SECS,
    Probe,
    fake_urls,
    serve,
)

from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.audio.vad.vad_analyzer import VADParams
from callpipe.frames.frames import Frame, MetricsFrame, UserStoppedSpeakingFrame
from callpipe.metrics.metrics import TTFBMetricsData
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.aggregators.openai_llm_context import OpenAILLMContext
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.deepgram.stt import DeepgramSTTService, LiveOptions
from callpipe.services.elevenlabs.tts import ElevenLabsTTSService
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

URLS = fake_urls()
TTS = os.environ.get("BENCH_TTS", "cartesia")
VAD_PARAMS = VADParams(
    confidence=VAD_CONFIDENCE,
    start_secs=VAD_START_SECS,
    stop_secs=VAD_STOP_SECS,
    min_volume=VAD_MIN_VOLUME,
)


class VADTap(FrameProcessor):
    """Notes when the VAD's "user stopped speaking" passes (right after the input transport)."""

    def __init__(self, probe: Probe) -> None:
        super().__init__()
        self._probe = probe

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, UserStoppedSpeakingFrame):
            self._probe.vad_stop()
        await self.push_frame(frame, direction)


class MetricsTap(FrameProcessor):
    """Notes the LLM's and TTS's time to first byte (end of the pipeline)."""

    def __init__(self, probe: Probe) -> None:
        super().__init__()
        self._probe = probe

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, MetricsFrame):
            for data in frame.data:
                if isinstance(data, TTFBMetricsData):
                    kind = (
                        "llm"
                        if "LLM" in data.processor
                        else "tts"
                        if "TTS" in data.processor
                        else ""
                    )
                    if kind:
                        self._probe.ttfb(kind, data.value)
            return
        await self.push_frame(frame, direction)


def make_tts() -> Any:
    if TTS == "elevenlabs":
        return ElevenLabsTTSService(api_key="test-key", voice_id="voice-1", url=URLS["elevenlabs"])
    return CartesiaTTSService(api_key="test-key", voice_id="voice-1", url=URLS["cartesia"])


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
        websocket,
        FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            vad_analyzer=SileroVADAnalyzer(params=VAD_PARAMS),
            serializer=serializer,
        ),
    )
    stt = DeepgramSTTService(
        api_key="test-key", url=URLS["deepgram"], live_options=LiveOptions(endpointing=300)
    )
    llm = OpenAILLMService(api_key="test-key", base_url=URLS["openai"], model="fake-model")
    tts = make_tts()
    context = OpenAILLMContext([{"role": "system", "content": SYSTEM_PROMPT}])
    aggregator = llm.create_context_aggregator(context)
    probe = Probe(start["callSid"])
    task = PipelineTask(
        Pipeline(
            [
                transport.input(),
                VADTap(probe),
                stt,
                aggregator.user(),
                llm,
                tts,
                transport.output(),
                aggregator.assistant(),
                MetricsTap(probe),
            ]
        ),
        params=PipelineParams(
            audio_in_sample_rate=SAMPLE_RATE,
            audio_out_sample_rate=SAMPLE_RATE,
            allow_interruptions=True,
            enable_metrics=True,
        ),
        idle_timeout_secs=None,
    )

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: FastAPIWebsocketTransport, ws: WebSocket) -> None:
        await task.cancel()

    try:
        await PipelineRunner(handle_sigint=False).run(task)
    finally:
        probe.write()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    # When Silero's inference moves off the event loop (or back) is part of the result.
    logging.getLogger("callpipe.audio.vad.silero").setLevel(logging.INFO)
    serve("convo_callpipe:app", str(Path(__file__).resolve().parent))
