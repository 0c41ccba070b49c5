"""The spec's "Manual FastAPI Implementation", run as written (``pipecat`` → ``callpipe``).

The STT, LLM and TTS of the spec's pipeline are replaced by service-free stand-ins: the "STT"
slot holds an utterance echo, so the bot plays back what the caller said. Real speech (eSpeak NG)
goes in through Twilio's protocol, real Silero VAD finds the turns, and the test checks the
user-started/stopped frames, the echoed reply, and barge-in (a ``clear`` and no more audio from
the interrupted reply).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest
from fastapi import FastAPI, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from starlette.responses import HTMLResponse

from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.frames.frames import (
    BotInterruptedFrame,
    Frame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.audio.utterance_echo import UtteranceEchoProcessor
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.testing.server import running_server
from callpipe.testing.virtual_calls import virtual_time
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

from .speech import speech_8k
from .twilio_harness import FrameLog, TwilioClient

pytestmark = pytest.mark.integration


class Passthrough(FrameProcessor):
    """Stand-in for a service slot that this test does not exercise."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


class SpecBot:
    """The spec's app and run_bot, verbatim where the spec has code, with stand-ins."""

    def __init__(self) -> None:
        self.log = FrameLog(direction=None)
        self.events: list[str] = []
        self.done = asyncio.Event()
        self.app = self._make_app()

    def _make_app(self) -> FastAPI:
        app = FastAPI()
        app.add_middleware(
            CORSMiddleware,
            allow_origins=["*"],
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )

        @app.post("/")
        async def start_call() -> HTMLResponse:
            """Handle telephony provider webhook."""
            xml_response = """<?xml version="1.0" encoding="UTF-8"?>
<Response>
<Connect>
<Stream url="wss://your-domain.com/ws"></Stream>
</Connect>
<Pause length="40"/>
</Response>"""
            return HTMLResponse(content=xml_response, media_type="application/xml")

        @app.websocket("/ws")
        async def websocket_endpoint(websocket: WebSocket) -> None:
            """Handle WebSocket connections for audio streaming."""
            await websocket.accept()
            start_data = websocket.iter_text()
            await start_data.__anext__()
            call_data = json.loads(await start_data.__anext__())
            stream_sid = call_data["start"]["streamSid"]
            call_sid = call_data["start"]["callSid"]
            try:
                await self.run_bot(websocket, stream_sid, call_sid)
            finally:
                self.done.set()

        return app

    async def run_bot(self, websocket: WebSocket, stream_sid: str, call_sid: str) -> None:
        serializer = TwilioFrameSerializer(
            stream_sid=stream_sid,
            call_sid=call_sid,
            account_sid=os.getenv("TWILIO_ACCOUNT_SID"),
            auth_token=os.getenv("TWILIO_AUTH_TOKEN"),
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
        transport = FastAPIWebsocketTransport(
            websocket=websocket,
            params=FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                vad_analyzer=SileroVADAnalyzer(),
                serializer=serializer,
                session_timeout=30,
            ),
        )
        stt = UtteranceEchoProcessor()
        user_aggregator, llm, tts, assistant_aggregator = (Passthrough() for _ in range(4))
        pipeline = Pipeline(
            [
                transport.input(),
                self.log,
                stt,
                user_aggregator,
                llm,
                tts,
                transport.output(),
                assistant_aggregator,
            ]
        )
        # Pipeline rates for telephony, as the spec's "Advanced Configuration" suggests.
        task = PipelineTask(
            pipeline, params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
        )

        @transport.event_handler("on_client_connected")
        async def on_client_connected(transport: Any, websocket: Any) -> None:
            self.events.append("connected")

        @transport.event_handler("on_client_disconnected")
        async def on_client_disconnected(transport: Any, websocket: Any) -> None:
            self.events.append("disconnected")
            await task.cancel()

        runner = PipelineRunner(handle_sigint=False, force_gc=True)
        await runner.run(task)


def frames_at(log: FrameLog, cls: type[Frame]) -> list[float]:
    return log.times(cls)


@virtual_time
async def test_spec_manual_recipe_echoes_speech_with_real_vad() -> None:
    utterance = speech_8k("Hello, I would like to book a table for two.")
    bot = SpecBot()
    async with running_server(bot.app) as addr:
        async with TwilioClient(f"ws://{addr}/ws") as client:
            await client.send_silence(0.5)
            speech_start = asyncio.get_running_loop().time()
            await client.send_media(utterance.pcm)
            speech_end = asyncio.get_running_loop().time()
            await client.send_silence(1.5 + utterance.seconds)
        await asyncio.wait_for(bot.done.wait(), 5)
    starts = frames_at(bot.log, UserStartedSpeakingFrame)
    stops = frames_at(bot.log, UserStoppedSpeakingFrame)
    assert len(starts) >= 1 and len(stops) >= 1
    # VAD start within start_secs (0.2) + a window (32 ms) + network slack of the real start.
    first_voice = speech_start + utterance.voice_start
    assert first_voice - 0.1 <= starts[0] <= first_voice + 0.2 + 0.032 + 0.15
    last_voice = speech_start + utterance.voice_end
    assert last_voice <= stops[-1] <= last_voice + 0.8 + 0.032 + 0.25  # stop_secs = 0.8
    media = client.events("media")
    assert media, "no echo came back"
    assert media[0].t >= stops[0] - 0.05  # the reply starts after the caller stopped...
    assert media[0].t - stops[0] <= 0.15  # ...promptly
    echoed = len(client.audio()) / 8000
    assert utterance.voice_end - utterance.voice_start <= echoed <= utterance.seconds + 1.0
    assert speech_end > speech_start
    assert bot.events == ["connected", "disconnected"]


@virtual_time
async def test_spec_manual_recipe_barge_in_clears_the_reply() -> None:
    long_utterance = speech_8k(
        "This is a rather long sentence that the bot will repeat back to me slowly."
    )
    interruption = speech_8k("Stop, please.")
    bot = SpecBot()
    async with running_server(bot.app) as addr:
        async with TwilioClient(f"ws://{addr}/ws") as client:
            await client.send_silence(0.3)
            await client.send_media(long_utterance.pcm)
            await client.send_silence(1.0)  # VAD stop (0.8 s): the echo starts playing
            assert client.events("media"), "the echo did not start"
            barge_in_at = asyncio.get_running_loop().time()
            await client.send_media(interruption.pcm)
            await client.send_silence(1.0)
        await asyncio.wait_for(bot.done.wait(), 5)
    clears = client.events("clear")
    assert len(clears) >= 1
    clear_at = clears[0].t
    assert clear_at - (barge_in_at + interruption.voice_start) <= 0.2 + 0.032 + 0.2
    # No audio of the interrupted reply after the clear: the next media (if any) is the echo
    # of the interruption, which starts only after the caller stopped again.
    later = [r for r in client.events("media") if r.t > clear_at]
    stops = frames_at(bot.log, UserStoppedSpeakingFrame)
    if later:
        assert later[0].t >= stops[-1] - 0.05
    reports = bot.log.of(BotInterruptedFrame)
    assert len(reports) >= 1
    heard = reports[0].heard_secs  # type: ignore[attr-defined]
    assert 0.0 < heard < long_utterance.seconds
