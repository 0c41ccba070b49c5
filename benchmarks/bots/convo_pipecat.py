"""The same full-pipeline bot on pipecat-ai 1.14 (its own venv; never imported by callpipe).

Deepgram STT → OpenAI LLM → Cartesia (or ElevenLabs) TTS, the 1.x telephony example's shape:
the VAD runs in the user aggregator (``LLMUserAggregatorParams(vad_analyzer=...)``). The turn
ends at the VAD's stop once the transcript is final (``SpeechTimeoutUserTurnStopStrategy`` with
no extra wait), as in callpipe — the default smart-turn model would add its own inference and
latency. Leanest settings otherwise: logging at WARNING, no RTVI, no turn tracking.

    BENCH_FAKES='{...}' BENCH_TTS=cartesia /opt/pipecat-venv/bin/python \\
        benchmarks/bots/convo_pipecat.py --port 8766
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI, WebSocket
from loguru import logger

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

logger.remove()
logger.add(sys.stderr, level="WARNING")

from pipecat.audio.vad.silero import SileroVADAnalyzer  # noqa: E402
from pipecat.audio.vad.vad_analyzer import VADParams  # noqa: E402
from pipecat.frames.frames import Frame, MetricsFrame, VADUserStoppedSpeakingFrame  # noqa: E402
from pipecat.metrics.metrics import TTFBMetricsData  # noqa: E402
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.pipeline.runner import PipelineRunner  # noqa: E402
from pipecat.pipeline.task import PipelineParams, PipelineTask  # noqa: E402
from pipecat.processors.aggregators.llm_context import LLMContext  # noqa: E402
from pipecat.processors.aggregators.llm_response_universal import (  # noqa: E402
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor  # noqa: E402
from pipecat.serializers.twilio import TwilioFrameSerializer  # noqa: E402
from pipecat.services.cartesia.tts import CartesiaTTSService  # noqa: E402
from pipecat.services.deepgram.stt import DeepgramSTTService  # noqa: E402
from pipecat.services.elevenlabs.tts import ElevenLabsTTSService  # noqa: E402
from pipecat.services.openai.llm import OpenAILLMService  # noqa: E402
from pipecat.transports.websocket.fastapi import (  # noqa: E402
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy  # noqa: E402
from pipecat.turns.user_turn_strategies import UserTurnStrategies  # noqa: E402

URLS = fake_urls()
TTS = os.environ.get("BENCH_TTS", "cartesia")
VAD_PARAMS = VADParams(
    confidence=VAD_CONFIDENCE,
    start_secs=VAD_START_SECS,
    stop_secs=VAD_STOP_SECS,
    min_volume=VAD_MIN_VOLUME,
)


class VADTap(FrameProcessor):
    """Notes when the VAD's stop passes (after the user aggregator, where Pipecat's VAD runs)."""

    def __init__(self, probe: Probe) -> None:
        super().__init__()
        self._probe = probe

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if (
            isinstance(frame, VADUserStoppedSpeakingFrame)
            and direction == FrameDirection.DOWNSTREAM
        ):
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
                    name = data.processor
                    kind = "llm" if "LLM" in name else "tts" if "TTS" in name else ""
                    if kind:
                        self._probe.ttfb(kind, data.value)
            return
        await self.push_frame(frame, direction)


def make_tts() -> Any:
    if TTS == "elevenlabs":
        return ElevenLabsTTSService(api_key="test-key", voice_id="voice-1", url=URLS["elevenlabs"])
    return CartesiaTTSService(
        api_key="test-key", voice_id="voice-1", url=URLS["cartesia"] + "/tts/websocket"
    )


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
    stt = DeepgramSTTService(
        api_key="test-key",
        base_url=URLS["deepgram"],
        settings=DeepgramSTTService.Settings(endpointing=300),
    )
    llm = OpenAILLMService(api_key="test-key", base_url=URLS["openai"], model="fake-model")
    tts = make_tts()
    context = LLMContext([{"role": "system", "content": SYSTEM_PROMPT}])
    aggregators = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            vad_analyzer=SileroVADAnalyzer(params=VAD_PARAMS),
            user_turn_strategies=UserTurnStrategies(
                stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.0)]
            ),
        ),
    )
    probe = Probe(start["callSid"])
    task = PipelineTask(
        Pipeline(
            [
                transport.input(),
                stt,
                aggregators.user(),
                VADTap(probe),
                llm,
                tts,
                transport.output(),
                aggregators.assistant(),
                MetricsTap(probe),
            ]
        ),
        params=PipelineParams(
            audio_in_sample_rate=SAMPLE_RATE,
            audio_out_sample_rate=SAMPLE_RATE,
            enable_metrics=True,
        ),
        idle_timeout_secs=None,
        enable_rtvi=False,
        enable_turn_tracking=False,
    )

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: FastAPIWebsocketTransport, ws: WebSocket) -> None:
        await task.cancel()

    try:
        await PipelineRunner(handle_sigint=False).run(task)
    finally:
        probe.write()


if __name__ == "__main__":
    serve("convo_pipecat:app", str(Path(__file__).resolve().parent))
