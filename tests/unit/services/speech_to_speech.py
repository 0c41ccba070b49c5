"""Shared by the speech-to-speech service tests (OpenAI Realtime, Gemini Live; the contract
tests import it as ``unit.services.speech_to_speech``): the caller's audio as frames or as a
Twilio caller's packets, stand-ins for the transports' barge-in frames, and a whole phone call
through the Twilio transport."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.frames.frames import (
    BotInterruptedFrame,
    BotInterruptionFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMRunFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineTask
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.testing import TwilioCallerSocket
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

from .helpers import PHONE as PARAMS

RATE = 8000


def audio(secs: float, *, loud: bool, packet_ms: int = 20) -> list[Frame]:
    """``secs`` of the caller (a tone, or silence) as input audio frames of ``packet_ms``."""
    pcm = tone_pcm(secs, RATE) if loud else bytes(int(secs * RATE) * 2)
    step = RATE * packet_ms // 1000 * 2
    return [InputAudioRawFrame(pcm[i : i + step], RATE) for i in range(0, len(pcm), step)]


class InputSide(FrameProcessor):
    """Stands in for the input transport: a barge-in request becomes an interruption."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, BotInterruptionFrame):
            await self.push_frame(InterruptionFrame())
        else:
            await self.push_frame(frame, direction)


class HeardReport(FrameProcessor):
    """Stands in for the output transport: on an interruption, reports what was heard."""

    def __init__(self, heard_secs: float = 0.05) -> None:
        super().__init__()
        self.heard_secs = heard_secs

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InterruptionFrame):
            report = BotInterruptedFrame(heard_secs=self.heard_secs)
            await self.push_frame(report, FrameDirection.UPSTREAM)
        await self.push_frame(frame, direction)


class ScriptedCaller(TwilioCallerSocket):
    """A Twilio caller whose 20 ms packets are given (mu-law), marks acknowledged."""

    def __init__(self, packets: list[bytes]) -> None:
        super().__init__(len(packets))
        self.script = packets

    async def receive(self) -> dict[str, Any]:
        if self._acks or self.seq >= self.packets:
            return await super().receive()
        await asyncio.sleep(0.02)
        payload = base64.b64encode(self.script[self.seq]).decode()
        self.seq += 1
        media = {"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}}
        return {"type": "websocket.receive", "text": json.dumps(media)}


def packets(secs: float, *, loud: bool) -> list[bytes]:
    pcm = tone_pcm(secs, RATE) if loud else bytes(int(secs * RATE) * 2)
    ulaw = pcm_to_ulaw(pcm)
    return [ulaw[i : i + 160] for i in range(0, len(ulaw), 160)]


async def run_phone_call(caller: ScriptedCaller, llm: FrameProcessor, context: LLMContext) -> None:
    """A call through the Twilio transport: the caller's script in, ``llm`` between the
    aggregators of ``context``, started with an ``LLMRunFrame`` (the greeting)."""
    serializer = TwilioFrameSerializer(
        "MZ0", "CA0123456789", params=TwilioFrameSerializer.InputParams(auto_hang_up=False)
    )
    transport = FastAPIWebsocketTransport(
        caller.websocket,
        FastAPIWebsocketParams(
            audio_in_enabled=True, audio_out_enabled=True, serializer=serializer
        ),
    )
    user, assistant = LLMContextAggregatorPair(context)
    task = PipelineTask(
        Pipeline([transport.input(), user, llm, transport.output(), assistant]),
        params=PARAMS,
        idle_timeout_secs=None,
    )
    await task.queue_frame(LLMRunFrame())
    await PipelineRunner(handle_sigint=False).run(task)
